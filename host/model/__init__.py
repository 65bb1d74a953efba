"""The host model pipeline: load a model, export the split-head ONNX, quantize to .espdl, cached."""

from host.model.quantize import QuantizedModel, quantize_model
from host.model.source import ModelSource, resolve_model

__all__ = ["ModelSource", "QuantizedModel", "quantize_model", "resolve_model"]
