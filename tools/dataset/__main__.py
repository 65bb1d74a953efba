"""Command line of the synthetic data-set generator.

    python -m tools.dataset --seed S --out DIR --train N --val M   # a YOLO training set + data.yaml
    python -m tools.dataset fixtures [--root fixtures]             # the committed test and calibration images
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.dataset.build import CALIB_SEED, FIXTURE_SEED, build_fixtures, build_training_set


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["fixtures"]:
        p = argparse.ArgumentParser(prog="python -m tools.dataset fixtures", description="write fixtures/images and fixtures/calib")
        p.add_argument("--root", type=Path, default=Path("fixtures"))
        p.add_argument("--seed", type=int, default=FIXTURE_SEED)
        p.add_argument("--calib-seed", type=int, default=CALIB_SEED)
        a = p.parse_args(argv[1:])
        build_fixtures(a.root, a.seed, a.calib_seed)
        print(f"wrote {a.root / 'images'} and {a.root / 'calib'}")
        return 0
    p = argparse.ArgumentParser(prog="python -m tools.dataset", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train", type=int, required=True, help="number of training images")
    p.add_argument("--val", type=int, required=True, help="number of validation images")
    a = p.parse_args(argv)
    data = build_training_set(a.seed, a.out, a.train, a.val)
    print(f"wrote {data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
