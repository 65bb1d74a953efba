"""Host side of the YOLO11n ESP-DL hardware-in-the-loop harness.

Data flows one way: model -> reference -> dut -> verdict -> report. Each subpackage owns one of
those concerns; `python -m host ...` is the command line over all of them.
"""

__version__ = "0.1.0"
