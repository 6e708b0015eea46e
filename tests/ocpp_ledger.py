"""The OCPP side of the safety bench: billing data under the same random events.

The bench's commands feed the real ``Transactions`` (firmware/ocpp/v201/transactions.py) over
the real persistent queue, as the station's observer does; the CSMS link comes and goes;
the controller may die at any step (a new ``Transactions`` on the same queue file, as a
restarted process would open it, ends what was open with PowerLoss). Everything the
queue was handed is recorded here, at the queue, so the checks compare what was made
with what the CSMS got and what is still queued:

- nothing lost, duplicated or reordered: delivered + still queued == made;
- per transaction: seqNo 0, 1, 2, ... with no gap; Started first; at most one Ended,
  and it is the last event;
- ``offline`` is set exactly on the events made while the link was down;
- the energy register of the EVSE never runs backwards across events and transactions;
- no energy is billed that the physical model did not deliver, and a transaction that
  ended normally (not PowerLoss) bills what was delivered while it was open; one cut by
  a restart leaves unbilled at most what flowed in the last PERSIST_REGISTER_S (plus a
  tick) before the process died.
"""

from __future__ import annotations

import tempfile
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from power_loss import energy_register
from safety_rig import Bench

from firmware.core import events as ev
from firmware.ocpp.queue import MessageQueue
from firmware.ocpp.v201.transactions import PERSIST_REGISTER_S, Transactions, default_settings

EPOCH = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
BILLING_TOLERANCE = 0.005  # relative, plus BILLING_SLACK_WH: the rectangle rule's edges
BILLING_SLACK_WH = 5.0


class _RecordingQueue:
    """The real queue, with a record of every event handed to it (the ground truth)."""

    def __init__(self, queue: MessageQueue, ledger: OcppLedger) -> None:
        self.queue, self.ledger = queue, ledger

    def append_with_state(self, action: str, payload: dict[str, Any], key: str,
                          value: dict[str, Any]) -> int:
        msg_id = self.queue.append_with_state(action, payload, key, value)
        self.ledger.made.append((payload, self.ledger.online, self.ledger.bench.delivered_wh))
        return msg_id

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        self.queue.set_state(key, value)

    def get_state(self, key: str) -> dict[str, Any] | None:
        return self.queue.get_state(key)

    def state_items(self, prefix: str) -> dict[str, dict[str, Any]]:
        return self.queue.state_items(prefix)


class OcppLedger:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self._dir = tempfile.TemporaryDirectory(prefix="chargebay-ledger-")
        self.queue = MessageQueue(Path(self._dir.name) / "queue.db")
        # Durability is the power-loss tests' subject; here the logic is, so skip fsync.
        self.queue.db.execute("PRAGMA synchronous=OFF")
        self.online = False
        self.made: list[tuple[dict[str, Any], bool, float]] = []  # payload, online, Wh then
        self.delivered: list[dict[str, Any]] = []
        self.power_loss_ends = 0
        self._next_tick = 0.0
        self.history: deque[tuple[float, float]] = deque(maxlen=400)  # (time, Wh so far)
        self.tx = self._open()
        bench.observer, bench.ticker = self.observe, self.tick

    def close(self) -> None:
        self.queue.close()
        self._dir.cleanup()

    def _open(self) -> Transactions:
        tx = Transactions(_RecordingQueue(self.queue, self), default_settings, [1],
                          monotonic=lambda: self.bench.now)
        tx.set_online(self.online)
        return tx

    def utc(self) -> datetime:
        return EPOCH + timedelta(seconds=self.bench.now)

    # --- the station's part --------------------------------------------------------------

    def observe(self, cmds: list[ev.Command]) -> None:
        status = self.bench.session.status(self.bench.now)
        for cmd in cmds:
            self.tx.on_command(1, cmd, status, self.utc())

    def tick(self) -> None:
        self.history.append((self.bench.now, self.bench.delivered_wh))
        if self.bench.now + 1e-9 >= self._next_tick:  # the station's 1-s ticker
            self._next_tick = self.bench.now + 1.0
            self.tx.on_tick({1: self.bench.session.status(self.bench.now)}, self.utc())

    def authorize(self, token: str, source: str) -> bool:
        """A card at the reader, the app (remote start: needs the CSMS) or the terminal."""
        if source == "app" and not self.online:
            return False
        trigger = "RemoteStart" if source == "app" else "Authorized"
        self.tx.note_authorization(1, {"idToken": token, "type": "ISO14443"}, trigger,
                                   remote_start_id=7 if source == "app" else None)
        self.bench.send(ev.Authorize(token, source))
        return True

    def set_online(self, online: bool) -> None:
        self.online = online
        self.tx.set_online(online)
        self.deliver()

    def deliver(self) -> None:
        """The CSMS answers everything queued, in order (while the link is up)."""
        while self.online and (head := self.queue.head()) is not None:
            self.delivered.append(head.payload)
            self.queue.delivered(head.id)

    def restart(self) -> None:
        """The controller process dies and a new one starts on the same queue file."""
        open_before = self.tx.transaction_id(1)
        killed_at, killed_wh = self.bench.now, self.bench.delivered_wh
        self.bench.observer = self.bench.ticker = None
        self.bench.restart_controller()  # meanwhile the board made the bay safe
        self.tx = self._open()
        made_before = len(self.made)
        ended = self.tx.resume_after_restart({1: self.bench.session.status(self.bench.now)},
                                             self.utc())
        assert ended == ([open_before] if open_before else []), (ended, open_before)
        self.power_loss_ends += len(ended)
        if ended:  # how much a power loss may leave unbilled: the last few seconds
            cutoff = killed_at - PERSIST_REGISTER_S - 1.5
            older = [wh for t, wh in self.history if t < cutoff]
            newer = [wh for t, wh in self.history if t >= cutoff]
            # no history from before the cutoff: too short a run to make a claim
            window_wh = killed_wh - (newer[0] if newer else killed_wh) if older else killed_wh
            end = self.made[made_before][0]
            started = next((p, wh) for p, _, wh in self.made
                           if p["transactionInfo"]["transactionId"] == ended[0]
                           and p["eventType"] == "Started")
            billed = (energy_register(end) or 0.0) - (energy_register(started[0]) or 0.0)
            unbilled = killed_wh - started[1] - billed
            assert unbilled <= window_wh + BILLING_SLACK_WH, (
                f"PowerLoss left {unbilled:.1f} Wh unbilled; {window_wh:.1f} Wh flowed in "
                f"the last {PERSIST_REGISTER_S + 1.5} s")
        self.bench.observer, self.bench.ticker = self.observe, self.tick
        self._next_tick = self.bench.now

    # --- the checks ------------------------------------------------------------------------

    def violations(self) -> list[str]:
        out: list[str] = []
        made = [payload for payload, _, _ in self.made]
        queued = [q.payload for q in self.queue.pending()]
        if self.delivered + queued != made:
            out.append(f"delivered {len(self.delivered)} + queued {len(queued)} != made "
                       f"{len(made)} (lost, duplicated or reordered)")
        by_tx: dict[str, list[tuple[dict[str, Any], float]]] = {}
        last_register = 0.0
        for payload, online, wh in self.made:
            tx_id = payload["transactionInfo"]["transactionId"]
            by_tx.setdefault(tx_id, []).append((payload, wh))
            if bool(payload.get("offline")) == online:
                out.append(f"{tx_id} seq {payload['seqNo']}: offline flag "
                           f"{payload.get('offline')} but link {'up' if online else 'down'}")
            register = energy_register(payload)
            if register is not None:
                if register < last_register - 1e-6:
                    out.append(f"register ran backwards: {last_register} -> {register}")
                last_register = max(last_register, register)
        billed_total = 0.0
        for tx_id, events in by_tx.items():
            kinds = [p["eventType"] for p, _ in events]
            if [p["seqNo"] for p, _ in events] != list(range(len(events))):
                out.append(f"{tx_id}: seqNo {[p['seqNo'] for p, _ in events]}")
            if kinds[0] != "Started" or "Started" in kinds[1:]:
                out.append(f"{tx_id}: events {kinds}")
            if "Ended" in kinds[:-1]:
                out.append(f"{tx_id}: events after Ended: {kinds}")
            registers = [(r, wh) for p, wh in events if (r := energy_register(p)) is not None]
            if len(registers) < 2:
                continue
            billed = registers[-1][0] - registers[0][0]
            physical = registers[-1][1] - registers[0][1]
            billed_total += billed
            ended = events[-1][0]
            normal = (ended["eventType"] == "Ended"
                      and ended["transactionInfo"].get("stoppedReason") != "PowerLoss")
            slack = physical * BILLING_TOLERANCE + BILLING_SLACK_WH
            if billed > physical + slack or (normal and billed < physical - slack):
                out.append(f"{tx_id}: billed {billed:.1f} Wh, delivered {physical:.1f} Wh "
                           f"while open ({ended['transactionInfo'].get('stoppedReason')})")
        if billed_total > self.bench.delivered_wh * (1 + BILLING_TOLERANCE) + BILLING_SLACK_WH:
            out.append(f"billed {billed_total:.1f} Wh in all, delivered "
                       f"{self.bench.delivered_wh:.1f} Wh")
        return out
