"""The harness against every fault the simulated DUT can inject: retried where safe, else named, never hung."""

from __future__ import annotations

import time

import pytest

from host.dut.client import DutPanic, DutRebooted, DutTimeout

TIMEOUT = 5.0
SLACK = 3.0  # process and pty latency on a loaded 2-core machine


def _bounded(started: float) -> None:
    assert time.monotonic() - started < TIMEOUT + SLACK, "the harness waited past its timeout"


def test_clean_session_answers_every_request(open_tiny_sim, test_rgb, tiny_model) -> None:
    dut = open_tiny_sim(timeout_s=TIMEOUT)
    info = dut.info()
    assert info.chip == "esp32p4" and info.model_sha256 == tiny_model.sha256
    det = dut.detect(test_rgb)
    assert (det.width, det.height) == (120, 90) and set(det.stage_us) == {"pre", "model", "post"}
    dump = dut.dump()
    assert dump["images"][0].shape == (1, 64, 64, 3) and dump["images"][1] == tiny_model.input_exponent
    assert dut.bench(5, 1).stage("model").shape == (5,)
    assert dut.client.stats.retries == 0 and dut.client.stats.upload_retransmits == 0


@pytest.mark.parametrize("fault", ["flip_chunk=2", "drop_chunk=2"])
def test_damaged_upload_chunks_are_resent(open_tiny_sim, test_rgb, fault: str) -> None:
    clean = open_tiny_sim(timeout_s=TIMEOUT).detect(test_rgb)
    dut = open_tiny_sim(fault, timeout_s=TIMEOUT)
    started = time.monotonic()
    det = dut.detect(test_rgb)
    _bounded(started)
    assert det.boxes == clean.boxes
    assert dut.client.stats.upload_retransmits >= 1


@pytest.mark.parametrize("fault", ["flip_record=2", "truncate_record=2", "garble_request=1"])
def test_corrupted_records_and_requests_are_retried(open_tiny_sim, fault: str) -> None:
    dut = open_tiny_sim(fault, timeout_s=TIMEOUT)
    started = time.monotonic()
    info = dut.info()
    _bounded(started)
    assert info.chip == "esp32p4"
    assert dut.client.stats.retries >= 1


def test_reboot_mid_request_is_repeated_once(open_tiny_sim) -> None:
    dut = open_tiny_sim("reboot=selftest", timeout_s=TIMEOUT)
    started = time.monotonic()
    assert dut.selftest() in (True, False)
    _bounded(started)
    assert dut.client.stats.reboots == 1 and dut.client.boots[-1]["reason"] == "sw_reset"


def test_repeated_reboot_fails_naming_it(open_tiny_sim) -> None:
    dut = open_tiny_sim("reboot_always=selftest", timeout_s=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(DutRebooted, match="rebooted during the request"):
        dut.selftest()
    _bounded(started)


def test_panic_is_reported_with_its_backtrace(open_tiny_sim) -> None:
    dut = open_tiny_sim("panic=info", timeout_s=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(DutPanic) as err:
        dut.info()
    _bounded(started)
    assert "Guru Meditation" in str(err.value) and "Backtrace:" in str(err.value)


def test_hang_times_out_within_the_timeout(open_tiny_sim) -> None:
    dut = open_tiny_sim("hang=info", timeout_s=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(DutTimeout, match="no answer within"):
        dut.info()
    elapsed = time.monotonic() - started
    assert TIMEOUT - 0.5 <= elapsed < TIMEOUT + SLACK


def test_log_noise_between_records_is_kept_but_ignored(open_tiny_sim, test_rgb) -> None:
    dut = open_tiny_sim("log_noise", timeout_s=TIMEOUT)
    assert dut.info().chip == "esp32p4"
    assert dut.detect(test_rgb).width == 120
    assert any("heap check ok" in line for line in dut.client.log)
    assert dut.client.stats.retries == 0


def test_wrong_model_sha_is_visible(open_tiny_sim, tiny_model) -> None:
    dut = open_tiny_sim("wrong_model_sha", timeout_s=TIMEOUT)
    assert dut.info().model_sha256 != tiny_model.sha256


def test_slow_link_still_completes(open_tiny_sim, test_rgb) -> None:
    dut = open_tiny_sim("slow_link=20000", timeout_s=TIMEOUT)
    assert dut.detect(test_rgb).width == 120
    started = time.monotonic()
    dump = dut.dump()  # ~35 kB of base64 records at 20 kB/s
    elapsed = time.monotonic() - started
    assert len(dump) == 7
    assert 1.0 < elapsed < TIMEOUT + SLACK


def test_port_lost_mid_request_is_reopened_and_repeated(open_tiny_sim) -> None:
    """USB re-enumeration: the read fails once, the client reopens the port and repeats the request."""
    dut = open_tiny_sim(timeout_s=TIMEOUT)
    transport = dut.client.transport
    real_read, calls = transport.read, {"n": 0}

    def flaky_read(timeout: float) -> bytes:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("device reports readiness to read but returned no data")
        return real_read(timeout)

    transport.read = flaky_read
    assert dut.info().chip == "esp32p4"
    assert dut.client.stats.reboots == 1
    assert any("port lost" in line for line in dut.client.log)


def test_latency_gate_catches_an_injected_slowdown_through_the_sim(open_tiny_sim, test_rgb) -> None:
    """End to end over the pty: a 5 % slower model stage fails the gate, an unchanged run passes."""
    from host.latency.gate import gate
    from host.latency.measure import measure

    meta = {"dut_kind": "sim", "target": "esp32p4", "chip_revision": 100, "model_sha256": "m", "imgsz": 64,
            "firmware_config": "sim"}

    def run(faults: str, seed: int) -> dict:
        dut = open_tiny_sim(faults, timeout_s=TIMEOUT, seed=seed)
        dut.detect(test_rgb)
        return measure(dut, meta, windows=5, runs=20, warmup=1)

    baseline = run("", 1)
    same = {v.stage: v.status for v in gate(run("", 2), baseline)}  # other seeds: other noise
    slow = {v.stage: v.status for v in gate(run("slowdown=model:1.05", 3), baseline)}
    assert same == {"pre": "pass", "model": "pass", "post": "pass"}
    assert slow["model"] == "fail" and slow["pre"] == slow["post"] == "pass"
