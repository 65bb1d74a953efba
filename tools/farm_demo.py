"""A labgrid board farm on this machine, with simulated DUTs as the boards; runs the HIL suite through it.

    python tools/farm_demo.py --boards 2 --json

starts, on loopback only (127.0.0.1):
  - N simulated DUTs (`python -m host.dut.sim --pack PACK --target esp32p4`), each behind its own pty;
  - a labgrid coordinator on a free port, in a fresh temporary folder (it saves its places there);
  - a labgrid exporter publishing each pty as a RawSerialPort (a NetworkSerialPort to clients); on acquire it
    starts one ser2net per port, bound to 127.0.0.1 (a wrapper on the exporter's PATH adds the address to the
    `tcp,PORT` accepter labgrid writes, which otherwise listens on every interface);
  - N places, one per DUT, tagged `board=esp32p4-sim`;
then runs `python -m pytest tests/hil` with a hardware map of `kind: remote, serves: sim, place: ...` entries,
once with one board (`-n 1`) and once with all N (`-n N`), and prints the figures. Everything it started is
stopped at the end, on failure and on Ctrl-C/SIGTERM (each process is its own process group, killed whole).
Every wait is bounded.

The model is the harness's tiny test detector (a few convs, 64x64), quantized into a cache in the work folder,
so the sims and the suite see the same model sha256. The sims compute for real (no link or latency model), so
the speedup is what N processes sharing this machine's cores give, not what N boards would.

`LocalFarm` is also the fixture of tests/host/farm/test_labgrid_farm.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python tools/farm_demo.py` from anywhere
    sys.path.insert(0, str(ROOT))

START_TIMEOUT_S = 60.0
SER2NET_INSTALL = "apt-get install -y ser2net"
LABGRID_INSTALL = "pip install labgrid==26.0.1"

#: ser2net on the exporter's PATH: labgrid's `accepter: ...,tcp,PORT` becomes `...,tcp,127.0.0.1,PORT`
SER2NET_LOOPBACK = """#!/bin/sh
# labgrid's exporter starts ser2net with an accepter on every interface; bind it to loopback instead.
n=$#
for a in "$@"; do
  case "$a" in
    *accepter:*,tcp,*) a=$(printf '%s' "$a" | sed 's/,tcp,\\([0-9][0-9]*\\)$/,tcp,127.0.0.1,\\1/') ;;
  esac
  set -- "$@" "$a"
done
shift "$n"
exec {ser2net} "$@"
"""


def labgrid_tool(name: str) -> str | None:
    """A labgrid console script: beside this Python (its venv) or on PATH."""
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.is_file() else shutil.which(name)


def ser2net_path() -> str | None:
    found = shutil.which("ser2net")
    return found or ("/usr/sbin/ser2net" if os.path.isfile("/usr/sbin/ser2net") else None)


def missing_tools() -> list[str]:
    """The install commands of what a local farm lacks (empty: it can run)."""
    missing = []
    if ser2net_path() is None:
        missing.append(f"ser2net is not installed: {SER2NET_INSTALL}")
    if labgrid_tool("labgrid-coordinator") is None or labgrid_tool("labgrid-exporter") is None:
        missing.append(f"labgrid-coordinator is not installed: {LABGRID_INSTALL}")
    return missing


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _stop_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the process group `proc` leads, then SIGKILL what is left; reap `proc`."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the leader may be gone while children (ser2net) live on
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass


class FarmError(RuntimeError):
    pass


class LocalFarm:
    """Coordinator, exporter and N simulated DUTs on loopback; `stop()` (idempotent) ends all of them."""

    def __init__(self, root: Path, pack: Path, boards: int, target: str = "esp32p4",
                 name: str = "farm", start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.root = Path(root)
        self.pack = Path(pack)
        self.boards = boards
        self.target = target
        self.exporter_name = f"{name}-exporter"
        self.start_timeout_s = start_timeout_s
        self.coordinator = ""
        self.places: list[str] = [f"{target}-sim-{i}" for i in range(boards)]
        self.ptys: list[str] = []
        self.processes: list[tuple[str, subprocess.Popen, Path]] = []
        self.timings: dict[str, float] = {}

    # -- life cycle -------------------------------------------------------------------------------------------------
    def __enter__(self) -> LocalFarm:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> LocalFarm:
        missing = missing_tools()
        if missing:
            raise FarmError("; ".join(missing))
        self.root.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        for i in range(self.boards):
            self._start_sim(i)
        self.timings["sims_s"] = time.monotonic() - t0
        t1 = time.monotonic()
        self._start_coordinator()
        self._start_exporter()
        self._create_places()
        self.timings["labgrid_s"] = time.monotonic() - t1
        return self

    def stop(self) -> None:
        """Exporter first (its ser2net processes go with its group), then the coordinator, then the sims."""
        order = {"exporter": 0, "coordinator": 1}
        for _, proc, _ in sorted(self.processes, key=lambda p: order.get(p[0], 2)):
            _stop_group(proc)
        self.processes.clear()

    def _spawn(self, role: str, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.root / f"{role}.log"
        with open(log, "w") as handle:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env or os.environ.copy(), stdout=handle, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.processes.append((role, proc, log))
        return proc

    def _wait(self, what: str, ready, proc: subprocess.Popen, log: Path) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while not ready():
            if proc.poll() is not None:
                raise FarmError(f"{what} exited with {proc.returncode}: {_tail(log)}")
            if time.monotonic() > deadline:
                raise FarmError(f"{what} not ready within {self.start_timeout_s:.0f} s: {_tail(log)}")
            time.sleep(0.2)

    def _start_sim(self, index: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        role = f"sim-{index}"
        proc = self._spawn(role, [sys.executable, "-m", "host.dut.sim", "--pack", str(self.pack), "--target",
                                  self.target], ROOT, env)
        log = self.root / f"{role}.log"

        def ready() -> bool:
            text = log.read_text(errors="replace")
            if "SIMERROR" in text:
                raise FarmError(f"simulated DUT {index} failed: {_tail(log)}")
            return "\nSIM " in "\n" + text

        self._wait(f"simulated DUT {index}", ready, proc, log)
        pty = next(line.split(None, 1)[1].strip() for line in log.read_text().splitlines() if line.startswith("PTY "))
        self.ptys.append(pty)

    def _start_coordinator(self) -> None:
        port = free_port()
        self.coordinator = f"127.0.0.1:{port}"
        workdir = self.root / "coordinator"  # it saves places.yaml/resources.yaml in its cwd: fresh each farm
        workdir.mkdir()
        proc = self._spawn("coordinator", [labgrid_tool("labgrid-coordinator"), "--listen", self.coordinator], workdir)
        self._wait(f"labgrid coordinator on {self.coordinator}", lambda: _listening(port), proc,
                   self.root / "coordinator.log")

    def _start_exporter(self) -> None:
        shim_dir = self.root / "bin"
        shim_dir.mkdir()
        shim = shim_dir / "ser2net"
        shim.write_text(SER2NET_LOOPBACK.format(ser2net=ser2net_path()))
        shim.chmod(0o755)
        config = self.root / "exporter.yaml"
        config.write_text("".join(f"{self.target}-sim-{i}:\n  RawSerialPort:\n    port: {pty}\n    speed: 115200\n"
                                  for i, pty in enumerate(self.ptys)))
        env = dict(self.client_env(), PATH=f"{shim_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        proc = self._spawn("exporter", [labgrid_tool("labgrid-exporter"), "--coordinator", self.coordinator,
                                        "--name", self.exporter_name, "--hostname", "127.0.0.1", str(config)],
                           self.root, env)
        groups = [f"{self.exporter_name}/{place}/" for place in self.places]

        def ready() -> bool:
            listing = self.client("resources", check=False).stdout
            return all(g in listing for g in groups)

        self._wait("labgrid exporter", ready, proc, self.root / "exporter.log")

    def _create_places(self) -> None:
        for place in self.places:
            self.client("-p", place, "create")
            self.client("-p", place, "add-match", f"{self.exporter_name}/{place}/NetworkSerialPort")
            self.client("-p", place, "set-tags", f"board={self.target}-sim", f"target={self.target}")

    # -- use --------------------------------------------------------------------------------------------------------
    def client_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("LG_ENV", "LG_PLACE", "LG_TOKEN")}
        env["LG_COORDINATOR"] = self.coordinator
        return env

    def client(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
               timeout: float = 30.0) -> subprocess.CompletedProcess:
        """`labgrid-client -x COORDINATOR ARGS` against this farm."""
        proc = subprocess.run([sys.executable, "-m", "labgrid.remote.client", "-x", self.coordinator, *args],
                              capture_output=True, text=True, timeout=timeout, env=env or self.client_env(),
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise FarmError(f"labgrid-client {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
        return proc

    def acquired_by(self, place: str) -> str | None:
        """The owner of `place` ("host/user"), or None when it is free."""
        for line in self.client("-p", place, "show").stdout.splitlines():
            if line.strip().startswith("acquired:"):
                owner = line.split(":", 1)[1].strip()
                return None if owner in ("None", "") else owner
        return None

    def hardware_map(self, path: Path, boards: int | None = None) -> Path:
        """A hardware map with one `kind: remote` entry per place (the first `boards` of them)."""
        lines = ["# a local labgrid farm of simulated DUTs (tools/farm_demo.py)", "boards:"]
        for place in self.places[:boards or self.boards]:
            lines += [f"  - id: {place}", "    kind: remote", f"    target: {self.target}", "    serves: sim",
                      f"    place: {place}"]
        path.write_text("\n".join(lines) + "\n")
        return path


# -- the model both the sims and the suite use ----------------------------------------------------------------------
def tiny_model(root: Path, cache: Path, target: str = "esp32p4") -> dict[str, Path]:
    """The tiny test detector, its calibration images, the quantization cache and the flash pack built from it."""
    from host.espdl import write_pdl3
    from host.model import quantize_model
    from tests.host.builders import write_images, write_tiny_detector

    root.mkdir(parents=True, exist_ok=True)
    model = write_tiny_detector(root / "tiny.onnx")
    calib = write_images(root / "calib", 8, seed=3)
    quantized = quantize_model(model, target=target, imgsz=64, calib_dir=calib, cache_root=cache)
    pack = root / "model_partition.bin"
    pack.write_bytes(write_pdl3({"model": quantized.espdl_path.read_bytes()}))
    return {"model": model, "calib": calib, "cache": cache, "pack": pack, "sha256": quantized.sha256}


def hil_command(model: dict[str, Path], hardware_map: Path, report_dir: Path, workers: int,
                target: str = "esp32p4", extra: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "pytest", "tests/hil", "-n", str(workers), "--target", target,
            f"--hardware-map={hardware_map}", f"--model={model['model']}", "--imgsz", "64",
            f"--calib={model['calib']}", f"--report-dir={report_dir}", "-p", "no:cacheprovider", *(extra or [])]


def run_suite(farm: LocalFarm, model: dict[str, Path], boards: int, workdir: Path, timeout_s: float = 900.0,
              extra: list[str] | None = None) -> dict[str, Any]:
    """The HIL suite through the farm on its first `boards` places (`-n boards`); wall time, exit code, report."""
    report_dir = workdir / f"reports-{boards}"
    hw_map = farm.hardware_map(workdir / f"boards-{boards}.yaml", boards)
    env = dict(farm.client_env(), HIL_CACHE_DIR=str(model["cache"]), HIL_LOCK_DIR=str(workdir / "locks"),
               PYTHONHASHSEED="0")
    log = workdir / f"pytest-{boards}.log"
    started = time.monotonic()
    with open(log, "w") as handle:
        proc = subprocess.Popen(hil_command(model, hw_map, report_dir, boards, farm.target, extra), cwd=ROOT, env=env,
                                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _stop_group(proc)  # on a timeout or Ctrl-C too: pytest and its xdist workers go
    wall = time.monotonic() - started
    return {"boards": boards, "returncode": proc.returncode, "wall_s": round(wall, 2), "log": log,
            "report_dir": report_dir, **merged_figures(report_dir)}


def merged_figures(report_dir: Path) -> dict[str, Any]:
    """Boards and images per board from the merged report (accuracy.json when a dataset ran, else results.json)."""
    out: dict[str, Any] = {"report_boards": [], "images_per_board": {}, "results": 0, "failed_results": 0,
                           "test_phase_s": None}
    try:
        merged = json.loads((report_dir / "results.json").read_text())
    except (OSError, ValueError):
        return out
    session = merged.get("session", {})
    results = merged.get("results", [])
    out["report_boards"] = session.get("boards") or ([session["board"]] if session.get("board") else [])
    per_board: dict[str, int] = {}
    for record in results:
        if record.get("kind") == "detect":
            per_board[str(record.get("board"))] = per_board.get(str(record.get("board")), 0) + 1
    try:
        per_board = json.loads((report_dir / "accuracy.json").read_text())["images_per_board"]
    except (OSError, ValueError, KeyError):
        pass
    out["images_per_board"] = per_board
    # the test phase: from the first DUT session's start to the last result (no pytest/xdist start-up, no imports)
    starts = [s.get("time") for s in merged.get("sessions", [session]) if isinstance(s.get("time"), (int, float))]
    ends = [r.get("time") for r in results if isinstance(r.get("time"), (int, float))]
    out["test_phase_s"] = round(max(ends) - min(starts), 2) if starts and ends else None
    out["results"] = len(results)
    out["failed_results"] = sum(1 for r in results if r.get("passed") is False)
    return out


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # run the finally blocks: everything started is stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=2, help="simulated DUTs in the farm (and pytest-xdist workers)")
    parser.add_argument("--target", default="esp32p4")
    parser.add_argument("--json", action="store_true", help="print one JSON object (else a few lines)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, reports) and print it")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed for each suite run")
    args = parser.parse_args(argv)
    if args.boards < 1:
        parser.error("--boards must be at least 1")
    missing = missing_tools()
    if missing:
        print("farm_demo: " + "; ".join(missing), file=sys.stderr)
        return 2
    from host.cli import stdout_to_stderr

    signal.signal(signal.SIGTERM, _on_sigterm)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    workdir = Path(tempfile.mkdtemp(prefix="yolo11-hil-farm-"))
    farm = None
    try:
        t0 = time.monotonic()
        with stdout_to_stderr():  # ESP-PPQ prints its progress on stdout: keep stdout for the JSON
            model = tiny_model(workdir / "model", workdir / "cache", args.target)
        model_s = time.monotonic() - t0
        farm = LocalFarm(workdir / "farm", model["pack"], args.boards, args.target)
        with farm:
            one = run_suite(farm, model, 1, workdir, args.timeout)
            many = run_suite(farm, model, args.boards, workdir, args.timeout) if args.boards > 1 else one
            held = {place: farm.acquired_by(place) for place in farm.places}
        passed = one["returncode"] == 0 and many["returncode"] == 0 and len(many["report_boards"]) == args.boards
        report = {
            "boards": args.boards,
            "images_per_board": [many["images_per_board"].get(b, 0) for b in many["report_boards"]],
            "report_boards": many["report_boards"],
            "passed": passed,
            "speedup": round(one["wall_s"] / many["wall_s"], 2) if many["wall_s"] else None,
            "wall_s": {"1": one["wall_s"], str(args.boards): many["wall_s"]},
            "test_phase_s": {"1": one["test_phase_s"], str(args.boards): many["test_phase_s"]},
            "speedup_test_phase": (round(one["test_phase_s"] / many["test_phase_s"], 2)
                                   if one["test_phase_s"] and many["test_phase_s"] else None),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "returncodes": {"1": one["returncode"], str(args.boards): many["returncode"]},
            "results": many["results"], "failed_results": many["failed_results"],
            "places_still_acquired": {p: o for p, o in held.items() if o},
            "setup_s": {"model": round(model_s, 1), **{k: round(v, 1) for k, v in farm.timings.items()}},
            "latency": "sims compute for real (no link/latency model): the speedup is N processes on "
                       f"{os.cpu_count()} cores",
        }
        if args.keep:
            report["workdir"] = str(workdir)
        if args.json:
            print(json.dumps(report))
        else:
            print(f"farm of {args.boards} simulated DUTs: {'PASSED' if passed else 'FAILED'}; 1 board "
                  f"{one['wall_s']} s, {args.boards} boards {many['wall_s']} s (speedup {report['speedup']}); "
                  f"images per board {report['images_per_board']}")
            if not passed:
                print(f"logs: {one['log']}, {many['log']}" if args.keep else "rerun with --keep to see the logs")
        return 0 if passed else 1
    except KeyboardInterrupt:
        print("farm_demo: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except FarmError as exc:
        print(f"farm_demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if farm is not None:
            farm.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
