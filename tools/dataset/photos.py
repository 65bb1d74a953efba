"""The two real photos that ship inside the installed ultralytics package, located in place (never copied).

They give the harness a check on natural images (people, a bus) next to the synthetic fixtures, e.g. for
the real COCO yolo11n.pt. They are ultralytics' files under its AGPL-3.0 licence, so the project refers
to them in the user's installation instead of redistributing them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from host.errors import HarnessError

PHOTO_NAMES = ("bus.jpg", "zidane.jpg")


def real_photos() -> list[Path]:
    """Paths of ultralytics/assets/bus.jpg and zidane.jpg in the installed package.

    Raises HarnessError (with the fix) when ultralytics is not installed or ships without them.
    Found via the import system without importing ultralytics (which would import torch).
    """
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("ultralytics is not installed; install it with `pip install -r requirements.txt`")
    assets = Path(list(spec.submodule_search_locations)[0]) / "assets"
    paths = [assets / name for name in PHOTO_NAMES]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise HarnessError(f"{', '.join(missing)} not found in {assets}; reinstall ultralytics "
                                "(`pip install --force-reinstall ultralytics==<pinned version>`)")
    return paths
