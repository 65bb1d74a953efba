"""Session fixtures for the .espdl tests: small models quantized by esp-ppq once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.host.espdl import _builders

_builders.silence_esp_ppq()  # at collection, so its loggers bind the session's stdout (see there)


class QuantizedModels:
    """Quantizes each (family, target, bits, int16 ops) once and hands out the .espdl path."""

    def __init__(self, root: Path):
        self.root = root
        self._paths: dict[tuple, Path] = {}

    def get(self, family: str, target: str, bits: int = 8, int16_ops: tuple[str, ...] = ()) -> Path:
        key = (family, target, bits, int16_ops)
        if key not in self._paths:
            model, shapes = _builders.BUILDERS[family]()
            name = f"{family}_{target}_{bits}_{len(self._paths)}"
            self._paths[key] = _builders.quantize(model, shapes, self.root, name, target, bits=bits,
                                                  int16_ops=int16_ops)
        return self._paths[key]


@pytest.fixture(scope="session")
def quantized(tmp_path_factory) -> QuantizedModels:
    return QuantizedModels(tmp_path_factory.mktemp("espdl_models"))
