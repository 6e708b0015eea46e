"""Sessions in a row on the same bay (pure core, virtual time as values).

Regression: after a short session, the same truck with the same card plugged straight back
in ended in Finished with SequenceError and never charged. The last session's stop reason
survived into the next one, so every response of the new set-up said StopCharging; a truck
that honours it (ISO 15118-2 EVSENotification) stops before charging and its SessionStop
is out of sequence. Every session here must reach Charging and bill energy, whatever the
mix of trucks, cards, start methods and stop methods.
"""

from __future__ import annotations

import itertools

import pytest
from core_rig import Rig

from firmware.core import events as ev
from firmware.core.session import ConnectorLimits, ConnectorSession
from firmware.core.transitions import Phase
from hal import vehicle_link as vl

TRUCKS = {  # (EV maximum voltage, pack voltage, EV maximum current)
    "eactros600": (900.0, 700.0, 500.0), "fh-electric": (850.0, 620.0, 400.0),
    "etgx": (920.0, 680.0, 450.0), "scania-bev": (880.0, 650.0, 500.0)}
STARTS = ("card_before_plug", "card_after_setup", "remote_start")
STOPS = ("driver_stop", "truck_stop", "unplug")


class TruckDriver:
    """A truck as the standard has it talk: every answer must be OK, and a response that
    says StopCharging before charging began ends the attempt (what sim/truck.py does)."""

    def __init__(self, rig: Rig, truck: str) -> None:
        self.r = rig
        max_v, pack_v, max_a = TRUCKS[truck]
        rig.pack_v = pack_v
        self.params = vl.EvParameters(max_voltage_v=max_v, max_current_a=max_a,
                                      max_power_w=400_000, energy_capacity_wh=600_000,
                                      soc_percent=30)

    def ask(self, req: vl.VehicleRequest) -> vl.VehicleResponse:
        resp = self.r.ask(req)
        assert resp.code is vl.ResponseCode.OK, (type(req).__name__, resp.code)
        assert resp.notification is vl.EvseNotification.NONE, (
            type(req).__name__, resp.notification, self.r.s.stop_reason)
        return resp

    def until_finished(self, req: vl.VehicleRequest, limit_s: float) -> None:
        waited = 0.0
        while self.ask(req).processing is vl.Processing.ONGOING:
            assert waited < limit_s, (type(req).__name__, self.r.s.phase)
            self.r.advance(0.5)
            waited += 0.5

    def session(self, start: str, stop: str, token: str) -> None:
        """Plug in, charge 20 s, stop (the session ends once the output is discharged)."""
        r = self.r
        source = "app" if start == "remote_start" else "rfid"
        if start == "card_before_plug":
            r.send(ev.Authorize(token, source))
        mark = len(r.log)
        r.send(ev.PilotChanged("B"))
        for _ in range(100):  # a truck talks only once it sees 5 % PWM (61851-1 A.2)
            if ev.SetPilot(5.0) in r.log[mark:]:
                break
            r.advance(0.1)
        assert ev.SetPilot(5.0) in r.log[mark:], r.s.phase
        self.ask(vl.SessionSetupReq("EVCC-" + token))
        self.ask(vl.ServiceDiscoveryReq())
        self.ask(vl.PaymentServiceSelectionReq())
        if start != "card_before_plug":
            r.advance(1.0)  # the driver walks to the reader, or the app's request arrives
            r.send(ev.Authorize(token, source))
        self.until_finished(vl.AuthorizationReq(), 5)
        self.ask(vl.ChargeParameterDiscoveryReq(self.params))
        r.send(ev.PilotChanged("C"))
        self.until_finished(vl.CableCheckReq(30), 30)
        self.ask(vl.PreChargeReq(r.pack_v, 2))
        r.advance(0.3)
        self.ask(vl.PowerDeliveryReq(True))
        for _ in range(80):
            self.ask(vl.CurrentDemandReq(self.params.max_voltage_v, 300, 30,
                                         self.params.max_voltage_v, 500, 400_000))
            r.advance(0.25)
        assert r.s.phase is Phase.CHARGING and r.set_a > 100
        if stop == "unplug":
            r.send(ev.PilotChanged("A"))
        else:
            if stop == "driver_stop":
                r.send(ev.StopRequested("Local"))
                resp = r.ask(vl.CurrentDemandReq(900, 0, 30, 900, 500, 400_000))
                assert resp.notification is vl.EvseNotification.STOP_CHARGING
            r.advance(0.5)
            assert r.ask(vl.PowerDeliveryReq(False)).code is vl.ResponseCode.OK
            r.send(ev.PilotChanged("B"))
            r.advance(2.0)
            assert r.ask(vl.WeldingDetectionReq()).code is vl.ResponseCode.OK
            assert r.ask(vl.SessionStopReq()).code is vl.ResponseCode.OK
            assert r.s.phase is Phase.FINISHED
            r.send(ev.PilotChanged("A"))  # unplugged; the next truck plugs straight in


def billed(r: Rig, sessions: int) -> list[float]:
    """Energy of every ended session, once the last one has wound down."""
    r.advance(3.0)
    assert r.s.phase is Phase.AVAILABLE
    started = [c for c in r.log if isinstance(c, ev.SessionStarted)]
    ended = [c for c in r.log if isinstance(c, ev.SessionEnded)]
    assert len(started) == len(ended) == sessions
    return [e.energy_wh for e in ended]


@pytest.mark.parametrize("evse_id", [1, 2])
def test_ten_sessions_in_a_row_on_every_bay(evse_id: int) -> None:
    r = Rig(s=ConnectorSession(evse_id, ConnectorLimits(cable_max_current_a=500,
                                                        cable_max_voltage_v=1000)))
    mixes = itertools.product(STARTS, STOPS)
    plan = [(*mix, truck) for mix, truck in zip(mixes, itertools.cycle(TRUCKS), strict=False)]
    plan.append(("card_after_setup", "driver_stop", "scania-bev"))  # the reported case:
    plan.insert(0, ("card_after_setup", "driver_stop", "scania-bev"))  # same truck, card
    assert len(plan) >= 10
    for n, (start, stop, truck) in enumerate(plan):
        token = "04C0FFEE000001" if n % 2 == 0 else f"CARD-{n}"
        TruckDriver(r, truck).session(start, stop, token)  # asserts it reached Charging
    energy = billed(r, len(plan))
    assert all(wh > 20 * 100 * 600 / 3600 for wh in energy), energy  # > 20 s at 100 A


def test_same_truck_same_card_straight_back_in() -> None:
    """The reported case on its own: stop at the screen, unplug, plug at once, card."""
    r = Rig()
    for _ in range(2):
        TruckDriver(r, "scania-bev").session("card_after_setup", "driver_stop",
                                             "04C0FFEE000001")
    assert all(wh > 0 for wh in billed(r, 2))


def test_card_presented_while_the_last_truck_is_still_shutting_down() -> None:
    """Unplugged mid-charge, a card at once and the next truck in: the card is kept as a
    pre-authorization apart from the ending session, and starts the new one."""
    r = Rig()
    TruckDriver(r, "etgx").session("card_after_setup", "unplug", "CARD-A")
    assert r.s.phase is Phase.STOPPING  # still discharging the output
    TruckDriver(r, "etgx").session("card_before_plug", "driver_stop", "CARD-B")
    assert all(wh > 0 for wh in billed(r, 2))


def test_a_departed_trucks_link_loss_does_not_time_out_the_next_truck() -> None:
    """Regression (found by sim/scenarios/ten-in-a-row): the vehicle link reports its
    loss a moment after the unplug, on an Available bay. It was counted as a vehicle
    request, so the sequence timer (ISO 15118-2: 60 s between requests) ran from it, and
    the next truck, plugged in minutes later, faulted with vehicle_comm_timeout at once."""
    r = Rig()
    TruckDriver(r, "scania-bev").session("card_after_setup", "driver_stop", "CARD-A")
    r.advance(0.1)
    r.ask(vl.LinkLost("unplugged"))  # the old truck's link, after its unplug
    r.advance(120.0)  # the bay stands empty for two minutes
    TruckDriver(r, "etgx").session("card_before_plug", "driver_stop", "CARD-B")
    assert "vehicle_comm_timeout" not in r.s.faults
    assert all(wh > 0 for wh in billed(r, 2))
