"""The .espdl emulator as a DetectPipeline engine: an engine independent of ESP-PPQ, run from the file alone."""

from __future__ import annotations

import numpy as np

from host.chip.pipeline import InputSpec, RawOutputs, raw_outputs
from host.chip.releases import FIRMWARE_ESPDL_VERSION
from host.errors import HarnessError
from host.espdl.emulator import Emulator
from host.espdl.model import EspdlModel


class EmulatorEngine:
    """Runs an EspdlModel's graph with ESP-DL's integer arithmetic for one chip and esp-dl release."""

    name = "host int8 emulator"

    def __init__(self, model: EspdlModel, target: str, espdl_version: str = FIRMWARE_ESPDL_VERSION) -> None:
        if len(model.inputs) != 1 or model.inputs[0].shape is None or len(model.inputs[0].shape) != 4 \
                or model.inputs[0].dtype is None:
            raise HarnessError("the model does not have one NHWC image input: it is not a YOLO11 detector")
        self.model = model
        self.emulator = Emulator(model, target=target, espdl_version=espdl_version)
        vi = model.inputs[0]
        self._input = InputSpec(vi.name, int(vi.shape[2]), int(vi.shape[1]), vi.exponent,
                                8 * np.dtype(vi.dtype).itemsize)

    @property
    def input(self) -> InputSpec:
        return self._input

    @property
    def notes(self) -> dict[str, str]:
        """What the emulator could not prove about this model (e.g. S3 lanes that could saturate)."""
        return self.emulator.notes

    def run(self, tensor: np.ndarray) -> RawOutputs:
        outputs = self.emulator.run({self._input.name: tensor})
        return raw_outputs(outputs, outputs.exponents)
