"""Host side of the YOLO11n ESP-DL hardware-in-the-loop harness.

Data flows one way: model -> reference -> dut -> verdict -> report, and the packages are layered the
same way (README.md, "Layers"): `chip` is the ESP-DL-exact core (rounding, libm, preprocess,
postprocess, `DetectPipeline` with a pluggable engine); `espdl`, `protocol` and `firmware` read and
write what goes to the device; `reference` runs the ESP-PPQ executor as an engine; `model` makes the
artifact; `dut` drives a board or the simulated DUT; `verdict`, `latency` and `report` judge and
record; `hil` (the pytest plugin) and `cli` (`python -m host ...`) sit on top.
"""

__version__ = "0.1.0"
