"""The device is the one we meant: the right chip, running the model the host quantized."""

import pytest

pytestmark = [pytest.mark.hil, pytest.mark.target("esp32p4", "esp32s3")]


def test_chip_is_the_target(hil, hil_record) -> None:
    info = hil.dut.info()
    hil_record.add("identity", "chip", passed=info.chip == hil.target,
                   detail=f"chip {info.chip} rev {info.revision}")
    assert info.chip == hil.target, f"the DUT is a {info.chip}, the session targets {hil.target}: check --port"
    assert info.revision >= 0


def test_model_on_device_is_the_host_artifact(hil, hil_record) -> None:
    info = hil.dut.info()
    same = info.model_sha256 == hil.model.sha256
    hil_record.add("identity", "model_sha256", passed=same,
                   detail=f"device {info.model_sha256}, host {hil.model.sha256}")
    assert same, (f"the device runs model {info.model_sha256}, the host quantized {hil.model.sha256}: "
                  "the model partition was not flashed with this session's artifact")


def test_input_exponent_matches(hil) -> None:
    assert hil.dut.info().input_exponent == hil.model.input_exponent
