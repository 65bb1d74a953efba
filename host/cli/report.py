"""`python -m host report merge DIR... --out DIR`: one report from the report folders of several runs - the CI
shards of one pipeline (`pytest --shard I/N`, one runner each), each with its own results.jsonl or its
pytest-xdist workers' gw*/results.jsonl."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("merge", help="merge the journals of several report folders into one results.json, "
                                     "results.jsonl and report.html")
    p.add_argument("dirs", nargs="+", type=Path, help="report folders (each: results.jsonl and/or gw*/results.jsonl)")
    p.add_argument("--out", type=Path, required=True, help="folder for the merged report (created)")
    p.add_argument("--json", action="store_true", help="print a one-line JSON summary")


def _journal_files(report_dir: Path) -> list[Path]:
    """The journals host.runs.finish.journals() reads, one file each (so overlays resolve against their folder)."""
    own = report_dir / "results.jsonl"
    return ([own] if own.is_file() else []) + sorted(report_dir.glob("gw*/results.jsonl"))


def merge(dirs: list[Path], out: Path) -> dict[str, Any]:
    """Merge the journals under `dirs` into `out`; returns the summary. HarnessError if they cannot be one report."""
    from host.errors import HarnessError
    from host.report.html import write_report
    from host.report.results import read_journal
    from host.runs.finish import write_json

    out = out.resolve()
    sessions: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    images = out / "images"
    for index, report_dir in enumerate(dirs):
        if report_dir.resolve() == out:
            raise HarnessError(f"--out {out} is one of the folders to merge; choose a new folder")
        files = _journal_files(report_dir)
        if not files:
            raise HarnessError(f"{report_dir} holds no results.jsonl (nor gw*/results.jsonl); pass the --report-dir "
                               "of a HIL run (a CI shard's reports/ artifact)")
        for journal in files:
            prefix = f"{index}-{journal.parent.name}"
            for record in read_journal(journal):
                record = dict(record, source=str(journal.parent))
                if record.get("kind") == "session":
                    sessions.append(record)
                    continue
                picture = journal.parent / str(record.get("overlay", ""))
                if record.get("overlay") and picture.is_file():
                    images.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(picture, images / f"{prefix}-{picture.name}")
                    record["overlay"] = f"images/{prefix}-{picture.name}"
                results.append(record)
    if not sessions:
        raise HarnessError(f"no session record in {', '.join(map(str, dirs))}: no HIL session ran there")
    for key in ("model_sha256", "target"):
        values = sorted({str(s.get(key)) for s in sessions})
        if len(values) > 1:
            raise HarnessError(f"the runs to merge differ in {key} ({', '.join(values)}): they are not one run; "
                               "merge only the shards of one pipeline")
    provenance = {k: v for k, v in sessions[-1].items() if k not in ("board", "source", "kind", "time")}
    provenance["boards"] = sorted({str(s.get("board")) for s in sessions if s.get("board")})
    provenance["merged_from"] = [str(d) for d in dirs]
    provenance["dead_boards"] = [r.get("detail") for r in results if r.get("kind") == "board-dead"]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.jsonl", "w") as handle:  # so a merged folder can itself be merged again
        for record in sessions + results:
            handle.write(json.dumps(record, default=str) + "\n")
    write_json(out / "results.json", {"session": provenance, "sessions": sessions, "results": results})
    write_report(out, provenance, results)
    failed = [r for r in results if r.get("passed") is False]
    per_board: dict[str, int] = {}
    for r in results:
        if r.get("kind") == "detect":
            per_board[str(r.get("board"))] = per_board.get(str(r.get("board")), 0) + 1
    return {"out": str(out), "sessions": len(sessions), "boards": provenance["boards"], "results": len(results),
            "failed": len(failed), "images_per_board": per_board,
            "failed_tests": sorted({f"{r.get('kind')}:{r.get('test')}" for r in failed})}


def run(args: argparse.Namespace) -> int:
    summary = merge(args.dirs, args.out)
    if args.json:
        print(json.dumps(summary))
    else:
        boards = ", ".join(summary["boards"]) or "-"
        print(f"merged {summary['sessions']} session(s) from {len(args.dirs)} folder(s): {summary['results']} "
              f"results on {len(summary['boards'])} board(s) ({boards}), {summary['failed']} failed; "
              f"{summary['out']}/results.json, report.html")
        for name in summary["failed_tests"]:
            print(f"  FAILED {name}")
    return 1 if summary["failed"] else 0
