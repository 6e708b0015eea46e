"""A child process for the SIGKILL test: appends TransactionEvents to the queue at argv[1]
with their seqNo state in the same SQLite transaction, printing each seqNo only once
append has returned (so the parent knows what the queue promised to keep). It continues
from the persisted state, as a restarted station does."""

from __future__ import annotations

import sys

from firmware.ocpp.queue import MessageQueue


def main() -> None:
    queue = MessageQueue(sys.argv[1])
    state = queue.get_state("tx") or {"seq": -1}
    seq = int(state["seq"]) + 1
    while True:
        # Not a periodic meter update, so thinning can never open a gap in the seqNos.
        queue.append_with_state("TransactionEvent", {
            "eventType": "Updated", "seqNo": seq, "triggerReason": "ChargingStateChanged",
            "transactionInfo": {"transactionId": "T-1"}}, "tx", {"seq": seq})
        sys.stdout.write(f"{seq}\n")
        sys.stdout.flush()
        seq += 1


if __name__ == "__main__":
    main()
