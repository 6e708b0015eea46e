"""Truck (EV side of ISO 15118-2 DC) against a scripted fake charger, in virtual time;
plus the VehicleChannel on a plain asyncio loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import looptime
import pytest

from hal.vehicle_link import (
    CableCheckReq,
    CurrentDemandReq,
    EvseNotification,
    LinkLost,
    PowerDeliveryReq,
    PreChargeReq,
    Processing,
    ResponseCode,
    ServiceDiscoveryReq,
    SessionSetupReq,
    SessionStopReq,
    VehicleRequest,
    VehicleResponse,
    WeldingDetectionReq,
)
from hal.vehicle_link_virtual import LinkClosed, VehicleChannel, VehicleTimeout
from sim.battery import BatteryModel
from sim.truck import LoopClock, Truck

T = TypeVar("T")


def run_virtual(main: Callable[[], Awaitable[T]], limit_s: float = 7200.0) -> T:
    """Run ``main`` on a looptime loop: sleeps and timeouts cost no real time."""
    loop = looptime.new_event_loop()

    async def guarded() -> T:
        return await asyncio.wait_for(main(), limit_s)  # never hang a test

    try:
        return loop.run_until_complete(guarded())
    finally:
        loop.close()


def run_plain(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main`` on an ordinary asyncio loop (real time). Not asyncio.run(): that resets
    the thread's current loop, which the looptime pytest plugin (with pytest-asyncio)
    creates on demand for every test, and leaks it as an unclosed loop."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(main(), 10.0))
    finally:
        loop.close()


class FakePilot:
    def __init__(self, channel: VehicleChannel) -> None:
        self.channel = channel
        self.states: list[tuple[str, int]] = []  # (state, requests sent so far)

    def set_pilot(self, state: str) -> None:
        self.states.append((state, self.channel.stats.requests))

    def duty_percent(self) -> float:
        return 5.0  # the charger offers digital communication at once


def tiny_battery(soc: float = 70.0) -> BatteryModel:
    # 0.5 kWh: a full charge takes seconds of (virtual) time
    return BatteryModel(0.5, soc, max_current_a=100.0, max_power_w=60_000.0)


class FakeCharger:
    """Answers plausibly and plays the plant: current flows while both sides are closed."""

    def __init__(self, channel: VehicleChannel, truck: Truck) -> None:
        self.channel = channel
        self.truck = truck
        self.received: list[VehicleRequest] = []
        self.voltage = 0.0
        self.current = 0.0
        self.closed = False  # charger contactors
        self.cable_checks = 0
        self.current_demands = 0
        # knobs for fault scenarios
        self.cable_check_ongoing = 1
        self.silent_after_cd: int | None = None  # stop answering CurrentDemand after n
        self.late_cd_after: int | None = None  # answer CurrentDemand late after n
        self.notify_after_cd: tuple[int, EvseNotification] | None = None
        self.fail_cd_after: int | None = None
        self.precharge_stuck_v: float | None = None  # output never reaches the target
        self.ended: str = ""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            req = await self.channel.charger.receive()
            now = loop.time()
            if self.closed and self.truck.contactor_closed and self.current > 0:
                self.truck.battery.charge(self.current, now - last)
            last = now
            self.received.append(req)
            if isinstance(req, LinkLost):
                self.ended = f"link lost: {req.reason}"
                return
            resp = self.respond(req)
            if resp is None:
                continue  # silent: the truck must time out
            if isinstance(req, CurrentDemandReq) and self.late_cd_after is not None:
                if self.current_demands > self.late_cd_after:
                    await asyncio.sleep(0.3)
            self.channel.charger.answer(resp)
            if isinstance(req, SessionStopReq):
                self.ended = "session stop"
                return

    def respond(self, req: VehicleRequest) -> VehicleResponse | None:
        name = type(req).__name__
        kw: dict[str, Any] = {}
        if isinstance(req, CableCheckReq):
            self.cable_checks += 1
            if self.cable_checks <= self.cable_check_ongoing:
                kw["processing"] = Processing.ONGOING
        elif isinstance(req, PreChargeReq):
            # output tracks the precharge target (fast converter)
            self.voltage = req.target_voltage_v
            if self.precharge_stuck_v is not None:
                self.voltage = self.precharge_stuck_v
        elif isinstance(req, PowerDeliveryReq):
            self.closed = req.start
            if not req.start:
                self.current = 0.0
        elif isinstance(req, CurrentDemandReq):
            self.current_demands += 1
            n = self.current_demands
            if self.silent_after_cd is not None and n > self.silent_after_cd:
                return None
            if self.fail_cd_after is not None and n > self.fail_cd_after:
                kw["code"] = ResponseCode.FAILED
            if self.notify_after_cd is not None and n > self.notify_after_cd[0]:
                kw["notification"] = self.notify_after_cd[1]
            self.current = req.target_current_a
            self.voltage = self.truck.battery.terminal_voltage(self.current)
        elif isinstance(req, WeldingDetectionReq):
            self.voltage = 0.0  # charger contactors open, output discharged
        return VehicleResponse(
            name, present_voltage_v=self.voltage, present_current_a=self.current, **kw
        )


@dataclass
class Outcome:
    truck: Truck
    charger: FakeCharger
    pilot: FakePilot
    elapsed_s: float  # virtual time the truck's run() took


async def session(
    truck_kw: dict[str, Any] | None = None,
    setup: Callable[[FakeCharger], None] | None = None,
    during: Callable[[Truck, FakeCharger], Awaitable[None]] | None = None,
    linger_s: float = 0.0,
) -> Outcome:
    """One truck against the fake charger. If the truck ends without SessionStop, it is
    unplugged afterwards (after ``linger_s``) so the charger task sees LinkLost and ends."""
    loop = asyncio.get_running_loop()
    channel = VehicleChannel("bay1")
    pilot = FakePilot(channel)
    kw: dict[str, Any] = {"target_soc": 100.0}
    kw.update(truck_kw or {})
    truck = Truck("test", tiny_battery(kw.pop("soc", 70.0)), channel, pilot, "00AABBCCDDEE", **kw)
    charger = FakeCharger(channel, truck)
    if setup:
        setup(charger)
    charger_task = asyncio.create_task(charger.run())
    t0 = loop.time()
    truck_task = asyncio.create_task(truck.run(LoopClock()))
    if during:
        await during(truck, charger)
    await truck_task
    elapsed = loop.time() - t0
    await asyncio.sleep(linger_s)
    if not charger_task.done():
        truck.unplug()
    await asyncio.wait_for(charger_task, 120.0)
    return Outcome(truck, charger, pilot, elapsed)


def knobs(**values: Any) -> Callable[[FakeCharger], None]:
    def setup(c: FakeCharger) -> None:
        for k, v in values.items():
            assert hasattr(c, k)
            setattr(c, k, v)

    return setup


def collapsed(trace: list[str]) -> list[str]:
    return [x for i, x in enumerate(trace) if i == 0 or trace[i - 1] != x]


def test_full_sequence_in_order() -> None:
    o = run_virtual(session)
    truck, charger, pilot = o.truck, o.charger, o.pilot
    assert truck.state == "done", truck.failures
    assert truck.stop_reason == "target soc reached"
    assert collapsed(charger.channel.stats.trace) == [
        "SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq",
        "AuthorizationReq", "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq",
        "PowerDeliveryReq", "CurrentDemandReq", "PowerDeliveryReq", "WeldingDetectionReq",
        "SessionStopReq",
    ]
    assert charger.cable_checks == 2  # Ongoing once, then Finished
    assert charger.ended == "session stop"
    # pilot: B on plug, C right before the first CableCheck, B after PowerDelivery(stop)
    trace = charger.channel.stats.trace
    assert [s for s, _ in pilot.states] == ["B", "C", "B"]
    assert trace[pilot.states[1][1]] == "CableCheckReq"
    assert trace[pilot.states[2][1] - 1] == "PowerDeliveryReq"
    assert not truck.contactor_closed
    assert truck.start_soc == 70.0 and truck.end_soc == 100.0
    assert truck.failures == [] and truck.warnings == []
    assert charger.channel.stats.timeouts == 0 and charger.channel.stats.late_answers == 0
    # precharge targeted the pack voltage; the charge loop reported charging_complete
    first_pc = next(r for r in charger.received if isinstance(r, PreChargeReq))
    assert first_pc.target_voltage_v == pytest.approx(tiny_battery().ocv())
    assert first_pc.target_current_a <= 2.0
    demands = [r for r in charger.received if isinstance(r, CurrentDemandReq)]
    assert demands[-1].charging_complete and demands[-1].target_current_a == 0.0
    assert demands[0].target_current_a == pytest.approx(
        min(100.0, 60_000.0 / truck.battery.ocv_at(70.0)), rel=0.01
    )
    assert all(d.target_voltage_v <= truck.battery.max_voltage_v for d in demands)


def test_stops_at_target_soc() -> None:
    o = run_virtual(lambda: session({"target_soc": 90.0}))
    truck, charger = o.truck, o.charger
    assert truck.state == "done"
    # overshoot: one 0.25 s CurrentDemand period plus the ramp-down, at ~12 %/min into
    # the 0.5 kWh test pack
    assert truck.end_soc is not None and 90.0 <= truck.end_soc < 92.0
    stored_pct = truck.battery.stored_wh / (0.5 * 10.0)
    assert stored_pct == pytest.approx(truck.end_soc - 70.0)
    assert isinstance(charger.received[-1], SessionStopReq)


def test_current_demand_timeout_fails_and_opens_contactor() -> None:
    o = run_virtual(lambda: session(setup=knobs(silent_after_cd=3)))
    truck, stats = o.truck, o.charger.channel.stats
    assert truck.state.startswith("failed: timeout: CurrentDemandReq"), truck.state
    assert "250 ms" in truck.state
    assert not truck.contactor_closed and truck.log[-1][2] == "timeout"
    assert stats.timeouts == 1 and o.charger.current_demands == 4
    # no further messages after the timeout (ISO 15118-2: the EV ends the session)
    assert stats.trace[-1] == "CurrentDemandReq"
    assert o.charger.ended == "link lost: unplugged"


def test_late_answer_is_dropped_and_counted() -> None:
    o = run_virtual(lambda: session(setup=knobs(late_cd_after=2), linger_s=1.0))
    stats = o.charger.channel.stats
    assert o.truck.state.startswith("failed: timeout: CurrentDemandReq")
    assert stats.late_answers == 1 and stats.answered == stats.requests - 1


def test_unplug_while_charging_closes_the_link() -> None:
    async def during(truck: Truck, charger: FakeCharger) -> None:
        while charger.current_demands < 3:
            await asyncio.sleep(0.05)
        truck.unplug()

    o = run_virtual(lambda: session(during=during))
    assert o.charger.ended == "link lost: unplugged"
    assert isinstance(o.charger.received[-1], LinkLost)
    assert o.truck.state == "failed: link lost: unplugged"
    assert o.pilot.states[-1][0] == "A"
    assert not o.truck.contactor_closed and o.charger.channel.closed


@pytest.mark.parametrize(
    ("notification", "final"),
    [
        (EvseNotification.STOP_CHARGING, "done"),
        (EvseNotification.EMERGENCY_SHUTDOWN, "failed: evse emergency shutdown"),
    ],
)
def test_charger_notification_stops(notification: EvseNotification, final: str) -> None:
    o = run_virtual(lambda: session(setup=knobs(notify_after_cd=(5, notification))))
    assert o.truck.state.startswith(final), o.truck.state
    assert o.truck.end_soc is not None and o.truck.end_soc < 100.0
    assert not o.truck.contactor_closed
    assert collapsed(o.charger.channel.stats.trace)[-3:] == [
        "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq",
    ]


def test_failed_response_code_aborts() -> None:
    o = run_virtual(lambda: session(setup=knobs(fail_cd_after=2)))
    assert o.truck.state == "failed: CurrentDemandReq: FAILED"
    assert o.charger.channel.stats.trace[-1] == "CurrentDemandReq"
    assert not o.truck.contactor_closed and o.truck.pilot_state == "A"


def test_truck_side_stop() -> None:
    async def during(truck: Truck, charger: FakeCharger) -> None:
        while charger.current_demands < 2:
            await asyncio.sleep(0.05)
        truck.stop()

    o = run_virtual(lambda: session(during=during))
    assert o.truck.state == "done" and o.truck.stop_reason == "ev stop"
    assert o.charger.ended == "session stop"
    assert o.truck.end_soc is not None and o.truck.end_soc < 100.0


def test_cable_check_gives_up_after_30_s() -> None:
    o = run_virtual(lambda: session(setup=knobs(cable_check_ongoing=10_000)))
    assert o.truck.state == "failed: cable check: still Ongoing after 30 s"
    assert 30.0 <= o.elapsed_s < 31.0
    assert o.pilot.states[-2][0] == "B"  # back to B before unplugging


@pytest.mark.parametrize(
    ("stuck_v", "expected"),
    [
        (300.0, "failed: precharge: 300 V, pack "),  # never within 20 V: EV gives up at 7 s
        (950.0, "failed: over-voltage: 950 V > 910 V"),  # above EV max 900 V + 10 V
    ],
)
def test_precharge_failures_never_close_the_contactor(stuck_v: float, expected: str) -> None:
    o = run_virtual(lambda: session(setup=knobs(precharge_stuck_v=stuck_v)))
    assert o.truck.state.startswith(expected), o.truck.state
    assert "PowerDeliveryReq" not in o.charger.channel.stats.trace
    assert not o.truck.contactor_closed
    assert o.elapsed_s < 8.0


def test_cancelled_run_opens_contactor_and_says_so() -> None:
    async def scenario() -> Truck:
        channel = VehicleChannel()
        truck = Truck("t", tiny_battery(), channel, FakePilot(channel), "00AABBCCDDEE")
        charger = FakeCharger(channel, truck)
        charger_task = asyncio.create_task(charger.run())
        truck_task = asyncio.create_task(truck.run())
        while charger.current_demands < 2:
            await asyncio.sleep(0.05)
        assert truck.contactor_closed
        truck_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await truck_task
        truck.unplug()
        await charger_task
        return truck

    truck = run_virtual(scenario)
    assert truck.state == "failed: cancelled" and not truck.contactor_closed


def test_from_preset() -> None:
    channel = VehicleChannel()
    truck = Truck.from_preset("eactros600", 25.0, channel, FakePilot(channel), target_soc=80.0)
    assert truck.battery.capacity_kwh == 621.0 and truck.battery.soc_percent == 25.0
    assert truck.target_soc == 80.0 and len(truck.evccid) == 12


# --- the channel on a plain asyncio loop ---------------------------------------------------

def test_channel_on_plain_asyncio_loop() -> None:
    async def main() -> None:
        ch = VehicleChannel()

        async def charger_once(delay: float) -> VehicleRequest:
            req = await ch.charger.receive()
            await asyncio.sleep(delay)
            ch.charger.answer(VehicleResponse(type(req).__name__, present_voltage_v=1.0))
            return req

        task = asyncio.create_task(charger_once(0.0))
        resp = await ch.truck.request(SessionSetupReq("00AABBCCDDEE"), 1.0)
        assert resp.request == "SessionSetupReq" and resp.present_voltage_v == 1.0
        assert await task == SessionSetupReq("00AABBCCDDEE")

        task = asyncio.create_task(charger_once(0.1))
        with pytest.raises(VehicleTimeout):
            await ch.request(ServiceDiscoveryReq(), 0.02)
        await task
        assert ch.stats.late_answers == 1 and ch.stats.timeouts == 1

        # unplug while the truck waits: its request fails, the charger sees LinkLost
        pending = asyncio.create_task(ch.request(ServiceDiscoveryReq(), 5.0))
        await asyncio.sleep(0.01)
        ch.close("unplugged")
        with pytest.raises(LinkClosed):
            await pending
        assert await ch.charger.receive() == LinkLost("unplugged")
        assert await ch.charger.receive() == LinkLost("unplugged")
        with pytest.raises(LinkClosed):
            await ch.request(ServiceDiscoveryReq(), 1.0)
        ch.charger.answer(VehicleResponse("ServiceDiscoveryReq"))  # nobody asked: dropped
        assert ch.stats.late_answers == 2

    run_plain(main)


def test_channel_close_wakes_blocked_receiver_and_one_request_at_a_time() -> None:
    async def main() -> None:
        ch = VehicleChannel()
        waiter = asyncio.create_task(ch.charger.receive())
        await asyncio.sleep(0)
        first = asyncio.create_task(ch.request(ServiceDiscoveryReq(), 1.0))
        await asyncio.sleep(0)
        assert await waiter == ServiceDiscoveryReq()
        with pytest.raises(RuntimeError):
            await ch.request(ServiceDiscoveryReq(), 1.0)
        blocked = asyncio.create_task(ch.charger.receive())
        await asyncio.sleep(0)
        ch.close("link down")
        assert await blocked == LinkLost("link down")
        with pytest.raises(LinkClosed):
            await first

    run_plain(main)
