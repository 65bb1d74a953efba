"""Train the bundled YOLO11n fixture model (80-class COCO graph) on the synthetic shapes data set, offline on CPU.

    python -m tools.train_fixture                 # generate the data set if needed, train, publish
    python -m tools.train_fixture --resume        # continue an interrupted run from its last.pt

Publishing copies best.pt (ultralytics already stripped the optimizer state) to fixtures/model/ and writes
metadata.json; `python -m tools.eval_fixture --write-metadata` adds the evaluation figures.

Nothing may download: the run refuses every outbound connection (and logs the attempt), and skips
ultralytics' font check, which would otherwise try to fetch Arial.ttf for plots we do not make.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.dataset.build import build_training_set  # noqa: E402
from tools.dataset.classes import CLASS_NAMES  # noqa: E402

MODEL_DIR = REPO / "fixtures" / "model"
WEIGHTS_NAME = "yolo11n_fixture.pt"

# Chosen to fit ~90 min of a shared 2-core CPU; see docs/fixture-model.md for the measurements.
DEFAULTS = {
    "data_seed": 1,
    "train": 800,
    "val": 80,
    "epochs": 40,
    "imgsz": 256,
    "batch": 16,
    "seed": 0,
}

# Training settings passed to ultralytics besides epochs/imgsz/batch/seed. AdamW with an explicit lr:
# optimizer="auto" would pick lr0 = 0.002*5/(4+nc) ~ 1.2e-4 for the 80-class head, far too low from scratch.
TRAIN_KWARGS = {
    "device": "cpu",
    "workers": 0,
    "plots": False,
    "amp": False,
    "deterministic": True,
    "optimizer": "AdamW",
    "lr0": 0.002,
    "cos_lr": False,
    "close_mosaic": 8,
    "scale": 0.6,  # object scale 0.4x-1.6x so the model generalises to the 320 and 640 letterbox inputs
    "fliplr": 0.5,
    "mosaic": 1.0,
    "patience": 1000,
    "exist_ok": True,
    "verbose": True,
}


class NetworkRefused(OSError):
    """Raised for any outbound connection attempted during training."""


def forbid_network(log: list[str]) -> None:
    """Make every socket connect fail loudly, so a hidden download cannot happen and shows up in the log."""

    def refuse(self: socket.socket, address: object) -> None:
        msg = f"[train_fixture] BLOCKED network access to {address!r}"
        log.append(msg)
        print(msg, file=sys.stderr, flush=True)
        raise NetworkRefused(msg)

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign,assignment]
    real_getaddrinfo = socket.getaddrinfo

    def no_dns(host: object, *args: object, **kwargs: object) -> object:
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            msg = f"[train_fixture] BLOCKED name lookup of {host!r}"
            log.append(msg)
            print(msg, file=sys.stderr, flush=True)
            raise socket.gaierror(msg)
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    socket.getaddrinfo = no_dns  # type: ignore[assignment]


def skip_font_download() -> None:
    """ultralytics' check_det_dataset always calls check_font (for label plots); we make no plots."""
    import ultralytics.data.utils as data_utils
    import ultralytics.utils.plotting as plotting

    data_utils.check_font = lambda *a, **k: None
    plotting.check_font = lambda *a, **k: None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dataset_ready(root: Path, n_train: int, n_val: int) -> bool:
    return ((root / "data.yaml").exists() and len(list((root / "labels" / "train").glob("*.txt"))) == n_train
            and len(list((root / "labels" / "val").glob("*.txt"))) == n_val)


def publish(run_dir: Path, args: argparse.Namespace, command: str, wall_s: float) -> Path:
    """Copy best.pt into fixtures/model and write metadata.json (evaluation figures are added by eval_fixture)."""
    import torch
    import ultralytics

    best = run_dir / "weights" / "best.pt"
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    dest = MODEL_DIR / WEIGHTS_NAME
    shutil.copyfile(best, dest)
    results = run_dir / "results.csv"
    meta_path = MODEL_DIR / "metadata.json"
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta = {
        "weights": WEIGHTS_NAME,
        "sha256": sha256(dest),
        "architecture": "yolo11n.yaml (ultralytics), nc=80",
        "dataset": {"generator": "python -m tools.dataset", "seed": args.data_seed, "train": args.train,
                    "val": args.val},
        "training": {"command": command, "epochs_completed": int(_last_metrics(results).get("epoch", 0)),
                     "time_hours": args.time_hours, "epochs": args.epochs, "imgsz": args.imgsz, "batch": args.batch,
                     "seed": args.seed, **{k: v for k, v in TRAIN_KWARGS.items() if k not in ("verbose", "exist_ok")}},
        "wall_time_s": round(wall_s, 1),
        "versions": {"ultralytics": ultralytics.__version__, "torch": torch.__version__,
                     "python": sys.version.split()[0]},
        "class_names": CLASS_NAMES,
        "final_val_metrics": _last_metrics(results),
        "evaluation": old.get("evaluation", {}) if old.get("sha256") == sha256(dest) else {},
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return dest


def _last_metrics(results_csv: Path) -> dict[str, float]:
    if not results_csv.exists():
        return {}
    lines = [ln for ln in results_csv.read_text().splitlines() if ln.strip()]
    keys = [k.strip() for k in lines[0].split(",")]
    vals = [v.strip() for v in lines[-1].split(",")]
    return {k: float(v) for k, v in zip(keys, vals) if k.startswith("metrics/") or k in ("epoch", "time")}


def _training_seconds(results_csv: Path) -> float:
    m = _last_metrics(results_csv)
    return float(m.get("time", 0.0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.train_fixture", description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path(os.environ.get("FIXTURE_WORK", "/tmp/yolo11-fixture")),
                   help="where the data set and the ultralytics run go (not committed)")
    for key, val in DEFAULTS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=type(val), default=val)
    p.add_argument("--time-hours", type=float, default=None,
                   help="train for this wall time instead of a fixed epoch count (ultralytics `time`: the epoch "
                        "count and lr schedule are re-fitted after every epoch, so the result depends on speed)")
    p.add_argument("--resume", action="store_true", help="continue from <work>/run/weights/last.pt")
    p.add_argument("--no-publish", action="store_true", help="train only; do not touch fixtures/model")
    p.add_argument("--publish-only", action="store_true",
                   help="do not train; publish the finished run in <work>/run (after a --no-publish run)")
    args = p.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    command = "python -m tools.train_fixture " + " ".join(
        f"--{k.replace('_', '-')} {getattr(args, k)}" for k in DEFAULTS)
    if args.time_hours:
        command += f" --time-hours {args.time_hours}"

    data_dir, run_dir = args.work / "data", args.work / "run"
    if args.publish_only:
        if not (run_dir / "weights" / "best.pt").exists():
            print(f"error: no finished run in {run_dir}; train first", file=sys.stderr)
            return 2
        dest = publish(run_dir, args, command, _training_seconds(run_dir / "results.csv"))
        print(f"[train_fixture] published {dest} sha256={sha256(dest)}", flush=True)
        return 0
    blocked: list[str] = []
    forbid_network(blocked)
    if not dataset_ready(data_dir, args.train, args.val):
        t0 = time.time()
        build_training_set(args.data_seed, data_dir, args.train, args.val)
        print(f"[train_fixture] data set written to {data_dir} in {time.time() - t0:.0f} s", flush=True)

    from ultralytics import YOLO

    skip_font_download()
    t0 = time.time()
    if args.resume:
        last = run_dir / "weights" / "last.pt"
        if not last.exists():
            print(f"error: nothing to resume: {last} does not exist; run without --resume", file=sys.stderr)
            return 2
        YOLO(str(last)).train(resume=True)
    else:
        model = YOLO("yolo11n.yaml")
        model.train(data=str(data_dir / "data.yaml"), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                    seed=args.seed, project=str(args.work), name="run", time=args.time_hours, **TRAIN_KWARGS)
    print(f"[train_fixture] training finished in {time.time() - t0:.0f} s (this process)", flush=True)
    print(f"[train_fixture] network attempts blocked: {len(blocked)}", flush=True)
    if not args.no_publish:
        dest = publish(run_dir, args, command, _training_seconds(run_dir / "results.csv"))
        print(f"[train_fixture] published {dest} sha256={sha256(dest)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
