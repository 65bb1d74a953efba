"""ESP-DL model files on the host: read and write .espdl (EDL2) and PDL3 packs, and run them bit-exactly.

Public API:
    load(path) / load_bytes(data)         -> EspdlModel (graph, initializers, metadata, test values)
    read_pdl3(data) / write_pdl3(models)  -> PDL3 package (the firmware's model-partition image)
    Emulator(model, target, espdl_version).run(inputs, outputs=None, keep_all=False)
    first_divergence(a, b, order)         -> the first tensor where two runs disagree
    in_espdl_layout(other, like)          -> another engine's tensor (NCHW) in the emulator's layout
    selftest(model, target)               -> the model's embedded test values, checked in the emulator
"""

from host.espdl.container import read_edl2, read_pdl3, write_edl2, write_pdl3
from host.espdl.emulator import Divergence, Emulator, TensorDict, first_divergence, in_espdl_layout
from host.espdl.model import EspdlModel, load, load_bytes
from host.espdl.selftest import selftest

__all__ = [
    "Divergence", "Emulator", "EspdlModel", "TensorDict", "first_divergence", "in_espdl_layout",
    "load",
    "load_bytes", "read_edl2", "read_pdl3", "selftest", "write_edl2", "write_pdl3",
]
