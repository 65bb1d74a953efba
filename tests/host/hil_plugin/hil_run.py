"""Run the HIL suite in a subprocess as a user would (helpers for this folder's tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / "fixtures" / "images"


def hil_command(tiny: dict[str, Path], *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "--target", "esp32p4", f"--model={tiny['model']}", "--imgsz", "64",
            f"--calib={tiny['calib']}", "-p", "no:cacheprovider", *args]


def hil_env(tiny: dict[str, Path], extra: dict[str, str] | None = None) -> dict[str, str]:
    return dict(os.environ, HIL_CACHE_DIR=str(tiny["cache"]), **(extra or {}))


def run_hil(tiny: dict[str, Path], *args: str, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(hil_command(tiny, *args), cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=hil_env(tiny, env))
