"""Child process for tests/test_ocpp_sigkill.py: a station's transaction side producing
TransactionEvents into the queue at argv[1] as fast as it can, session after session.

It starts as a restarted station does (Transactions over the same db, then
resume_after_restart), and prints ``<queue id> <transactionId> <seqNo>`` for every event
only after append has returned, flushed, so the parent knows exactly what the queue
promised to keep when it sends SIGKILL."""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from firmware.core import events as ev
from firmware.core.session import Status
from firmware.core.transitions import Phase
from firmware.ocpp.queue import MessageQueue
from firmware.ocpp.v201.transactions import DEFAULTS, Transactions


class PrintingQueue(MessageQueue):
    def append_with_state(self, action: str, payload: dict[str, Any], key: str,
                          value: dict[str, Any]) -> int:
        msg_id = super().append_with_state(action, payload, key, value)
        sys.stdout.write(f"{msg_id} {payload['transactionInfo']['transactionId']} "
                         f"{payload['seqNo']}\n")
        sys.stdout.flush()
        return msg_id


def status(phase: Phase, energy: float = 0.0) -> Status:
    amps = 200.0 if phase is Phase.CHARGING else 0.0
    return Status(phase, 800.0 if amps else 0.0, amps, energy, 50.0, 0.0, amps, amps, (),
                  None)


def main() -> None:
    values = {**DEFAULTS, ("SampledDataCtrlr", "TxUpdatedInterval"): "1"}
    queue = PrintingQueue(sys.argv[1])
    tx = Transactions(queue, lambda c, v: values[(c, v)], (1,))
    rng = random.Random()
    now = datetime.now(UTC)
    tx.set_online(False)
    tx.resume_after_restart({1: status(Phase.AVAILABLE)}, now)
    while True:
        energy = 0.0
        tx.on_command(1, ev.Screen(Phase.PREPARING), status(Phase.PREPARING), now)
        tx.note_authorization(1, {"idToken": "CARD", "type": "ISO14443"}, "Authorized",
                              None, None)
        tx.on_command(1, ev.SessionStarted("CARD", "rfid", 0.0), status(Phase.AUTHORIZED),
                      now)
        tx.on_command(1, ev.SetContactors(True), status(Phase.CABLE_CHECK), now)
        for _ in range(rng.randrange(1, 40)):
            now += timedelta(seconds=1)
            energy += rng.uniform(10.0, 100.0)
            tx.on_tick({1: status(Phase.CHARGING, energy)}, now)
        tx.on_command(1, ev.SessionEnded(ev.StopReason.LOCAL, 0.0, energy),
                      status(Phase.FINISHED, energy), now)
        tx.on_command(1, ev.Screen(Phase.AVAILABLE), status(Phase.AVAILABLE), now)
        now += timedelta(seconds=1)


if __name__ == "__main__":
    main()
