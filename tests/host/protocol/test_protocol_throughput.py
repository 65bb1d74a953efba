"""The upload meets its throughput goal in the link model of tools/protocol_throughput.py (>= 90 % of raw)."""

from __future__ import annotations

import pytest

from tools.protocol_throughput import UART_2M, USJ, Link, simulate

SIZE = 640 * 640 * 3


@pytest.mark.parametrize("link", [UART_2M, USJ, Link("UART, 16 ms bridge latency", 200_000, 0.016)],
                         ids=lambda l: l.name)
def test_640_rgb888_upload_carries_image_bytes_at_90_percent_of_the_raw_rate(link):
    result = simulate(link, SIZE, chunk=4096, window=16)
    assert result.efficiency >= 0.90
    assert result.retransmits == 0


def test_stop_and_wait_would_miss_the_goal_on_usb():
    """Why the window exists: one chunk in flight stalls a round trip per chunk."""
    assert simulate(USJ, SIZE, chunk=4096, window=1).efficiency < 0.9


def test_corrupted_chunks_cost_only_their_retransmission():
    result = simulate(UART_2M, SIZE, chunk=4096, window=16, loss=0.01, seed=3)
    assert result.retransmits >= 1 and result.efficiency >= 0.9
