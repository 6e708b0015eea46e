"""The card terminal: ZVT bytes (hal/zvt.py), the ZVT-over-TCP driver against the
simulated terminal speaking the same bytes (sim/payment_terminal.py), and the payment
flow with its reservations across restarts (firmware/bay/payment.py), in virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import looptime
import pytest

from firmware.authorization import AuthDecision
from firmware.bay import payment as pay
from firmware.bay import tariff as tf
from firmware.bay.reservations import ReservationStore
from firmware.bay.usage import UsageMeter
from firmware.config import ConfigError
from firmware.core import events as ev
from firmware.core.events import StopReason
from firmware.core.transitions import Phase
from hal import zvt
from hal.clock import Clock
from hal.payment import PaymentDeclined, TerminalLost, TerminalTimeout, UnknownReservation
from hal.payment_zvt import ZvtTerminal
from sim.payment_terminal import SimTerminal

# --- the bytes -------------------------------------------------------------------------


def test_amount_is_six_bcd_bytes_in_cents() -> None:
    assert zvt.amount_field(19900) == bytes.fromhex("04000000019900")
    assert zvt.from_bcd(bytes.fromhex("000000019900")) == 19900
    with pytest.raises(zvt.ZvtError):
        zvt.bcd(10**12, 6)


def test_pre_authorisation_apdu() -> None:
    raw = zvt.apdu(zvt.PRE_AUTHORISATION, zvt.amount_field(19900) + zvt.currency_field("EUR"))
    assert raw.hex() == "06220a" + "04000000019900" + "490978"
    parsed = zvt.parse_apdu(raw)
    assert parsed.control == (0x06, 0x22)
    assert zvt.parse_bmps(parsed.data) == {0x04: bytes.fromhex("000000019900"),
                                           0x49: bytes.fromhex("0978")}


def test_extended_length_is_ff_then_two_bytes_low_first() -> None:
    raw = zvt.apdu((0x06, 0xD3), bytes(300))
    assert raw[:5] == bytes((0x06, 0xD3, 0xFF, 300 & 0xFF, 300 >> 8))
    assert zvt.parse_apdu(raw).data == bytes(300)


def test_llvar_and_bad_bytes() -> None:
    field_ = zvt.bmp(zvt.PAN, bytes.fromhex("6712345678"))
    assert field_[:3] == bytes((0x22, 0xF0, 0xF5))
    assert zvt.parse_bmps(field_) == {0x22: bytes.fromhex("6712345678")}
    with pytest.raises(zvt.ZvtError):
        zvt.parse_apdu(bytes.fromhex("06220a0400"))  # says 10 bytes, has 2
    with pytest.raises(zvt.ZvtError):
        zvt.parse_bmps(bytes.fromhex("0400000001"))  # amount cut short
    with pytest.raises(zvt.ZvtError):
        zvt.parse_bmps(bytes.fromhex("22a1b2"))  # not an F-nibble length


# --- the driver on the wire ------------------------------------------------------------


def run(body: Callable[..., Awaitable[None]], *args: Any) -> None:
    async def main() -> None:
        await body(*args)
    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


async def terminal_pair(**kw: Any) -> tuple[SimTerminal, ZvtTerminal]:
    sim = SimTerminal()
    port = await sim.start()
    driver = ZvtTerminal("127.0.0.1", port, Clock(virtual=True), timeout_s=kw.get("t", 60))
    return sim, driver


def test_approve_capture_and_exactly_once() -> None:
    async def body() -> None:
        sim, term = await terminal_pair()
        res = await term.preauthorize(19900, "EUR")
        assert (res.amount_minor, res.receipt, res.trace) == (19900, "0001", "000101")
        assert sim.registrations == 1 and sim.open_reservations() == [1]
        await term.capture(res, 7359)
        assert sim.journal[1].booked_minor == 7359 and sim.open_reservations() == []
        with pytest.raises(UnknownReservation):
            await term.capture(res, 7359)  # a second booking is refused
        assert sim.bookings[1] == ["booked 7359"]
        await term.close()
        await sim.close()
    run(body)


def test_decline_leaves_nothing_open() -> None:
    async def body() -> None:
        sim, term = await terminal_pair()
        sim.mode = "decline"
        with pytest.raises(PaymentDeclined) as err:
            await term.preauthorize(19900, "EUR")
        assert err.value.code == 0x05 and sim.open_reservations() == []
        await term.close()
        await sim.close()
    run(body)


def test_timeout_and_lost_and_restart() -> None:
    async def body() -> None:
        sim, term = await terminal_pair(t=30)
        sim.mode = "timeout"
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(TerminalTimeout):
            await term.preauthorize(19900, "EUR")
        assert loop.time() - t0 == pytest.approx(30, abs=1)  # the card-holder timeout
        sim.mode = "disconnect"
        with pytest.raises(TerminalLost):
            await term.preauthorize(19900, "EUR")
        sim.mode = "lost"
        with pytest.raises(TerminalLost):
            await term.preauthorize(19900, "EUR")
        sim.mode = "approve"
        await sim.restart()  # same port; the driver reconnects and registers again
        assert (await term.preauthorize(100, "EUR")).amount_minor == 100
        assert sim.open_reservations() == [1]
        await term.close()
        await sim.close()
    run(body)


# --- the flow --------------------------------------------------------------------------


@dataclass
class FakeStatus:
    phase: Phase = Phase.PREPARING
    energy_wh: float = 0.0


@dataclass
class FakeController:
    phase: dict[int, Phase] = field(default_factory=lambda: {1: Phase.PREPARING,
                                                              2: Phase.PREPARING})
    energy: float = 0.0
    stops: list[tuple[int, StopReason]] = field(default_factory=list)

    def request_stop(self, evse_id: int, reason: StopReason) -> None:
        self.stops.append((evse_id, reason))

    def status(self, evse_id: int) -> FakeStatus:
        return FakeStatus(self.phase[evse_id], self.energy)


@dataclass
class FakeAuthorization:
    accept: bool = True
    started: list[tuple[int, str, str]] = field(default_factory=list)

    async def request_start(self, evse_id: int, token: str, source: str, *,
                            vouched_by: str | None = None) -> AuthDecision:
        assert vouched_by == "payment_terminal"
        self.started.append((evse_id, token, source))
        return AuthDecision(evse_id, token, source, self.accept,
                            "Accepted" if self.accept else "Occupied", 0.0)


async def flow(sim: SimTerminal, path: Path, **kw: Any) -> tuple[pay.CardPayments,
                                                                   FakeController,
                                                                   FakeAuthorization]:
    clock = Clock(virtual=True)
    controller, auth = FakeController(), FakeAuthorization()
    settings = pay.parse({"port": sim.port, **kw})
    terminal = ZvtTerminal("127.0.0.1", sim.port, clock, timeout_s=30)
    payments = pay.CardPayments(terminal, ReservationStore(path), auth, controller,
                                tf.parse(None), settings, clock, UsageMeter())
    await payments.start()
    await asyncio.sleep(0.1)
    return payments, controller, auth


def session(p: pay.CardPayments, evse: int, token: str, now: float, energy_wh: float,
            charging_s: float) -> None:
    """The controller's commands of one session, as the usage meter sees them."""
    m = p.meter
    m.observe(evse, ev.SessionStarted(token, "payment", now), now)
    if energy_wh:
        m.observe(evse, ev.Screen(Phase.CHARGING), now + 10)
    m.observe(evse, ev.Screen(Phase.STOPPING, energy_wh=energy_wh), now + 10 + charging_s)
    m.observe(evse, ev.SessionEnded(StopReason.LOCAL, now + 12 + charging_s, energy_wh),
              now + 12 + charging_s)


def test_card_paid_session_captures_the_total_incl_vat(tmp_path: Path) -> None:
    async def body() -> None:
        sim = SimTerminal()
        await sim.start()
        p, _, auth = await flow(sim, tmp_path / "r.sqlite")
        assert await p.pay(1) == pay.Outcome(True)
        evse, token, source = auth.started[0]
        assert token.startswith("PAY-000101-0001") and source == "payment"
        session(p, 1, token, 0.0, 150_000, 1800)
        await asyncio.sleep(1)
        # 150 kWh x 0.399 = 59.85 + 1.99 = 61.84 net; 19 % VAT 11.75; 73.59
        assert sim.journal[1].booked_minor == 7359
        report = p.reports[0]
        assert report.as_json() == {"method": "card", "preauth": "199.00",
                                    "captured": "73.59", "released": False}
        assert report.cost is not None and report.cost["total"] == "73.59"
        assert p.store.get("0001").state == "settled"  # type: ignore[union-attr]
        await p.close()
        await sim.close()
    run(body)


def test_truck_leaving_while_the_capture_runs_books_once(tmp_path: Path) -> None:
    """Ended, then unplugged before the terminal answered the capture (seen in `make
    run` at 60x): one booking, no second capture refused by the terminal."""
    async def body() -> None:
        sim = SimTerminal()
        await sim.start()
        p, _, auth = await flow(sim, tmp_path / "r.sqlite")
        assert await p.pay(1) == pay.Outcome(True)
        token = auth.started[0][1]
        session(p, 1, token, 0.0, 150_000, 1800)
        p.meter.observe(1, ev.Screen(Phase.AVAILABLE), 1813.0)  # same instant: unplugged
        await asyncio.sleep(1)
        assert sim.bookings == {1: ["booked 7359"]} and sim.refused_settlements == 0
        assert p.store.get("0001").state == "settled"  # type: ignore[union-attr]
        await p.close()
        await sim.close()
    run(body)


def test_session_that_never_started_is_released_at_once(tmp_path: Path) -> None:
    async def body() -> None:
        sim = SimTerminal()
        await sim.start()
        p, _, auth = await flow(sim, tmp_path / "r.sqlite")
        await p.pay(1)
        session(p, 1, auth.started[0][1], 0.0, 0.0, 0)  # authorized, truck never charged
        await asyncio.sleep(1)
        assert sim.journal[1].state == "reversed" and sim.bookings[1] == ["reversed"]
        assert p.reports[0].as_json()["released"] is True
        await p.close()
        await sim.close()
    run(body)


def test_declined_timeout_lost_start_nothing(tmp_path: Path) -> None:
    async def body() -> None:
        sim = SimTerminal()
        await sim.start()
        p, _, auth = await flow(sim, tmp_path / "r.sqlite")
        for mode, reason in (("decline", "declined"), ("timeout", "timeout"),
                             ("lost", "terminal_lost")):
            sim.mode = mode
            assert await p.pay(1) == pay.Outcome(False, reason)
        assert auth.started == [] and sim.open_reservations() == []
        await p.close()
        await sim.close()
    run(body)


def test_unplugged_while_paying_or_start_refused_releases(tmp_path: Path) -> None:
    async def body() -> None:
        sim = SimTerminal()
        await sim.start()
        p, controller, auth = await flow(sim, tmp_path / "r.sqlite")
        controller.phase[1] = Phase.AVAILABLE
        assert await p.pay(1) == pay.Outcome(False, "unplugged")
        auth.accept = False
        assert (await p.pay(2)).approved is False
        assert sim.open_reservations() == [] and [h.state for h in sim.journal.values()] \
            == ["reversed", "reversed"]
        await p.close()
        await sim.close()
    run(body)


def test_killed_between_capture_request_and_answer(tmp_path: Path) -> None:
    """The terminal books, the answer never arrives (the controller dies or the link
    drops); after the restart the booking is asked again, refused as done, and the
    reservation counts settled: booked exactly once."""
    async def body() -> None:
        sim = SimTerminal(capture_mode="book_and_drop")
        await sim.start()
        path = tmp_path / "r.sqlite"
        p, _, auth = await flow(sim, path)
        await p.pay(1)
        session(p, 1, auth.started[0][1], 0.0, 150_000, 1800)
        await asyncio.sleep(1)
        assert p.store.get("0001").state == "capturing"  # type: ignore[union-attr]
        await p.close()  # the controller goes
        sim.capture_mode = "answer"
        again, _, _ = await flow(sim, path)  # the next start
        await asyncio.sleep(1)
        assert again.store.get("0001").state == "settled"  # type: ignore[union-attr]
        assert sim.bookings[1] == ["booked 7359"]
        assert again.store.unfinished() == []
        await again.close()
        await sim.close()
    run(body)


def test_power_cut_mid_session_captures_the_last_running_cost(tmp_path: Path) -> None:
    async def body() -> None:
        sim = SimTerminal()
        await sim.start()
        path = tmp_path / "r.sqlite"
        p, controller, auth = await flow(sim, path)
        await p.pay(1)
        token = auth.started[0][1]
        p.meter.observe(1, ev.SessionStarted(token, "payment", 0.0), 0.0)
        p.meter.observe(1, ev.Screen(Phase.CHARGING), 1.0)
        controller.energy = 100_000
        p.refresh(600.0)  # the 30 s refresh saved 100 kWh: 39.90 + 1.99 = 41.89 -> 49.85
        await p.close()  # power cut
        again, _, _ = await flow(sim, path)
        await asyncio.sleep(1)
        assert sim.journal[1].booked_minor == 4985
        assert again.store.unfinished() == []
        await again.close()
        # a third start finds nothing to do: settled exactly once
        third, _, _ = await flow(sim, path)
        await asyncio.sleep(1)
        assert sim.bookings[1] == ["booked 4985"]
        await third.close()
        await sim.close()
    run(body)


def test_open_reservation_without_energy_is_released_after_restart(tmp_path: Path) -> None:
    async def body() -> None:
        sim = SimTerminal()
        await sim.start()
        path = tmp_path / "r.sqlite"
        p, _, _ = await flow(sim, path)
        await p.pay(1)
        await p.close()
        again, _, _ = await flow(sim, path)
        await asyncio.sleep(1)
        assert sim.journal[1].state == "reversed"
        await again.close()
        await sim.close()
    run(body)


def test_the_session_stops_before_the_cost_passes_the_reservation(tmp_path: Path) -> None:
    async def body() -> None:
        sim = SimTerminal()
        await sim.start()
        p, controller, auth = await flow(sim, tmp_path / "r.sqlite")
        await p.pay(1)
        p.meter.observe(1, ev.SessionStarted(auth.started[0][1], "payment", 0.0), 0.0)
        p.meter.observe(1, ev.Screen(Phase.CHARGING), 1.0)
        controller.energy = 400_000  # 159.60 + 1.99 = 161.59 net, 192.29 gross
        p.refresh(3000.0)
        assert controller.stops == []
        controller.energy = 410_000  # 163.59 + 1.99 = 165.58 net, 197.04 gross >= 197
        p.refresh(3100.0)
        assert controller.stops == [(1, StopReason.ENERGY_LIMIT_REACHED)]
        await p.close()
        await sim.close()
    run(body)


def test_bad_payment_section() -> None:
    with pytest.raises(ConfigError) as err:
        pay.parse({"preauth": 0})
    assert err.value.key == "payment.preauth"
    assert pay.parse({"preauth": 150}).preauth == Decimal(150)


def test_terminal_lost_mid_session_capture_is_asked_again_once_it_is_back(
        tmp_path: Path) -> None:
    async def body() -> None:
        sim = SimTerminal()
        await sim.start()
        p, _, auth = await flow(sim, tmp_path / "r.sqlite")
        await p.pay(1)
        sim.mode = "lost"  # the terminal's cable is out while the truck charges
        for w in list(sim._conns):
            w.close()
        session(p, 1, auth.started[0][1], 0.0, 150_000, 1800)
        await asyncio.sleep(1)
        assert sim.journal[1].state == "open"
        assert p.store.get("0001").state == "capturing"  # type: ignore[union-attr]
        p.refresh(2000.0)  # still lost: asked again, fails again, stays pending
        await asyncio.sleep(1)
        sim.mode = "approve"
        p.refresh(2030.0)
        await asyncio.sleep(1)
        assert sim.bookings[1] == ["booked 7359"]
        assert p.store.get("0001").state == "settled"  # type: ignore[union-attr]
        assert p.reports[0].captured == "73.59"
        p.refresh(2060.0)
        await asyncio.sleep(1)
        assert sim.bookings[1] == ["booked 7359"]  # nothing asked twice
        await p.close()
        await sim.close()
    run(body)
