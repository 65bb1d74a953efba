"""Test-run wiring shared by the HIL suite and the harness's own tests: the time spent in `slow` tests."""

from __future__ import annotations

import pytest


class SlowTimer:
    """Adds up setup + call + teardown of the tests marked `slow` and prints the total at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "slow" in report.keywords:
            self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.seconds:
            terminalreporter.write_line(f"slow tests: {len(self.seconds)} took {sum(self.seconds.values()):.1f} s "
                                        "in all (setup + call + teardown)")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SlowTimer(), "yolo11-hil-slow-timer")
