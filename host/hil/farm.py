"""Boards of a hardware map during a session: a board that dies is marked dead by name and the session takes
over another live entry for its remaining tests."""

from __future__ import annotations

import pytest

from host.dut.client import DutError, DutPanic, DutRebooted, DutTimeout
from host.errors import HarnessError
from host.hil.options import HilOptions
from host.hil.state import HilState


class BoardWatch:
    """With a hardware map: a board that stops answering, panics or keeps rebooting is marked dead for the rest
    of the run (by name, in the journal), and this session takes over another live entry of the map for its
    remaining tests - a free board, or a simulated board (one more process). With no live entry left, the
    remaining tests fail naming the dead board: nothing passes, nothing is skipped silently."""

    DEATHS = (DutTimeout, DutPanic, DutRebooted)

    def __init__(self, state: HilState) -> None:
        self.state = state
        self.death: str | None = None
        self.no_board: str | None = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        yield
        if call.excinfo is not None and call.excinfo.errisinstance(self.DEATHS) and self.state.held is not None:
            self.death = f"{item.nodeid}: {str(call.excinfo.value).strip().splitlines()[0]}"

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.death is not None:
            reason, self.death = self.death, None
            self.no_board = take_over(self.state, reason)
        if self.no_board is not None:
            pytest.fail(self.no_board, pytrace=False)


def take_over(state: HilState, reason: str) -> str | None:
    """Mark the held board dead and move this session's DUT to another live map entry; None on success,
    else why no board is left (the remaining tests fail with it)."""

    from host.dut.hardware_map import hold_one, mark_dead
    from host.dut.select import from_map_entry

    dead = state.held.entry
    mark_dead(dead, state.run_id, reason)
    state.held.release()
    detail = f"{dead.describe()} died: {reason}"
    try:
        held = hold_one(state.map_entries, state.options.target, state.options.firmware_config, state.worker,
                        run_id=state.run_id, wait_s=1.0)
        choice, backend = from_map_entry(held.entry, entry_options(state.options, held.entry))
        backend.prepare(state.artifact)
        fresh = backend.open()
    except (HarnessError, DutError, OSError) as exc:
        message = f"{detail}; no live board left to take over its tests ({str(exc).strip().splitlines()[0]})"
        if state.results is not None:
            state.results.add("board-dead", dead.id, passed=False, board=dead.id, detail=message)
        return message
    old = state.dut
    old.close()
    old.client, old.port, old.close_hooks, old.boot = fresh.client, fresh.port, fresh.close_hooks, fresh.boot
    from host.dut.devicelog import attach_device_log
    from host.hil.state import worker_report_dir

    attach_device_log(old, worker_report_dir(state), state.options.report_dir, append=True)
    state.held, state.choice = held, choice
    state.provenance["board"] = held.entry.id
    if state.results is not None:
        state.results.tags["board"] = held.entry.id
        state.results.add("board-dead", dead.id, passed=False, board=dead.id,
                          detail=f"{detail}; its remaining tests ran on {held.entry.id}")
    return None


def entry_options(options: HilOptions, entry):
    """The DUT options for a map entry: its own sim faults (harness self-tests) and firmware config."""
    from dataclasses import replace

    return replace(options.dut_options(), sim_faults=entry.faults or options.sim_faults,
                   firmware_config=entry.firmware_config or options.firmware_config)

