"""Hold a labgrid place for a session: acquire it through the coordinator, hand back the RFC2217 URL of its
serial port, release it when the session ends - also when the session fails.

    held = acquire_place("p4-lab-2")          # coordinator: argument, else LG_COORDINATOR, else 127.0.0.1:20408
    url = held.url                            # rfc2217://exporter-host:PORT?ign_set_control
    ...
    held.release()                            # idempotent; also run at interpreter exit if nobody did

This module talks to labgrid only through its command-line client (`python -m labgrid.remote.client`, the
same program as `labgrid-client`): `acquire`, `env` (the acquired place's resources as YAML) and `release`.
That is labgrid's public interface for locking places; it keeps gRPC and asyncio out of the test process
(no event loop installed in a pytest worker, no gRPC threads across the fork of a flasher or simulator) and
bounds every call by a timeout. The owner of a place is `host/user` (LG_HOSTNAME / LG_USERNAME override it),
so `labgrid-client -p PLACE show` on any machine names the runner that holds it.

Every failure to get a usable place is a DutUnavailable with one line that names the place, the coordinator
and the fix: coordinator unreachable, no such place, held by someone else, no resource (exporter gone),
no NetworkSerialPort, ser2net not started. A place a session could not release (the coordinator went away
in between) is reported on stderr, never raised: a release runs in teardown and at interpreter exit.
A process killed outright (SIGKILL, power loss) cannot release: the place stays acquired by its host/user
until someone runs `labgrid-client -p PLACE release --kick`.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from getpass import getuser
from socket import gethostname
from typing import Callable

from host.dut.backend import DutUnavailable

DEFAULT_COORDINATOR = "127.0.0.1:20408"
CLIENT_TIMEOUT_S = 30.0  # one labgrid-client call (normally ~0.5 s)
PORT_WAIT_S = 20.0  # the exporter starts ser2net on acquire and publishes its TCP port shortly after
INSTALL = "pip install labgrid==26.0.1"

#: labgrid-client reads these to pick places from an environment file instead of `-p`: never pass them on
_CLIENT_ENV_DROP = ("LG_ENV", "LG_PLACE", "PLACE", "LG_STATE", "STATE", "LG_INITIAL_STATE", "LG_TOKEN")

#: (returncode, stdout, stderr) of one client call; a TimeoutExpired propagates. Replaced by fakes in tests.
Runner = Callable[[list[str], dict[str, str], float], tuple[int, str, str]]


def _run(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "labgrid.remote.client", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


def coordinator_address(coordinator: str | None = None) -> str:
    return coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def owner() -> str:
    """Who this process acquires places as, in labgrid's own form."""
    return f"{os.environ.get('LG_HOSTNAME') or gethostname()}/{os.environ.get('LG_USERNAME') or getuser()}"


@dataclass(eq=False)
class HeldPlace:
    """A place this process acquired; `release` gives it back once (later calls do nothing)."""

    place: str
    coordinator: str
    url: str
    resource: dict = field(default_factory=dict)  # the NetworkSerialPort's parameters as the coordinator has them
    _runner: Runner = field(default=_run, repr=False)
    _env: dict[str, str] = field(default_factory=dict, repr=False)  # the client environment it was acquired with
    _released: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        _HELD.discard(self)
        cmd = ["-x", self.coordinator, "-p", self.place, "release"]
        try:
            rc, out, err = self._runner(cmd, self._env or _client_env(), CLIENT_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as exc:
            rc, out, err = 1, "", str(exc)
        if rc != 0 and "is not acquired" not in err:
            print(f"yolo11-hil: could not release labgrid place {self.place} on coordinator {self.coordinator} "
                  f"({_last_line(err or out)}); release it with `labgrid-client -x {self.coordinator} -p {self.place} "
                  "release`", file=sys.stderr)

    def __enter__(self) -> HeldPlace:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


_HELD: set[HeldPlace] = set()


def release_all() -> None:
    """Release every place this process still holds: run at interpreter exit (a session that failed before its DUT
    was opened - a flash error, pytest.exit - still gives its place back); call it before `os._exit`, which skips
    exit handlers."""
    for held in list(_HELD):
        held.release()


atexit.register(release_all)


def acquire_place(place: str, coordinator: str | None = None, *, port_wait_s: float = PORT_WAIT_S,
                  runner: Runner | None = None) -> HeldPlace:
    """Acquire `place` and return it with the RFC2217 URL of its serial port; DutUnavailable (one line) if not."""
    address = coordinator_address(coordinator)
    run = runner or _run
    if runner is None and importlib.util.find_spec("labgrid") is None:
        raise DutUnavailable(f"labgrid is not installed, so labgrid place {place} (coordinator {address}) cannot be "
                             f"acquired: {INSTALL}")
    env = _client_env()  # release with the identity (LG_HOSTNAME/LG_USERNAME) that acquired
    rc, out, err = _call(run, address, place, "acquire", env)
    if rc != 0:
        raise DutUnavailable(_acquire_error(place, address, out, err))
    held = HeldPlace(place, address, url="", _runner=run, _env=env)
    _HELD.add(held)
    try:
        held.resource = _serial_port(run, address, place, port_wait_s, env)
        held.url = _url(held.resource)
    except BaseException:
        held.release()
        raise
    return held


def _client_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _CLIENT_ENV_DROP}


def _call(run: Runner, address: str, place: str, command: str, env: dict[str, str]) -> tuple[int, str, str]:
    try:
        return run(["-x", address, "-p", place, command], env, CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DutUnavailable(f"labgrid coordinator {address} gave no answer within {CLIENT_TIMEOUT_S:.0f} s while "
                             f"{command}ing place {place}: check that the coordinator is up and reachable "
                             "(LG_COORDINATOR)") from None
    except OSError as exc:
        raise DutUnavailable(f"cannot run labgrid's client for place {place} (coordinator {address}): {exc}; "
                             f"{INSTALL}") from None


def _acquire_error(place: str, address: str, out: str, err: str) -> str:
    """One line for a failed `acquire`, from labgrid-client's messages (labgrid 26.0.1)."""
    text = f"{err}\n{out}"
    client = f"labgrid-client -x {address} -p {place}"
    if "Could not connect to coordinator" in text or "coordinator is unavailable" in text:
        return (f"labgrid coordinator {address} is unreachable, so place {place} cannot be acquired: start it "
                f"(`labgrid-coordinator --listen {address}`) or set LG_COORDINATOR to the one that runs")
    if "matches nothing" in text:
        return (f"labgrid place {place} does not exist on coordinator {address}: create it (`{client} create` and "
                f"`{client} add-match EXPORTER/GROUP/NetworkSerialPort`) or fix `place:` in the hardware map")
    by_place = re.search(r"already acquired by place '([^']+)'", text)
    if by_place:
        return (f"labgrid place {place} on coordinator {address} shares its serial port with place "
                f"{by_place.group(1)}, which holds it now: wait for that session or give each place its own port")
    held_by = re.search(r"already acquired by (\S+?)\.?(?:\s|$)", text)
    if held_by:
        return (f"labgrid place {place} on coordinator {address} is held by {held_by.group(1)}: wait until that "
                f"session ends (or ask its owner to run `{client} release`), or use another entry of the map")
    if "You have already acquired place" in text:
        return (f"labgrid place {place} on coordinator {address} is already held by this host and user ({owner()}) "
                f"outside this session (a manual acquire, or a killed run): when nobody uses it, `{client} release`")
    if "has no matching remote resource" in text:
        return (f"labgrid place {place} on coordinator {address} matches no resource that is online (is its "
                f"exporter running?): start the exporter, then check `{client} show`")
    return f"labgrid could not acquire place {place} on coordinator {address}: {_last_line(err or out)}"


def _serial_port(run: Runner, address: str, place: str, wait_s: float, env: dict[str, str]) -> dict:
    """The acquired place's NetworkSerialPort parameters, once the exporter has published its TCP port."""
    import yaml

    deadline = time.monotonic() + wait_s
    while True:
        rc, out, err = _call(run, address, place, "env", env)
        if rc != 0:
            raise DutUnavailable(f"labgrid place {place} on coordinator {address} was acquired but its resources "
                                 f"cannot be read ({_last_line(err or out)}); check `labgrid-client -x {address} "
                                 f"-p {place} show`")
        try:
            doc = yaml.safe_load(out) or {}
            resources = (doc.get("targets") or {}).get(place, {}).get("resources") or []
        except (yaml.YAMLError, AttributeError) as exc:
            raise DutUnavailable(f"labgrid place {place} on coordinator {address}: unreadable `env` answer "
                                 f"({_last_line(str(exc))})") from None
        ports = [r["NetworkSerialPort"] for r in resources if isinstance(r, dict) and "NetworkSerialPort" in r]
        if not ports:
            kinds = ", ".join(sorted(k for r in resources if isinstance(r, dict) for k in r)) or "nothing"
            raise DutUnavailable(f"labgrid place {place} on coordinator {address} has no serial port (it holds "
                                 f"{kinds}): `labgrid-client -x {address} -p {place} add-match "
                                 "EXPORTER/GROUP/NetworkSerialPort`")
        port = ports[0]
        if port.get("port") and port.get("host"):
            return dict(port)
        if time.monotonic() > deadline:
            raise DutUnavailable(f"labgrid place {place} on coordinator {address}: the exporter published no TCP port "
                                 f"for its serial port within {wait_s:.0f} s (ser2net did not start): check the "
                                 "exporter's log and that ser2net is installed on its host "
                                 "(apt-get install -y ser2net)")
        time.sleep(0.3)


def _url(port: dict) -> str:
    host = str(port["host"])
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if port.get("protocol", "rfc2217") == "raw":
        return f"socket://{host}:{port['port']}"
    # ser2net cannot set DTR/RTS on every line (a pty never acks them): without this, open() times out
    return f"rfc2217://{host}:{port['port']}?ign_set_control"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
