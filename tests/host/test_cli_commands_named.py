"""Every `python -m host ...` command a message, docstring or document names exists: the first word is
a command of host/cli COMMANDS, and each following word is a choice of the parser it reaches (subcommand
or positional with choices), so a message never sends a user to a command that is not there."""

from __future__ import annotations

import argparse
import ast
import importlib
import re
from pathlib import Path

import pytest

from host.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
MENTION = re.compile(r"python -m host(?![.\w])((?:[ \t]+[^\s`'\")]+)*)")
WORD = re.compile(r"[a-z][a-z0-9_-]*")


def _strings(path: Path) -> list[str]:
    """String constants of a module, f-strings with each {...} replaced by a placeholder."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))
    return out


def _mentions(text: str) -> list[list[str]]:
    """The command words after each `python -m host` (up to the first non-word: a path, an option, ...)."""
    found = []
    for match in MENTION.finditer(text):
        words = []
        for token in match.group(1).split():
            if not WORD.fullmatch(token):
                break
            words.append(token)
        found.append(words)
    return found


def _sources() -> list[tuple[str, str]]:
    files = [(p, _strings(p)) for p in sorted((ROOT / "host").rglob("*.py"))]
    docs = [ROOT / "README.md", ROOT / "firmware" / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
            *sorted((ROOT / "docs").rglob("*.yml"))]
    files += [(p, [p.read_text()]) for p in docs if p.is_file()]
    return sorted({(str(p.relative_to(ROOT)), " ".join(m)) for p, texts in files for text in texts
                   for m in _mentions(text) if m})


def _command_parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m host {name}")
    importlib.import_module(COMMANDS[name][0]).add_arguments(parser)
    return parser


def unknown_words(words: list[str]) -> str | None:
    """None when `words` name an existing command path, else what is wrong."""
    if words[0] not in COMMANDS:
        return f"no command {words[0]!r} (have {sorted(COMMANDS)})"
    parser = _command_parser(words[0])
    for word in words[1:]:
        positional = next((a for a in parser._actions if not a.option_strings), None)
        if positional is None or positional.choices is None:
            return None  # a free argument (a path, a model): the command path ends here
        if word not in positional.choices:
            return f"{word!r} is not one of {sorted(positional.choices)}"
        if not isinstance(positional, argparse._SubParsersAction):
            return None
        parser = positional.choices[word]
    return None


MENTIONS = _sources()


def test_the_checker_catches_made_up_commands() -> None:
    assert unknown_words(["latency", "baseline", "create"]) is not None
    assert unknown_words(["latency", "show"]) is not None
    assert unknown_words(["firmware", "erase"]) is not None
    assert unknown_words(["bench"]) is not None
    assert unknown_words(["latency", "create"]) is None
    assert unknown_words(["firmware", "build"]) is None
    assert unknown_words(["espdl", "pack"]) is None
    assert _mentions("with `python -m host latency update {} --reason ...`") == [["latency", "update"]]
    assert _mentions("(python -m host firmware build) or") == [["firmware", "build"]]
    assert _mentions("`python -m host.dut.sim --pack x`") == []


def test_mentions_were_found() -> None:
    named = {words for _, words in MENTIONS}
    assert {"latency create", "latency update", "quantize", "espdl pack", "firmware build"} <= named, named


@pytest.mark.parametrize("where, words", MENTIONS, ids=[f"{w}: {c}" for w, c in MENTIONS])
def test_named_command_exists(where: str, words: str) -> None:
    problem = unknown_words(words.split())
    assert problem is None, f"{where} names `python -m host {words}`: {problem}"
