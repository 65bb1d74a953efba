"""The simulated DUT: the harness firmware's behaviour in Python, behind a pty, with a stated latency model."""
