"""The device is the one we meant: the right chip, running the model the host quantized."""

import pytest

pytestmark = [pytest.mark.hil, pytest.mark.target("esp32p4", "esp32s3")]


def test_chip_is_the_target(hil_options, hil_dut, hil_record) -> None:
    info = hil_dut.info()
    hil_record.add("identity", "chip", passed=info.chip == hil_options.target,
                   detail=f"chip {info.chip} rev {info.revision}")
    assert info.chip == hil_options.target, (f"the DUT is a {info.chip}, the session targets {hil_options.target}: "
                                             "check --port")
    major, minor = divmod(info.revision, 100)
    assert 0 <= major <= 9 and 0 <= minor <= 99, f"chip revision {info.revision} is not major*100+minor"


def test_model_on_device_is_the_host_artifact(hil_dut, hil_model, hil_record) -> None:
    info = hil_dut.info()
    same = info.model_sha256 == hil_model.sha256
    hil_record.add("identity", "model_sha256", passed=same,
                   detail=f"device {info.model_sha256}, host {hil_model.sha256}")
    assert same, (f"the device runs model {info.model_sha256}, the host quantized {hil_model.sha256}: "
                  "the model partition was not flashed with this session's artifact")


def test_input_exponent_matches(hil_dut, hil_model) -> None:
    assert hil_dut.info().input_exponent == hil_model.input_exponent


def test_espdl_release_is_the_one_the_host_emulates(hil_dut, hil_record) -> None:
    from host.chip.releases import FIRMWARE_ESPDL_VERSION

    espdl = str(hil_dut.info().raw.get("espdl", ""))
    same = espdl == FIRMWARE_ESPDL_VERSION
    hil_record.add("identity", "espdl", passed=same,
                   detail=f"device esp-dl {espdl or '(not reported)'}, host emulates {FIRMWARE_ESPDL_VERSION}")
    assert same, (f"the device runs esp-dl {espdl or '(not reported)'}, the host's reference and emulator model "
                  f"{FIRMWARE_ESPDL_VERSION}: rebuild the firmware with the pin in firmware/main/idf_component.yml")
