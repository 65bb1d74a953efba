"""requirements.txt pins what the repository imports, and nothing it does not use.

Every third-party module imported anywhere (host/, tests/, tools/, conftest.py; also inside functions) must
come from a pinned distribution, so `pip install -r requirements.txt` is enough; every pin must be imported
or be listed in USED_WITHOUT_IMPORT with the reason.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Pinned distributions no module imports, and why they are pinned.
USED_WITHOUT_IMPORT = {
    "labgrid": "its client command and coordinator run as processes (host/dut/labgrid.py, tests/host/farm): the "
               "name is also a module of ours, host/dut/labgrid.py, so the import scan cannot see it",
    "torchvision": "ultralytics imports it; pinned together with torch",
    "pytest-embedded": "pytest plugin (entry point): provides --target",
    "pytest-embedded-serial": "pytest-embedded's serial service: provides --port",
    "pytest-embedded-serial-esp": "pytest-embedded's esptool-aware serial service",
    "tqdm": "progress bars (planned); also an ultralytics dependency",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(_norm(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0]))
    return names


def _imported_top_levels() -> dict[str, str]:
    """Top-level module name -> one file importing it (absolute imports only)."""
    files = [ROOT / "conftest.py", *sorted(p for d in ("host", "tests", "tools") for p in (ROOT / d).rglob("*.py"))]
    found: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _local(name: str) -> bool:
    """A module of this repository (host, tests, tools, a script beside its importer)."""
    return name in ("host", "tests", "tools") or any(ROOT.glob(f"**/{name}.py"))


def test_every_import_is_pinned_and_every_pin_is_used() -> None:
    pins = _pins()
    dists = packages_distributions()
    used: set[str] = set()
    unpinned = []
    for name, where in sorted(_imported_top_levels().items()):
        if name in sys.stdlib_module_names or name == "__future__" or _local(name):
            continue
        owners = {_norm(d) for d in dists.get(name, [])}
        if not owners & pins:
            unpinned.append(f"{name} (imported by {where}; distribution {sorted(owners) or 'not installed'})")
        used |= owners & pins
    assert not unpinned, "imported but not pinned in requirements.txt: " + ", ".join(unpinned)
    unused = pins - used - {_norm(n) for n in USED_WITHOUT_IMPORT}
    assert not unused, f"pinned but never imported (remove, or add to USED_WITHOUT_IMPORT with the reason): {unused}"
    stale = {_norm(n) for n in USED_WITHOUT_IMPORT} - pins
    assert not stale, f"USED_WITHOUT_IMPORT lists what is not pinned: {stale}"
