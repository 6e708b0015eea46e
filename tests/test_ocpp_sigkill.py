"""A real station process (tests/ocpp_child.py) producing TransactionEvents is killed
with SIGKILL at random points, several times, then restarted once more: nothing append
returned for is lost, no seqNo is skipped or repeated within a transaction, and every
transaction found open after a kill ends with PowerLoss and its last persisted meter
value (OCPP 2.0.1 Part 2 E "offline behaviour"; a station must not lose billing data)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from power_loss import energy_register

from firmware.ocpp.queue import MessageQueue

ROOT = Path(__file__).resolve().parent.parent
KILLS = 5


def _run_and_kill(db: Path, lines: int) -> list[tuple[int, str, int]]:
    """Start the child, read ``lines`` promised events (or until the first line when
    lines == 0), SIGKILL it mid-stream; return what it promised."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(ROOT / "tests" / "ocpp_child.py"),
                              str(db)], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    promised: list[tuple[int, str, int]] = []
    try:
        while len(promised) < max(lines, 1):
            line = child.stdout.readline()
            if not line:
                break
            msg_id, tx_id, seq = line.split()
            promised.append((int(msg_id), tx_id, int(seq)))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL, "the child crashed instead"
    return promised


def test_sigkill_at_random_points(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    rng = random.Random(20261123)
    promised: list[tuple[int, str, int]] = []
    for _ in range(KILLS):
        got = _run_and_kill(db, rng.randrange(1, 300))
        assert got, "the child promised nothing before the kill"
        promised += got
    # The last restart: resume ends whatever the last kill left open. Stop it once it has
    # started a new session, so its own resume has run.
    promised += _run_and_kill(db, 1)

    q = MessageQueue(db)
    events = q.pending()
    q.close()
    by_id = {m.id: m.payload for m in events}
    missing = [p for p in promised if p[0] not in by_id]
    assert not missing, f"append returned but the event is gone: {missing[:5]}"
    for msg_id, tx_id, seq in promised:
        payload = by_id[msg_id]
        assert (payload["transactionInfo"]["transactionId"], payload["seqNo"]) == (tx_id, seq)
    ids = [m.id for m in events]
    assert ids == sorted(ids)

    per_tx: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in events:
        per_tx[m.payload["transactionInfo"]["transactionId"]].append(m.payload)
    power_loss = 0
    register = 0.0
    for n, (tx_id, evs) in enumerate(per_tx.items()):
        assert [e["seqNo"] for e in evs] == list(range(len(evs))), tx_id  # no skip/repeat
        assert evs[0]["eventType"] == "Started"
        assert [e["eventType"] for e in evs[1:-1]] == ["Updated"] * (len(evs) - 2)
        readings = [w for e in evs if (w := energy_register(e)) is not None]
        assert readings == sorted(readings), "the register ran backwards"
        assert readings[0] >= register  # and goes on from the last transaction
        register = readings[-1]
        if n == len(per_tx) - 1:
            continue  # the session the final kill interrupted: left for the next start
        end = evs[-1]
        assert end["eventType"] == "Ended", f"transaction {tx_id} never ended"
        if end["transactionInfo"]["stoppedReason"] == "PowerLoss":
            power_loss += 1
            assert end["triggerReason"] == "AbnormalCondition"
            before = [w for e in evs[:-1] if (w := energy_register(e)) is not None]
            assert energy_register(end) == before[-1]  # the last persisted meter value
        else:
            assert end["transactionInfo"]["stoppedReason"] == "Local"
    assert power_loss >= 1  # at least one kill landed mid-transaction
