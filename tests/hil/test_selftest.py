"""Model::test(): the embedded test input gives the embedded int8 outputs bit-exactly on the device."""

import pytest

pytestmark = [pytest.mark.hil, pytest.mark.target("esp32p4", "esp32s3")]


def test_model_selftest_passes(hil_dut, hil_model, hil_record) -> None:
    from host.espdl import load

    if not load(hil_model.espdl_path).test_inputs:
        hil_record.add("selftest", "model_selftest", passed=None,
                       detail="the .espdl has no embedded test values: Model::test() has nothing to compare")
        pytest.skip(f"{hil_model.espdl_path.name} has no embedded test values, so Model::test() cannot run; "
                    "every other check runs")
    passed = hil_dut.selftest()
    hil_record.add("selftest", "model_selftest", passed=passed)
    assert passed, "Model::test() failed on the device: its int8 outputs differ from the test values in the .espdl"
