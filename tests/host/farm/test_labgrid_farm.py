"""A labgrid board farm end to end, on loopback: coordinator, exporter, ser2net and two simulated DUTs.

The farm (tools/farm_demo.py LocalFarm) starts two `python -m host.dut.sim` processes on a pack of the tiny test
detector, a coordinator on a free 127.0.0.1 port in a fresh folder, an exporter publishing both ptys (its ser2net
bound to 127.0.0.1), and one place per DUT. Then:
  - host.dut.labgrid acquires a place from the real coordinator (URL, owner, one-line errors, release);
  - `pytest tests/hil -n 2 --hardware-map=<two kind: remote, serves: sim, place: ... entries>` passes, each worker
    acquiring its own place, and the merged report names both boards;
  - a session that fails after acquiring its place still releases it.
Every process the farm started is stopped by the fixture's teardown (process groups, SIGTERM then SIGKILL), also
when a test fails; every wait is bounded.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.farm_demo import LocalFarm, free_port, missing_tools, run_suite, tiny_model

try:
    import xdist  # noqa: F401  (the suite below runs with -n 2)
except ImportError:  # pragma: no cover - the venv pins it
    pytest.skip("pytest-xdist is not installed: pip install pytest-xdist==3.8.0", allow_module_level=True)

if missing_tools():
    pytest.skip("; ".join(missing_tools()), allow_module_level=True)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
IMAGES = sorted((ROOT / "fixtures" / "images").glob("*.png"))


@pytest.fixture(scope="module")
def farm_model(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("farm_model")
    return tiny_model(root, root / "cache")


@pytest.fixture(scope="module")
def farm(farm_model, tmp_path_factory):
    with LocalFarm(tmp_path_factory.mktemp("farm"), farm_model["pack"], boards=2) as running:
        yield running


def _listen_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if width == 8:
                    found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.add(address)
    return found


def test_acquire_place_from_a_real_coordinator(farm, monkeypatch) -> None:
    from host.dut.backend import DutUnavailable
    from host.dut.labgrid import acquire_place, owner

    place = farm.places[0]
    held = acquire_place(place, farm.coordinator)
    try:
        match = re.fullmatch(r"rfc2217://127\.0\.0\.1:(\d+)\?ign_set_control", held.url)
        assert match, held.url
        assert _listen_addresses(int(match.group(1))) == {"127.0.0.1"}  # ser2net: loopback only
        assert farm.acquired_by(place) == owner()

        me = owner()
        monkeypatch.setenv("LG_USERNAME", "someone-else")
        with pytest.raises(DutUnavailable, match=rf"place {place} on coordinator {farm.coordinator} is held by {me}: "):
            acquire_place(place, farm.coordinator)
    finally:
        held.release()  # as the identity that acquired, whatever the environment says now
    held.release()  # idempotent
    assert farm.acquired_by(place) is None
    monkeypatch.delenv("LG_USERNAME")

    with pytest.raises(DutUnavailable, match=f"labgrid place no-such-place does not exist on coordinator "
                                             f"{farm.coordinator}: create it"):
        acquire_place("no-such-place", farm.coordinator)
    nobody = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("LG_COORDINATOR", nobody)  # the environment names the coordinator when the caller does not
    with pytest.raises(DutUnavailable, match=f"labgrid coordinator {nobody} is unreachable, so place {place}"):
        acquire_place(place)


def test_hil_suite_on_two_remote_boards_through_labgrid(farm, farm_model, tmp_path: Path) -> None:
    run = run_suite(farm, farm_model, 2, tmp_path, timeout_s=600)
    out = run["log"].read_text(errors="replace")
    assert run["returncode"] == 0, out[-5000:]
    assert run["report_boards"] == sorted(farm.places), out[-3000:]
    per_board = run["images_per_board"]
    assert set(per_board) == set(farm.places) and all(per_board.values()), per_board
    assert sum(per_board.values()) == len(IMAGES)
    assert "DUTs: 2 from the hardware map" in out and run["failed_results"] == 0
    assert [farm.acquired_by(p) for p in farm.places] == [None, None]  # every worker gave its place back


def test_a_session_that_fails_after_acquiring_still_releases_the_place(farm, farm_model, tmp_path: Path) -> None:
    """`serves: board` makes the session look for a firmware build to flash after it acquired the place; there is
    none here (or flashing a simulated DUT fails): the session ends without a DUT, and the place is free."""
    place = farm.places[1]
    hw_map = tmp_path / "map.yaml"
    hw_map.write_text(f"boards:\n  - id: {place}\n    kind: remote\n    target: esp32p4\n    serves: board\n"
                      f"    place: {place}\n")
    import subprocess
    import sys

    before = _changed(farm, place)
    env = dict(farm.client_env(), HIL_CACHE_DIR=str(farm_model["cache"]), HIL_LOCK_DIR=str(tmp_path / "locks"),
               PYTHONHASHSEED="0", IDF_PATH="")
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/hil/test_identity.py", "--target", "esp32p4",
                           f"--hardware-map={hw_map}", f"--model={farm_model['model']}", "--imgsz", "64",
                           f"--calib={farm_model['calib']}", f"--report-dir={tmp_path / 'reports'}",
                           "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert "passed" not in out.splitlines()[-1], out[-3000:]  # no DUT: nothing can pass
    assert farm.acquired_by(place) is None, out[-3000:]
    assert _changed(farm, place) != before, out[-3000:]  # it was acquired (and released) in between
    assert "no firmware build" in out or "flash" in out, out[-3000:]  # it failed where expected: after acquiring


def _changed(farm: LocalFarm, place: str) -> str:
    """The coordinator's last-change time of a place (acquire and release update it)."""
    lines = farm.client("-p", place, "show").stdout.splitlines()
    return next(line for line in lines if line.strip().startswith("changed:"))
