"""The bay screen as a pure machine: events and the time in, commands and a view out.

One screen serves every connector of the charger (the bay display beside the cable
holsters). It never does I/O and never reads a clock: the shell (firmware/bay/shell.py)
passes ``now`` with every event, carries out the commands (pre-authorize at the
terminal, stop a session) and pushes ``view(now)`` to the page. The sentences live in
firmware/bay/catalogue.py; a view carries facts only.

Flows (docs/bay.md): home (each connector's state) -> select a connector -> its tariff
-> pay by card at the terminal / tap an RFID card / start in the app -> waiting for the
truck (hints after ``hint_after_s``) -> charging (figures, cost so far, km added) ->
stop, confirmed -> finished (receipt, "please move your truck"). Faults show the error
code and the support phone. Nobody touching the screen for ``idle_timeout_s`` takes it
home and locks it; a remote stop from the app is accepted per ``remote_stop`` policy
(default: only while the screen is locked, i.e. not held open on that session).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

from pydantic import Field

from firmware.bay.tariff import Cost
from firmware.core.events import StopReason
from firmware.core.transitions import ENERGIZING, Phase
from firmware.errors import ErrorCode
from firmware.schema import Section, parse_section

LANGUAGES = ("en", "de", "fr", "nl")


class ScreenSection(Section):
    """[screen]: the bay display."""

    driver: str = "web"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port
    language: Literal["en", "de", "fr", "nl"] = "en"
    idle_timeout_s: float = Field(default=60.0, ge=5.0, le=3600.0)
    hint_after_s: float = Field(default=90.0, ge=10.0, le=3600.0)
    support_phone: str = ""
    remote_stop: Literal["when_locked", "always", "never"] = "when_locked"
    kwh_per_km: float = Field(default=1.2, ge=0.3, le=5.0)  # a loaded truck: 1.1-1.3


def parse(data: dict[str, object] | None) -> ScreenSection:
    return parse_section(ScreenSection, data or {}, "screen")


class Page(enum.StrEnum):
    HOME = "home"
    TARIFF = "tariff"  # the selected connector's prices; pay by card / RFID / app
    CONNECT_FIRST = "connect_first"  # selected a bay with no cable plugged
    PAYING = "paying"  # the terminal is pre-authorizing
    DECLINED = "declined"  # the card was refused: why, and try another card
    TAP_CARD = "tap_card"  # waiting for an RFID card at the reader
    WAITING = "waiting"  # authorized, the truck has not started (hints after a while)
    CHARGING = "charging"
    CONFIRM_STOP = "confirm_stop"
    FINISHED = "finished"
    FAULT = "fault"


class BayState(enum.StrEnum):
    """What the home page says of a connector."""

    AVAILABLE = "available"
    CONNECTED = "connected"
    AUTHORIZED = "authorized"
    CHARGING = "charging"
    FINISHED = "finished"
    RESERVED = "reserved"
    OUT_OF_ORDER = "out_of_order"


@dataclass(frozen=True, slots=True)
class Bay:
    """Facts about one connector, as the shell gathers them."""

    evse_id: int
    phase: Phase = Phase.AVAILABLE
    energy_wh: float = 0.0
    power_w: float = 0.0
    soc_percent: float | None = None
    elapsed_s: float = 0.0
    fault: ErrorCode | None = None
    stop_reason: StopReason | None = None
    reserved: bool = False
    source: str | None = None  # how the running/last session was started
    cost: Cost | None = None  # the local calculation
    csms_total: Decimal | None = None  # CostUpdated / TransactionEventResponse.totalCost
    personal_message: str | None = None  # idTokenInfo.personalMessage.content
    kwh_per_km: float | None = None  # the truck's, when known (range / battery size)
    paid_by_card: bool = False

    @property
    def state(self) -> BayState:
        if self.phase in (Phase.FAULTED, Phase.UNAVAILABLE):
            return BayState.OUT_OF_ORDER
        if self.phase in ENERGIZING or self.phase is Phase.STOPPING:
            return BayState.CHARGING
        if self.phase is Phase.AUTHORIZED:
            return BayState.AUTHORIZED
        if self.phase is Phase.FINISHED:
            return BayState.FINISHED
        if self.phase is Phase.PREPARING:
            return BayState.CONNECTED
        return BayState.RESERVED if self.reserved else BayState.AVAILABLE


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BayChanged:
    bay: Bay


@dataclass(frozen=True, slots=True)
class Tap:
    """A button on the page. ``evse_id`` for the connector buttons of the home page;
    ``value`` for the language buttons."""

    button: str  # select, back, home, pay_card, rfid, app, stop, confirm, cancel, language
    evse_id: int | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentAnswer:
    evse_id: int
    approved: bool
    reason: str = ""  # the terminal's word (declined, timeout, terminal_lost, ...)


@dataclass(frozen=True, slots=True)
class CardDecision:
    """The authorization decided on a card or token (firmware/authorization.py)."""

    evse_id: int
    accepted: bool
    action: str  # start | stop
    reason: str


@dataclass(frozen=True, slots=True)
class Tick:
    pass


Event = BayChanged | Tap | PaymentAnswer | CardDecision | Tick

# --- commands -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartPayment:
    """Pre-authorize at the terminal for ``evse_id``."""

    evse_id: int


@dataclass(frozen=True, slots=True)
class CancelPayment:
    """The driver went back while the terminal was busy: abort it (and release)."""

    evse_id: int


@dataclass(frozen=True, slots=True)
class StopSession:
    evse_id: int


Command = StartPayment | CancelPayment | StopSession


@dataclass(frozen=True, slots=True)
class View:
    """What the page shows now (facts; firmware/bay/catalogue.py words them)."""

    page: Page
    language: str
    bays: tuple[Bay, ...]
    evse_id: int | None = None  # the selected connector
    locked: bool = True
    hints: bool = False  # the "authorized but nothing happens" hints
    reason: str = ""  # why a card was declined / refused
    support_phone: str = ""
    kwh_per_km: float = 1.2
    message: str | None = None  # a display message from the CSMS (SetDisplayMessage)

    @property
    def bay(self) -> Bay | None:
        return next((b for b in self.bays if b.evse_id == self.evse_id), None)


# Pages that belong to one connector's session and follow its phase.
_SESSION_PAGES = frozenset({Page.WAITING, Page.CHARGING, Page.CONFIRM_STOP, Page.FINISHED,
                            Page.FAULT})
# Pages that wait for something outside the screen: no idle timeout while it runs.
_BUSY_PAGES = frozenset({Page.PAYING})


@dataclass
class Screen:
    settings: ScreenSection
    evse_ids: tuple[int, ...]
    page: Page = Page.HOME
    evse_id: int | None = None
    language: str = ""
    touched_at: float = 0.0
    page_at: float = 0.0
    reason: str = ""
    bays: dict[int, Bay] = field(default_factory=dict)
    messages: dict[int, str] = field(default_factory=dict)  # evse (0: all) -> text

    def __post_init__(self) -> None:
        self.language = self.language or self.settings.language
        for evse in self.evse_ids:
            self.bays.setdefault(evse, Bay(evse))

    # --- the machine ------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Command]:
        if isinstance(event, Tap):
            self.touched_at = now
            return self._tap(event, now)
        if isinstance(event, BayChanged):
            self._bay_changed(event.bay, now)
        elif isinstance(event, PaymentAnswer):
            if self.page is Page.PAYING and self.evse_id == event.evse_id:
                if event.approved:
                    self._go(Page.WAITING, now)
                else:
                    self.reason = event.reason
                    self._go(Page.DECLINED, now)
        elif isinstance(event, CardDecision):
            self._card(event, now)
        self._timeouts(now)
        return []

    def _tap(self, tap: Tap, now: float) -> list[Command]:
        page, evse = self.page, self.evse_id
        if tap.button == "language" and tap.value in LANGUAGES:
            self.language = tap.value
        elif tap.button == "home":
            if page is Page.PAYING and evse is not None:
                self._go(Page.HOME, now)
                return [CancelPayment(evse)]
            self._go(Page.HOME, now)
        elif tap.button == "select" and tap.evse_id in self.bays:
            self.evse_id = tap.evse_id
            self._follow(self.bays[tap.evse_id], now, selecting=True)
        elif evse is None:
            return []
        elif tap.button == "pay_card" and page in (Page.TARIFF, Page.DECLINED):
            self._go(Page.PAYING, now)
            return [StartPayment(evse)]
        elif tap.button == "rfid" and page in (Page.TARIFF, Page.DECLINED):
            self._go(Page.TAP_CARD, now)
        elif tap.button == "back":
            if page is Page.PAYING:
                self._go(Page.TARIFF, now)
                return [CancelPayment(evse)]
            if page is Page.CONFIRM_STOP:
                self._follow(self.bays[evse], now)
            else:
                self._go(Page.HOME, now)
        elif tap.button == "stop" and page in (Page.CHARGING, Page.WAITING):
            self._go(Page.CONFIRM_STOP, now)
        elif tap.button == "confirm" and page is Page.CONFIRM_STOP:
            self._follow(self.bays[evse], now)
            return [StopSession(evse)]
        return []

    def _follow(self, bay: Bay, now: float, selecting: bool = False) -> None:
        """The page the selected connector's state calls for."""
        state = bay.state
        if state is BayState.OUT_OF_ORDER:
            page = Page.FAULT
        elif state is BayState.CHARGING:
            page = Page.CHARGING
        elif state is BayState.AUTHORIZED:
            page = Page.WAITING
        elif state is BayState.FINISHED:
            page = Page.FINISHED
        elif state is BayState.CONNECTED:
            page = Page.TARIFF if selecting or self.page not in _SESSION_PAGES else Page.HOME
        elif selecting:  # "Connect the cable first, then select the connector"
            page = Page.CONNECT_FIRST
        else:
            page = Page.HOME
        if page is not self.page:
            self._go(page, now)

    def _bay_changed(self, bay: Bay, now: float) -> None:
        old = self.bays.get(bay.evse_id)
        self.bays[bay.evse_id] = bay
        if bay.evse_id != self.evse_id or old is None or old.state is bay.state:
            return
        if self.page in _SESSION_PAGES or (self.page in (Page.TAP_CARD, Page.TARIFF,
                                                         Page.CONNECT_FIRST)
                                           and bay.state is not BayState.AVAILABLE):
            self._follow(bay, now)
        elif self.page is Page.PAYING and bay.state is BayState.AVAILABLE:
            self.reason = "unplugged"
            self._go(Page.DECLINED, now)
        elif bay.state is BayState.AVAILABLE and self.page is not Page.HOME:
            self._go(Page.HOME, now)

    def _card(self, decision: CardDecision, now: float) -> None:
        if decision.evse_id != self.evse_id:
            return
        if not decision.accepted and self.page in (Page.TAP_CARD, Page.TARIFF):
            self.reason = decision.reason
            self._go(Page.DECLINED, now)
        elif decision.accepted and decision.action == "start":
            self._go(Page.WAITING, now)

    def _timeouts(self, now: float) -> None:
        idle = now - self.touched_at >= self.settings.idle_timeout_s
        if (idle and self.page is not Page.HOME and self.page not in _BUSY_PAGES
                and self.page is not Page.WAITING):
            self._go(Page.HOME, now)  # locks the screen
            self.language = self.settings.language  # the next driver starts fresh

    def _go(self, page: Page, now: float) -> None:
        self.page = page
        self.page_at = now
        if page is Page.HOME:
            self.evse_id = None
        if page is not Page.DECLINED:
            self.reason = ""

    # --- what the rest may ask --------------------------------------------------------

    def card_target(self) -> int | None:
        """Which connector a card at the reader is for: the selected one; else the only
        connector with a cable waiting or with a session (so a card stops it)."""
        if self.evse_id is not None:
            return self.evse_id
        waiting = [b.evse_id for b in self.bays.values()
                   if b.state in (BayState.CONNECTED, BayState.CHARGING,
                                  BayState.AUTHORIZED)]
        return waiting[0] if len(waiting) == 1 else None

    @property
    def locked(self) -> bool:
        """Nobody holds the screen open on a connector."""
        return self.page is Page.HOME

    def remote_stop_allowed(self, evse_id: int) -> bool:
        policy = self.settings.remote_stop
        if policy == "always":
            return True
        if policy == "never":
            return False
        return self.locked or self.evse_id != evse_id

    def show_message(self, evse_id: int, text: str | None) -> None:
        """A display message from the CSMS for one connector (0: the whole screen);
        None clears it."""
        if text is None:
            self.messages.pop(evse_id, None)
        else:
            self.messages[evse_id] = text

    def view(self, now: float) -> View:
        self._timeouts(now)
        bay = self.bays.get(self.evse_id) if self.evse_id is not None else None
        hints = (self.page is Page.WAITING and bay is not None
                 and bay.state is BayState.AUTHORIZED
                 and now - self.page_at >= self.settings.hint_after_s)
        message = self.messages.get(self.evse_id or 0) or self.messages.get(0)
        return View(self.page, self.language, tuple(self.bays[e] for e in self.evse_ids),
                    self.evse_id, self.locked, hints, self.reason,
                    self.settings.support_phone, self.settings.kwh_per_km, message)


def km_added(bay: Bay, default_kwh_per_km: float) -> float:
    """Energy so far / consumption: the truck's when known, else the configured one."""
    per_km = bay.kwh_per_km or default_kwh_per_km
    return bay.energy_wh / 1000 / per_km


def with_cost(bay: Bay, cost: Cost | None) -> Bay:
    return replace(bay, cost=cost)
