"""The simulated DUT: the firmware's behaviour in Python behind a pty (device.py, process.py), started by backend.py."""
