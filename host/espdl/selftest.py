"""The model's own test: run the test inputs embedded in a .espdl and compare with its embedded outputs.

This is what esp-dl's `Model::test()` does on the device (int8 exact, int16 within 1), done here with the
host emulator, so a broken export is caught before a board sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from host.errors import HarnessError
from host.espdl.emulator import Emulator
from host.espdl.model import EspdlModel


@dataclass
class OutputCheck:
    name: str
    shape: tuple[int, ...]
    mismatches: int
    max_abs_diff: int
    tolerance: int

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


@dataclass
class SelftestResult:
    outputs: list[OutputCheck] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # node -> what the emulator could not prove (Emulator.notes)

    @property
    def ok(self) -> bool:
        return bool(self.outputs) and all(o.ok for o in self.outputs)


def selftest(model: EspdlModel, target: str, espdl_version: str = "3.3.9", int16_tolerance: int = 0) -> SelftestResult:
    """Emulate the embedded test inputs; int8 must match exactly, int16 within `int16_tolerance`.

    The default int16 tolerance is 0 (the emulator is meant to be exact); esp-dl's own test allows 1.
    """
    if not model.test_inputs or not model.test_outputs:
        raise HarnessError("this .espdl has no embedded test values; export it with esp-ppq's "
                           "export_test_values=True to self-test it")
    em = Emulator(model, target=target, espdl_version=espdl_version)
    feed = {}
    for vi in model.inputs:
        t = model.test_inputs.get(vi.name)
        if t is None:
            raise HarnessError(f"the embedded test values have no input {vi.name!r}")
        feed[vi.name] = t.array.reshape(vi.shape) if vi.shape else t.array
    names = list(model.test_outputs)
    got = em.run(feed, outputs=names)
    result = SelftestResult()
    for name in names:
        want = model.test_outputs[name].array
        have = got[name]
        if have.size != want.size:
            raise HarnessError(f"test output {name!r} has {want.size} values, the emulator made {have.size}")
        diff = np.abs(have.reshape(-1).astype(np.int64) - want.reshape(-1).astype(np.int64))
        tol = int16_tolerance if want.dtype == np.int16 else 0
        result.outputs.append(OutputCheck(name, tuple(have.shape), int((diff > tol).sum()),
                                          int(diff.max(initial=0)), tol))
    result.notes = dict(em.notes)
    return result
