"""host.dut.labgrid against a fake labgrid-client: URL, waiting for the port, one-line errors, idempotent release.

The messages matched here are labgrid 26.0.1's (they are what test_labgrid_farm.py gets from a real coordinator).
"""

from __future__ import annotations

import pytest

from host.dut import labgrid
from host.dut.backend import DutUnavailable

ENV_YAML = """targets:
  {place}:
    resources:
    - NetworkSerialPort:
        name: RawSerialPort
        host: 127.0.0.1
        port: {port}
        speed: 115200
"""


class FakeClient:
    """Answers labgrid-client calls from a script: command -> list of (rc, stdout, stderr), the last one repeats."""

    def __init__(self, **answers: list[tuple[int, str, str]]) -> None:
        self.answers = {k: list(v) for k, v in answers.items()}
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
        assert "LG_ENV" not in env  # would make labgrid-client acquire the env file's places instead of -p
        self.calls.append(args)
        script = self.answers[args[-1]]
        return script.pop(0) if len(script) > 1 else script[0]

    def commands(self) -> list[str]:
        return [c[-1] for c in self.calls]


OK = (0, "", "")


@pytest.fixture(autouse=True)
def _no_lg_env(monkeypatch) -> None:
    monkeypatch.setenv("LG_ENV", "/nonexistent/env.yaml")  # must be dropped for the client
    monkeypatch.delenv("LG_COORDINATOR", raising=False)


def test_acquire_gives_the_rfc2217_url_and_release_is_idempotent() -> None:
    fake = FakeClient(acquire=[OK], env=[(0, ENV_YAML.format(place="p4-1", port=4001), "")], release=[OK])
    held = labgrid.acquire_place("p4-1", "127.0.0.2:20408", runner=fake)
    assert held.url == "rfc2217://127.0.0.1:4001?ign_set_control"
    assert fake.calls[0] == ["-x", "127.0.0.2:20408", "-p", "p4-1", "acquire"]
    held.release()
    held.release()
    with held:
        pass
    assert fake.commands() == ["acquire", "env", "release"] and held.released


def test_coordinator_from_the_environment_else_the_default(monkeypatch) -> None:
    fake = FakeClient(acquire=[OK], env=[(0, ENV_YAML.format(place="a", port=1), "")], release=[OK])
    labgrid.acquire_place("a", runner=fake).release()
    assert fake.calls[0][1] == "127.0.0.1:20408"
    monkeypatch.setenv("LG_COORDINATOR", "127.0.0.1:30000")
    labgrid.acquire_place("a", runner=fake).release()
    assert fake.calls[-2][1] == "127.0.0.1:30000"


def test_waits_for_the_exporter_to_publish_the_port() -> None:
    fake = FakeClient(acquire=[OK], env=[(0, ENV_YAML.format(place="p", port="null"), ""),
                                         (0, ENV_YAML.format(place="p", port="null"), ""),
                                         (0, ENV_YAML.format(place="p", port=5002), "")], release=[OK])
    held = labgrid.acquire_place("p", runner=fake)
    assert held.url.endswith(":5002?ign_set_control") and fake.commands() == ["acquire", "env", "env", "env"]
    held.release()


def test_no_port_in_time_releases_and_names_ser2net() -> None:
    fake = FakeClient(acquire=[OK], env=[(0, ENV_YAML.format(place="p", port="null"), "")], release=[OK])
    with pytest.raises(DutUnavailable, match="ser2net did not start.*apt-get install -y ser2net"):
        labgrid.acquire_place("p", runner=fake, port_wait_s=0.5)
    assert fake.commands()[-1] == "release"


def test_a_place_without_a_serial_port_is_released_and_named() -> None:
    env = "targets:\n  p:\n    resources:\n    - NetworkService:\n        address: 127.0.0.1\n"
    fake = FakeClient(acquire=[OK], env=[(0, env, "")], release=[OK])
    with pytest.raises(DutUnavailable, match=r"place p on coordinator .* has no serial port \(it holds "
                                             r"NetworkService\).*add-match"):
        labgrid.acquire_place("p", runner=fake)
    assert fake.commands() == ["acquire", "env", "release"]


def test_a_raw_network_serial_port_is_a_socket_url() -> None:
    env = ENV_YAML.format(place="p", port=7000).replace("speed: 115200", "protocol: raw")
    fake = FakeClient(acquire=[OK], env=[(0, env, "")], release=[OK])
    assert labgrid.acquire_place("p", runner=fake).url == "socket://127.0.0.1:7000"
    labgrid.release_all()


UNREACHABLE = (1, "", "ERROR              root: coordinator is unavailable: failed to connect to all addresses\n"
                      "Server error: Error: Could not connect to coordinator\n")
NO_PLACE = (1, "", "labgrid-client: Error: place pattern nope matches nothing\n")
HELD = (1, "", "labgrid-client: Error: Place p0 is already acquired by lab-pc/alice. To work simultaneously, alice "
               "can execute 'labgrid-client -p p0 allow vm/root' on lab-pc.\n")
MINE = (1, "", "labgrid-client: Error: You have already acquired place p0.\n")
SHARED = (1, "Matching resource 'RawSerialPort' (exp/sim-0/NetworkSerialPort/RawSerialPort) already acquired by "
             "place 'p-old'\n", "Server error: Error: resource already acquired\n")
OFFLINE = (1, "", "labgrid-client: Error: Match exp/sim-0/NetworkSerialPort has no matching remote resource\n")


@pytest.mark.parametrize("answer, words", [
    (UNREACHABLE, ["coordinator 127.0.0.1:20999 is unreachable", "place p0", "labgrid-coordinator --listen"]),
    (NO_PLACE, ["place p0 does not exist on coordinator 127.0.0.1:20999", "create", "hardware map"]),
    (HELD, ["place p0 on coordinator 127.0.0.1:20999 is held by lab-pc/alice", "release"]),
    (MINE, ["already held by this host and user", "-p p0 release"]),
    (SHARED, ["shares its serial port with place p-old"]),
    (OFFLINE, ["matches no resource that is online", "exporter"]),
    ((1, "", "labgrid-client: Error: something new\n"), ["could not acquire place p0", "something new"]),
])
def test_acquire_failures_are_one_line_naming_place_coordinator_and_fix(answer, words) -> None:
    fake = FakeClient(acquire=[answer])
    with pytest.raises(DutUnavailable) as caught:
        labgrid.acquire_place("p0", "127.0.0.1:20999", runner=fake)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    assert fake.commands() == ["acquire"]  # nothing to release


def test_a_coordinator_that_does_not_answer_is_bounded(monkeypatch) -> None:
    import subprocess

    def hang(args, env, timeout):
        raise subprocess.TimeoutExpired(args, timeout)

    with pytest.raises(DutUnavailable, match="gave no answer within .* place p0"):
        labgrid.acquire_place("p0", "127.0.0.1:20999", runner=hang)


def test_a_failed_release_warns_and_never_raises(capsys) -> None:
    fake = FakeClient(acquire=[OK], env=[(0, ENV_YAML.format(place="p", port=1), "")], release=[UNREACHABLE])
    held = labgrid.acquire_place("p", "127.0.0.1:1", runner=fake)
    held.release()
    err = capsys.readouterr().err
    assert "could not release labgrid place p on coordinator 127.0.0.1:1" in err and "-p p release" in err


def test_places_still_held_are_released_at_exit() -> None:
    fake = FakeClient(acquire=[OK], env=[(0, ENV_YAML.format(place="p", port=1), "")], release=[OK])
    held = labgrid.acquire_place("p", runner=fake)
    labgrid.release_all()  # what the atexit hook runs
    assert held.released and fake.commands()[-1] == "release"


def test_no_pytest_and_no_labgrid_import_in_the_module() -> None:
    import ast
    from pathlib import Path

    tree = ast.parse(Path(labgrid.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "pytest" not in imported and "labgrid" not in imported
