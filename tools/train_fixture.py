"""Train the bundled YOLO11n fixture model (80-class COCO graph) on the synthetic shapes data set, offline on CPU.

    python -m tools.train_fixture                      # data set (if missing), both phases, publish
    python -m tools.train_fixture --phase finetune     # one phase only (base must have finished first)
    python -m tools.train_fixture --phase base --resume   # continue an interrupted phase from its last.pt
    python -m tools.eval_fixture --write-metadata      # then: add the evaluation figures

Two phases. `base` trains from scratch at imgsz 256 (cheap: most of the budget goes into many steps);
`finetune` continues from base's best.pt at imgsz 320 without mosaic and with strong scale augmentation,
so objects as large as the 640 letterbox makes them are seen in training. Publishing copies the last
phase's best.pt (ultralytics strips the optimizer state from it) to fixtures/model/ with metadata.json.

Nothing may download: the run refuses every outbound connection and name lookup (and logs any
attempt), and skips ultralytics' font check, which would otherwise try to fetch Arial.ttf for the
label plots we do not make (`plots=False`). The AMP check (which fetches yolo11n.pt) only runs with
`amp=True` on CUDA.
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
DATA_SEED, N_TRAIN, N_VAL = 1, 800, 80

# Settings common to both phases.
COMMON = {
    "batch": 16,
    "seed": 0,
    "device": "cpu",
    "workers": 0,
    "plots": False,
    "amp": False,
    "deterministic": True,
    "optimizer": "AdamW",  # "auto" would pick lr0 = 0.002*5/(4+nc) ~ 1.2e-4 for 80 classes: too low from scratch
    "cos_lr": False,
    "fliplr": 0.5,
    "patience": 1000,
}

# Per phase: where it starts, and what differs. `time` (hours) makes ultralytics re-fit the epoch count and
# lr schedule to the wall-time budget after every epoch, which suited a CPU shared with other jobs; the
# epochs actually run are recorded in metadata.json. `epochs` is the cap (and the count when time is None).
PHASES: dict[str, dict] = {
    "base": {"init": "yolo11n.yaml", "imgsz": 256, "epochs": 30, "time": 1.4, "lr0": 0.002,
             "scale": 0.6, "mosaic": 1.0, "close_mosaic": 8},
    "finetune": {"init": "base", "imgsz": 320, "epochs": 10, "time": 0.3, "lr0": 0.0005, "warmup_epochs": 0.0,
                 "scale": 0.9, "mosaic": 0.0, "close_mosaic": 0},
}


def forbid_network(log: list[str]) -> None:
    """Make every socket connect and name lookup fail loudly: a hidden download cannot happen and shows in the log."""

    def refuse(self: socket.socket, address: object) -> None:
        msg = f"[train_fixture] BLOCKED network access to {address!r}"
        log.append(msg)
        print(msg, file=sys.stderr, flush=True)
        raise OSError(msg)

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
    """ultralytics' check_det_dataset calls check_font unconditionally (for label plots); we make no plots."""
    import ultralytics.data.utils as data_utils
    import ultralytics.utils.plotting as plotting

    data_utils.check_font = lambda *a, **k: None
    plotting.check_font = lambda *a, **k: None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dataset_ready(root: Path) -> bool:
    return ((root / "data.yaml").exists() and len(list((root / "labels" / "train").glob("*.txt"))) == N_TRAIN
            and len(list((root / "labels" / "val").glob("*.txt"))) == N_VAL)


def results(run_dir: Path) -> dict[str, float]:
    """The last row of ultralytics' results.csv: epoch, cumulative training seconds, val metrics."""
    csv = run_dir / "results.csv"
    if not csv.exists():
        return {}
    lines = [ln for ln in csv.read_text().splitlines() if ln.strip()]
    keys = [k.strip() for k in lines[0].split(",")]
    vals = [v.strip() for v in lines[-1].split(",")]
    return {k: float(v) for k, v in zip(keys, vals) if k.startswith("metrics/") or k in ("epoch", "time")}


def train_phase(name: str, work: Path, resume: bool) -> None:
    from ultralytics import YOLO

    phase = dict(PHASES[name])
    run_dir = work / name
    if resume:
        last = run_dir / "weights" / "last.pt"
        if not last.exists():
            raise SystemExit(f"error: nothing to resume: {last} does not exist; run without --resume")
        YOLO(str(last)).train(resume=True)
        return
    init = phase.pop("init")
    if init in PHASES:
        init = str(work / init / "weights" / "best.pt")
        if not Path(init).exists():
            raise SystemExit(f"error: phase {name} starts from {init}, which does not exist; run that phase first")
    YOLO(init).train(data=str(work / "data" / "data.yaml"), project=str(work), name=name, exist_ok=True,
                     **COMMON, **phase)


def publish(work: Path, phases: list[str], command: str) -> Path:
    """Copy the last phase's best.pt into fixtures/model and write metadata.json."""
    import torch
    import ultralytics

    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    dest = MODEL_DIR / WEIGHTS_NAME
    shutil.copyfile(work / phases[-1] / "weights" / "best.pt", dest)
    meta_path = MODEL_DIR / "metadata.json"
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    done = {p: results(work / p) for p in phases}
    meta = {
        "weights": WEIGHTS_NAME,
        "sha256": sha256(dest),
        "architecture": "yolo11n.yaml (ultralytics), nc=80, trained from scratch",
        "dataset": {"command": f"python -m tools.dataset --seed {DATA_SEED} --out DIR --train {N_TRAIN} --val {N_VAL}",
                    "seed": DATA_SEED, "train": N_TRAIN, "val": N_VAL},
        "training": {"command": command, "common": COMMON,
                     "phases": {p: {**PHASES[p], "epochs_completed": int(done[p].get("epoch", 0)),
                                    "train_time_s": round(done[p].get("time", 0.0), 1),
                                    "final_val_metrics": {k: v for k, v in done[p].items() if k.startswith("metrics/")}}
                                for p in phases}},
        "wall_time_s": round(sum(d.get("time", 0.0) for d in done.values()), 1),
        "versions": {"ultralytics": ultralytics.__version__, "torch": torch.__version__,
                     "python": sys.version.split()[0]},
        "class_names": CLASS_NAMES,
        "evaluation": old.get("evaluation", {}) if old.get("sha256") == sha256(dest) else {},
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.train_fixture", description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path(os.environ.get("FIXTURE_WORK", "/tmp/yolo11-fixture")),
                   help="where the data set and the ultralytics runs go (not committed)")
    p.add_argument("--phase", choices=[*PHASES, "all"], default="all")
    p.add_argument("--resume", action="store_true", help="continue the phase from <work>/<phase>/weights/last.pt")
    p.add_argument("--no-publish", action="store_true", help="train only; do not touch fixtures/model")
    p.add_argument("--publish-only", action="store_true", help="do not train; publish the finished phases")
    args = p.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    phases = list(PHASES) if args.phase == "all" else [args.phase]
    command = "python -m tools.train_fixture  # phases: " + ", ".join(PHASES)
    if args.publish_only:
        missing = [ph for ph in PHASES if not (args.work / ph / "weights" / "best.pt").exists()]
        if missing:
            print(f"error: phases {missing} have not finished in {args.work}; train them first", file=sys.stderr)
            return 2
        dest = publish(args.work, list(PHASES), command)
        print(f"[train_fixture] published {dest} sha256={sha256(dest)}", flush=True)
        return 0

    blocked: list[str] = []
    forbid_network(blocked)
    data_dir = args.work / "data"
    if not dataset_ready(data_dir):
        t0 = time.time()
        build_training_set(DATA_SEED, data_dir, N_TRAIN, N_VAL)
        print(f"[train_fixture] data set written to {data_dir} in {time.time() - t0:.0f} s", flush=True)
    skip_font_download()
    for ph in phases:
        t0 = time.time()
        train_phase(ph, args.work, args.resume)
        print(f"[train_fixture] phase {ph} finished in {time.time() - t0:.0f} s (this process)", flush=True)
    print(f"[train_fixture] network attempts blocked: {len(blocked)}", flush=True)
    if not args.no_publish and phases[-1] == list(PHASES)[-1]:
        dest = publish(args.work, list(PHASES), command)
        print(f"[train_fixture] published {dest} sha256={sha256(dest)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
