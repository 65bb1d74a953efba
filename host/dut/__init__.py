"""Devices under test: the protocol client, the test-facing Dut, the backends and the simulated DUT."""
