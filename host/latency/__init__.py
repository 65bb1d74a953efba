"""Latency: statistics of device timings, baselines and the regression gate."""
