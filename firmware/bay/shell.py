"""The bay's thin shell: feeds the screen machine, carries out its commands, prices every
session, runs the card payments, and tells the page what to show.

Inputs: the controller's commands (observer), the authorization's decisions, taps from
the page (firmware/bay/web.py), cards from the reader (firmware/bay/reader.py), the
CSMS's display messages and running cost (firmware/ocpp/v201/display.py BayPort), a
one-second tick. Outputs: the screen's commands (pre-authorize, stop), the view as JSON
to every page that listens. Built by the composition root (firmware/charger.py) when
the config has a [screen], [tariff] or [payment] section.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from firmware.authorization import AuthDecision, Authorization
from firmware.bay import catalogue
from firmware.bay import screen as sc
from firmware.bay.messages import DisplayMessages, message_state
from firmware.bay.payment import CardPayments
from firmware.bay.tariff import Cost, Tariffs, cost
from firmware.bay.usage import Tracked, UsageMeter
from firmware.core import events as ev
from firmware.core.events import StopReason
from firmware.loop import Controller
from hal.clock import Clock

log = logging.getLogger("chargebay.bay")

TICK_S = 1.0
REFRESH_S = 30.0  # the session figures' refresh (what the operator's app shows too)

Subscriber = Callable[[dict[str, Any]], None]


class BayShell:
    def __init__(self, controller: Controller, authorization: Authorization, clock: Clock,
                 tariffs: Tariffs, settings: sc.ScreenSection, preauth: Decimal,
                 station_id: str = "", payments: CardPayments | None = None,
                 meter: UsageMeter | None = None,
                 utc: Callable[[], datetime] | None = None) -> None:
        self.controller = controller
        self.authorization = authorization
        self.clock = clock
        self.tariffs = tariffs
        self.settings = settings
        self.preauth = preauth
        self.station_id = station_id
        self.evse_ids = tuple(controller.connectors)
        self.screen = sc.Screen(settings, self.evse_ids)
        self.meter = meter or UsageMeter()
        self.payments = payments
        self.utc = utc
        self.subscribers: list[Subscriber] = []
        self.finished: list[dict[str, Any]] = []  # every ended session's price
        self._csms_total: dict[int, Decimal] = {}
        self._personal: dict[int, Personal] = {}  # the CSMS's texts for each session
        self.messages = DisplayMessages()  # the CSMS's (keep_in: the state directory)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last: dict[str, Any] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.meter.listeners.append(self._on_usage)
        controller.observers.append(self._observe)
        self._unsubscribe = authorization.subscribe(self._decision)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self.payments is not None:
            await self.payments.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="bay-tick")

    async def close(self) -> None:
        self._unsubscribe()
        if self._observe in self.controller.observers:
            self.controller.observers.remove(self._observe)
        tasks = [t for t in (self._ticker, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.payments is not None:
            await self.payments.close()

    async def _tick(self) -> None:
        next_refresh = self.clock.now()
        while True:
            await self.clock.sleep(TICK_S)
            now = self.clock.now()
            for evse in self.evse_ids:
                self.screen.handle(sc.BayChanged(self._bay(evse)), now)
            self.screen.handle(sc.Tick(), now)
            if self.payments is not None and now >= next_refresh:
                next_refresh = now + REFRESH_S
                self.payments.refresh(now)
            self._push()

    # --- inputs ------------------------------------------------------------------------

    def tap(self, button: str, evse_id: int | None = None, value: str | None = None) -> None:
        """A button on the page (or a scenario's ``press``)."""
        now = self.clock.now()
        self._run(self.screen.handle(sc.Tap(button, evse_id, value), now))
        if button == "language":  # the CSMS's texts in the newly chosen language
            for evse in self.evse_ids:
                self.screen.handle(sc.BayChanged(self._bay(evse)), now)
        self._push()

    async def present_card(self, token: str) -> AuthDecision | None:
        """A card at the reader: for the connector the screen says (card_target)."""
        evse = self.screen.card_target()
        if evse is None:
            log.info("card %s at the reader with no connector chosen: ignored", token)
            return None
        return await self.authorization.present_card(evse, token)

    def _observe(self, evse_id: int, cmd: ev.Command, now: float) -> None:
        self.meter.observe(evse_id, cmd, now)
        if isinstance(cmd, ev.Screen | ev.SessionStarted | ev.SessionEnded):
            if isinstance(cmd, ev.SessionEnded):
                self.messages.transaction_ended(evse_id)
            if isinstance(cmd, ev.SessionStarted):
                self._csms_total.pop(evse_id, None)
                held = self._personal.get(evse_id)
                if held is not None and held.token != cmd.token:  # not this session's
                    del self._personal[evse_id]
            self.screen.handle(sc.BayChanged(self._bay(evse_id)), now)
            self._push()

    def _decision(self, d: AuthDecision) -> None:
        if d.action == "start" and d.accepted:  # Authorize's personalMessage (C01)
            self._personal[d.evse_id] = Personal(d.token, dict(d.messages), d.languages)
            self.screen.handle(sc.BayChanged(self._bay(d.evse_id)), self.clock.now())
        self.screen.handle(sc.CardDecision(d.evse_id, d.accepted, d.action, d.reason),
                           self.clock.now())
        self._push()

    def _on_usage(self, evse_id: int, what: str, t: Tracked, now: float) -> None:
        occupation = self.tariffs.for_source(t.source).occupation_per_minute > 0
        if (what == "ended" and not occupation) or (what == "left" and occupation):
            c = cost(self.tariffs.for_source(t.source), t.usage(now))
            self.finished.append({"evse": evse_id, "token": t.token, "source": t.source,
                                  "cost": c})

    # --- outputs -----------------------------------------------------------------------

    def _run(self, commands: list[sc.Command]) -> None:
        for cmd in commands:
            if isinstance(cmd, sc.StartPayment):
                self._spawn(self._pay(cmd.evse_id))
            elif isinstance(cmd, sc.CancelPayment) and self.payments is not None:
                self._spawn(self.payments.cancel(cmd.evse_id))
            elif isinstance(cmd, sc.StopSession):
                self.controller.request_stop(cmd.evse_id, StopReason.LOCAL)

    async def _pay(self, evse_id: int) -> None:
        if self.payments is None:
            outcome_ok, reason = False, "terminal_lost"
        else:
            outcome = await self.payments.pay(evse_id)
            outcome_ok, reason = outcome.approved, outcome.reason
        self.screen.handle(sc.PaymentAnswer(evse_id, outcome_ok, reason), self.clock.now())
        self._push()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _bay(self, evse_id: int) -> sc.Bay:
        st = self.controller.status(evse_id)
        now = self.clock.now()
        t = self.meter.current.get(evse_id)
        running: Cost | None = None
        source = None
        if t is not None:
            source = t.source
            running = cost(self.tariffs.for_source(t.source), t.usage(now, st.energy_wh))
        fault = st.faults[0] if st.faults else st.stop_fault
        return sc.Bay(evse_id, st.phase, st.energy_wh, st.voltage_v * st.current_a,
                      st.soc_percent, st.elapsed_s, fault, st.stop_reason,
                      source=source, cost=running,
                      csms_total=self._csms_total.get(evse_id),
                      personal_message=self._personal_text(evse_id),
                      paid_by_card=source == "payment")

    def view(self) -> dict[str, Any]:
        now = self.clock.now()
        self._messages_to_screen()
        return catalogue.render(self.screen.view(now), self.tariffs, self.preauth,
                                self.station_id)

    def _push(self) -> None:
        if not self.subscribers:
            return
        view = self.view()
        if view == self._last:
            return
        self._last = view
        for subscriber in list(self.subscribers):
            try:
                subscriber(view)
            except Exception:  # noqa: BLE001 - one broken page must not stop the bay
                log.exception("screen subscriber failed")

    # --- the CSMS (firmware/ocpp/v201/display.py BayPort) ------------------------------

    def set_display_message(self, message: dict[str, Any],
                            evse_id: int | None = None) -> str:
        status = self.messages.set(message, evse_id)
        self._push()
        return status

    def display_messages(self, ids: list[int] | None, priority: str | None,
                         state: str | None) -> list[dict[str, Any]]:
        if self.utc is not None:
            self.messages.expire(self.utc())
        return self.messages.query(ids, priority, state)

    def clear_display_message(self, message_id: int) -> bool:
        found = self.messages.clear(message_id)
        self._push()
        return found

    def cost_updated(self, evse_id: int, total: Decimal) -> None:
        self._csms_total[evse_id] = total
        self.screen.handle(sc.BayChanged(self._bay(evse_id)), self.clock.now())
        self._push()

    def personal_message(self, evse_id: int, text: str, language: str | None = None) -> None:
        """A text for the driver of this session (TransactionEventResponse idTokenInfo
        .personalMessage / updatedPersonalMessage): the newest in each language."""
        held = self._personal.get(evse_id)
        if held is None:
            held = self._personal[evse_id] = Personal("", {}, ())
        held.texts.pop(language or "", None)  # newest last
        held.texts[language or ""] = text
        self.screen.handle(sc.BayChanged(self._bay(evse_id)), self.clock.now())
        self._push()

    def _personal_text(self, evse_id: int) -> str | None:
        """The session's text in the screen's language, else in the driver's own
        (language1, language2), else the newest one."""
        held = self._personal.get(evse_id)
        if held is None or not held.texts:
            return None
        by_language = {_primary(tag): text for tag, text in held.texts.items()}
        for tag in (self.screen.language, *held.languages):
            if _primary(tag) in by_language:
                return by_language[_primary(tag)]
        return list(held.texts.values())[-1]

    def remote_stop_allowed(self, evse_id: int) -> bool:
        self.screen.view(self.clock.now())  # let the idle timeout lock the screen first
        return self.screen.remote_stop_allowed(evse_id)

    def _messages_to_screen(self) -> None:
        """The front message per connector (0: the whole screen), for each connector's
        state now, within its start/end time (UTC from the station's clock, if any)."""
        utc = self.utc() if self.utc is not None else None
        if utc is not None:
            self.messages.expire(utc)
        states = {e: message_state(self.controller.status(e).phase) for e in self.evse_ids}
        front = self.messages.front(states, utc)
        for evse in (0, *self.evse_ids):
            self.screen.show_message(evse, front.get(evse))


@dataclass
class Personal:
    """What the CSMS said to one session's driver: texts by RFC 5646 language tag ("" when
    it named none), and the driver's languages as the idToken's info gives them."""

    token: str  # whose session ("" when it came with the transaction, not the Authorize)
    texts: dict[str, str]
    languages: tuple[str, ...]


def _primary(tag: str) -> str:
    """RFC 5646's primary language subtag ("de-AT" -> "de"), what the catalogue has."""
    return tag.split("-")[0].strip().lower()
