"""Delivery of the persistent transaction queue to the CSMS, strictly in order.

OCPP 2.0.1 Part 2, E "offline behaviour" (E04 transaction started while offline, E12
TransactionEvent retries) and Part 4 section 4.1.4: transaction messages go out in the
order they were made, one at a time; a new one waits until every older one has been
answered. A CALLERROR, a malformed reply or no answer within the caller's timeout is a
failed attempt: the next attempt waits OCPPCommCtrlr.MessageAttemptInterval x the
attempts so far. After OCPPCommCtrlr.MessageAttempts attempts the queue decides
(queue.py): an Updated is given up into the next event of its transaction, which carries
its meter values; a message the CSMS refused (CALLERROR, malformed reply) on its last
attempt is set aside, kept on disk and offered again whenever nothing else waits, so one
message the CSMS never takes cannot hold every later one; after silence (no answer in
time) it stays at the head, tried again, in order. Losing the
connection mid-call is not an attempt: the message is sent again, unchanged, once back
online. OCPP 1.6 section 3.7 is the same arithmetic under other
names (TransactionMessageAttempts / TransactionMessageRetryInterval): the names are
the ``retry_settings`` a version passes, 2.0.1's by default.

API (the station calls these)::

    delivery = Delivery(queue, settings, clock, on_response=None,
                        retry_settings=V201_RETRY_SETTINGS)
    tasks.spawn(delivery.run(call, online), "ocpp-delivery")   # an owned task
    delivery.wake()          # after anything was appended to the queue (or use notify)

- ``call(action, payload) -> dict``: sends one CALL and returns the CALLRESULT payload;
  raises on CALLERROR or timeout (any exception; one with ``refused = True``, as
  link.CallFailed, says the CSMS answered). If ``online`` is clear when it raises, the
  failure is put down to the lost connection and not counted.
- ``online``: an asyncio.Event the station sets while the websocket is up and the boot
  was accepted (B01), clears when the connection is lost.
- ``on_response(action, payload, response)``: called after each delivered message, so
  the station can act on TransactionEventResponse.idTokenInfo (E05 StopTxOnInvalidId).
- Waits go through the project Clock, so tests run in virtual time (looptime).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from hal.clock import Clock

log = logging.getLogger(__name__)

Settings = Callable[[str, str], str]
Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
OnResponse = Callable[[str, dict[str, Any], dict[str, Any]], None]
# (component, variable) of the attempts and of the attempt interval, for ``settings``.
RetrySettings = tuple[tuple[str, str], tuple[str, str]]
V201_RETRY_SETTINGS: RetrySettings = (("OCPPCommCtrlr", "MessageAttempts"),
                                      ("OCPPCommCtrlr", "MessageAttemptInterval"))


class _Queued(Protocol):
    id: int
    action: str
    payload: dict[str, Any]
    attempts: int
    not_before: float


class _Queue(Protocol):
    def head(self) -> Any: ...
    def delivered(self, msg_id: int) -> None: ...
    def failed(self, msg_id: int, now: float, attempts_max: int,
               interval_s: float, refused: bool = False) -> bool: ...
    def __len__(self) -> int: ...


class Delivery:
    def __init__(self, queue: _Queue, settings: Settings, clock: Clock,
                 on_response: OnResponse | None = None,
                 retry_settings: RetrySettings = V201_RETRY_SETTINGS) -> None:
        self.retry_settings = retry_settings
        self.queue = queue
        self.settings = settings
        self.clock = clock
        self.on_response = on_response
        self.sent = 0  # CALLs answered with a CALLRESULT
        self.failures = 0  # counted failed attempts
        self.dropped = 0  # left the queue after the last attempt (carried on, set aside)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was appended (or the station came online): look at the head now,
        not at the next sample (an event leaves at once when online)."""
        self._wake.set()

    def _int(self, key: tuple[str, str], default: int) -> int:
        try:
            return int(self.settings(*key))
        except (KeyError, ValueError):
            return default

    async def _wait_online(self, online: asyncio.Event) -> None:
        if not online.is_set():
            await online.wait()

    async def _idle(self, online: asyncio.Event, seconds: float | None) -> None:
        """Sleep until woken, or ``seconds`` pass (None: until woken)."""
        self._wake.clear()
        # Both waits are this call's own: cancelled and awaited before it returns.
        waits: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._wake.wait(), name="ocpp-delivery-wake")]
        if seconds is not None:
            waits.append(asyncio.create_task(self.clock.sleep(seconds),
                                             name="ocpp-delivery-backoff"))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def run(self, call: Call, online: asyncio.Event) -> None:
        """Deliver forever (cancel the task to stop). Never reorders: the head blocks
        everything behind it until answered or discarded."""
        while True:
            await self._wait_online(online)
            head = self.queue.head()
            if head is None:
                await self._idle(online, None)
                continue
            wait = head.not_before - self.clock.now()
            # (a float residue of 1e-14 s would sleep for nothing and spin: due is due)
            if wait > 1e-3:  # MessageAttemptInterval back-off of the head
                await self._idle(online, wait)
                continue
            try:
                response = await call(head.action, head.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the CALL
                if not online.is_set():
                    continue  # connection lost: not an attempt (resent unchanged)
                self.failures += 1
                attempts = self._int(self.retry_settings[0], 3)
                interval = self._int(self.retry_settings[1], 60)
                refused = bool(getattr(exc, "refused", False))
                if not self.queue.failed(head.id, self.clock.now(), attempts, interval,
                                         refused=refused):
                    self.dropped += 1  # carried on or set aside (the queue logs which)
                    log.error("%s seqNo %s left the queue after %d attempts: %s",
                              head.action, head.payload.get("seqNo"), attempts, exc)
                continue
            self.queue.delivered(head.id)
            self.sent += 1
            if self.on_response is not None:
                self.on_response(head.action, head.payload, response)
