"""A real controller process killed with SIGKILL 20 times across charging sessions
(tests/power_loss.py says what is checked after every restart)."""

from __future__ import annotations

from pathlib import Path

import power_loss


def test_sigkill_twenty_times_loses_nothing_and_bills_once(tmp_path: Path) -> None:
    found = power_loss.run(kills=20, seed=2026, work=tmp_path)
    assert found.kills >= 18, found  # a child that ended by itself was not killed
    assert found.transactions >= found.kills  # most kills cut a running transaction
    assert found.problems == [] and found.lost_events == 0, found
