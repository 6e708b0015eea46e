"""A simulated electric truck: the EV side of the ISO 15118-2 DC charging sequence.

The truck talks to the charger over a ``VehicleChannel`` (its end: ``request``), drives the
control pilot through a ``PilotPort`` (the sim IO board) and owns its contactor
(``contactor_closed``); the plant model lets current into the battery only while both the
truck's and the charger's contactors are closed. Sequence and EV timeouts follow
charging-facts.md "DC flow"; the figures live in ``EvTimings`` so scenarios can vary them.

Every wait is bounded (a request timeout, a phase limit, or the charge time limit), so a
truck never hangs, whatever the charger does.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hal.vehicle_link import (
    AuthorizationReq,
    CableCheckReq,
    ChargeParameterDiscoveryReq,
    CurrentDemandReq,
    EvParameters,
    EvseNotification,
    PaymentServiceSelectionReq,
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

# ISO 15118-2 PreCharge asks for at most 2 A (same limit as hal/power_stage.py).
PRECHARGE_CURRENT_A = 2.0


class PilotPort(Protocol):
    """What the sim IO board offers the truck: the EV side of the control pilot."""

    def set_pilot(self, state: str) -> None:
        """'A' (unplugged), 'B' (connected) or 'C' (ready to charge), IEC 61851-1."""

    def duty_percent(self) -> float:
        """The PWM duty the charger drives (5 % = digital communication, 61851-1 A.2)."""


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, dt: float) -> None: ...


class LoopClock:
    """The running event loop's clock (virtual under looptime)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, dt: float) -> None:
        await asyncio.sleep(dt)


@dataclass(frozen=True, slots=True)
class EvTimings:
    """EV-side limits. Sources: charging-facts.md "DC flow" unless marked (approx.)."""

    general_timeout_s: float = 2.0  # EV timeout for requests without a specific one
    power_delivery_timeout_s: float = 5.0  # ISO 15118-2 EV timeout (DIN: 2 s)
    current_demand_timeout_s: float = 0.25  # EV gives up after 250 ms
    ongoing_retry_s: float = 0.2  # pause before repeating an Ongoing request (approx.)
    ongoing_limit_s: float = 60.0  # Authorization/ChargeParameterDiscovery Ongoing (approx.)
    cable_check_limit_s: float = 30.0  # "some EVs give up at 30 s"
    precharge_limit_s: float = 7.0  # PreCharge EV limit 7 s
    precharge_period_s: float = 0.1  # approx.
    precharge_tolerance_v: float = 20.0  # close the contactor within 20 V of the pack
    voltage_margin_v: float = 20.0  # target voltage above the pack (2 x the +-10 V accuracy)
    over_voltage_margin_v: float = 10.0  # present V above EV max beyond measurement accuracy
    stop_current_a: float = 5.0  # open the contactor below this current ...
    stop_ramp_limit_s: float = 1.0  # ... or after this long
    abort_open_delay_s: float = 0.1  # C->B: the charger must open within 100 ms
    welding_period_s: float = 0.2  # approx.
    welding_min_requests: int = 2
    welding_max_requests: int = 10
    safe_voltage_v: float = 60.0  # "< 60 V" gate for a de-energized output
    max_charge_s: float = 12 * 3600.0  # sessions run up to 10 h: give up beyond that


class _Abort(Exception):
    """Communication failed: no further messages, open the contactor (ISO 15118-2 EV
    behaviour on timeouts / FAILED codes is to terminate the session)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Stop(Exception):
    """End the session in order (target SoC, charger's StopCharging, driver stop)."""

    def __init__(self, reason: str, emergency: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.emergency = emergency


class Truck:
    def __init__(
        self,
        name: str,
        battery: BatteryModel,
        channel: VehicleChannel,
        pilot: PilotPort,
        evccid: str,
        target_soc: float = 100.0,
        current_demand_period_s: float = 0.25,
        timings: EvTimings | None = None,
    ) -> None:
        self.name = name
        self.battery = battery
        self.channel = channel
        self.pilot = pilot
        self.evccid = evccid
        self.target_soc = target_soc
        self.current_demand_period_s = current_demand_period_s
        self.timings = timings or EvTimings()
        self.contactor_closed = False
        self.state = "plugged"
        self.pilot_state = ""
        self.start_soc: float | None = None
        self.end_soc: float | None = None
        self.stop_reason: str | None = None
        self.failures: list[str] = []  # what went wrong (timeouts, FAILED, link loss, ...)
        self.warnings: list[str] = []  # odd but not fatal (e.g. welding check inconclusive)
        self.log: list[tuple[float, str, str]] = []  # (time, request, outcome)
        self.present_voltage_v = 0.0  # the charger's output as last reported
        self.present_current_a = 0.0
        self._clock: Clock = LoopClock()
        self._stop_requested = False
        self._unplugged = False
        self._powered = False  # PowerDelivery(start) answered

    @classmethod
    def from_preset(
        cls,
        preset_name: str,
        soc_percent: float,
        channel: VehicleChannel,
        pilot: PilotPort,
        *,
        name: str | None = None,
        evccid: str | None = None,
        **kwargs: Any,
    ) -> Truck:
        """A truck with a preset battery; the EVCCID (a MAC, 12 hex digits) is derived
        from the name so runs are reproducible."""
        battery = BatteryModel.from_preset(preset_name, soc_percent)
        name = name or preset_name
        evccid = evccid or f"{zlib.crc32(name.encode()):012X}"
        return cls(name, battery, channel, pilot, evccid, **kwargs)

    # --- driver / cable actions ---------------------------------------------------------

    def stop(self) -> None:
        """Stop from the truck side; honoured within one request cycle."""
        self._stop_requested = True

    def unplug(self, close_link: bool = True) -> None:
        """Pull the plug: pilot A, link gone. The EV opens its contactor on pilot loss.
        ``close_link=False``: the caller closes the link later (the PLC modem's lag)."""
        self._unplugged = True
        self.contactor_closed = False
        self._set_pilot("A")
        if close_link:
            self.channel.close("unplugged")

    @property
    def unplugged(self) -> bool:
        return self._unplugged

    @property
    def finished(self) -> bool:
        return self.state == "done" or self.state.startswith("failed")

    # --- the session --------------------------------------------------------------------

    async def run(self, clock: Clock | None = None) -> str:
        """Play one charging session; returns the final state ('done' or 'failed: ...')."""
        self._clock = clock or LoopClock()
        self.start_soc = self.battery.soc_percent
        self.state = "plugged"
        try:
            if not self._unplugged:
                self._set_pilot("B")
            try:
                try:
                    await self._prepare()
                    await self._charge_loop()
                except _Stop as stop:
                    await self._stop(stop)
            except _Abort as abort:
                await self._abort(abort.reason)
        except asyncio.CancelledError:
            self.failures.append("cancelled")
            raise
        finally:
            # Whatever happened (even cancellation), leave the pack disconnected.
            self.contactor_closed = False
            self.end_soc = self.battery.soc_percent
            self.state = f"failed: {self.failures[0]}" if self.failures else "done"
        return self.state

    async def _prepare(self) -> None:
        t = self.timings
        # The EV starts high-level communication (SLAC, SDP) only once it sees 5 % PWM.
        t0 = self._clock.now()
        while abs(self.pilot.duty_percent() - 5.0) > 0.5:
            if self._clock.now() - t0 > t.general_timeout_s * 10:
                raise _Abort("no 5 % PWM from the charger")
            await self._clock.sleep(0.05)
        await self._ask(SessionSetupReq(self.evccid), t.general_timeout_s, notify=False)
        await self._ask(ServiceDiscoveryReq(), t.general_timeout_s)
        await self._ask(PaymentServiceSelectionReq(), t.general_timeout_s)
        await self._until_finished(AuthorizationReq, t.ongoing_limit_s, "authorization")
        await self._until_finished(
            lambda: ChargeParameterDiscoveryReq(self._ev_parameters()),
            t.ongoing_limit_s,
            "charge parameter discovery",
        )
        self._set_pilot("C")  # ready: the charger may now run the cable check
        self.state = "cable_check"
        await self._until_finished(
            lambda: CableCheckReq(self.battery.soc_percent), t.cable_check_limit_s, "cable check"
        )
        self.state = "precharge"
        await self._precharge()
        self.contactor_closed = True
        await self._ask(PowerDeliveryReq(start=True), t.power_delivery_timeout_s)
        self._powered = True

    async def _until_finished(
        self, make: Callable[[], VehicleRequest], limit_s: float, what: str
    ) -> VehicleResponse:
        """Repeat a request while the charger answers Ongoing, at most ``limit_s``."""
        t0 = self._clock.now()
        while True:
            self._check_stop()
            resp = await self._ask(make(), self.timings.general_timeout_s)
            if resp.processing is Processing.FINISHED:
                return resp
            if self._clock.now() - t0 >= limit_s:
                raise _Abort(f"{what}: still Ongoing after {limit_s:g} s")
            await self._clock.sleep(self.timings.ongoing_retry_s)

    async def _precharge(self) -> None:
        t = self.timings
        t0 = self._clock.now()
        while True:
            self._check_stop()
            target = self.battery.terminal_voltage(0.0)
            resp = await self._ask(PreChargeReq(target, PRECHARGE_CURRENT_A), t.general_timeout_s)
            self._check_over_voltage(resp)
            if abs(resp.present_voltage_v - target) <= t.precharge_tolerance_v:
                return
            if self._clock.now() - t0 >= t.precharge_limit_s:
                raise _Abort(
                    f"precharge: {resp.present_voltage_v:.0f} V, pack {target:.0f} V "
                    f"after {t.precharge_limit_s:g} s"
                )
            await self._clock.sleep(t.precharge_period_s)

    async def _charge_loop(self) -> None:
        t = self.timings
        self.state = "charging"
        t0 = self._clock.now()
        while True:
            self._check_stop()
            if self.battery.soc_percent >= self.target_soc:
                raise _Stop("target soc reached")
            if self._clock.now() - t0 >= t.max_charge_s:
                raise _Stop("charge time limit")
            resp = await self._ask(self._current_demand(), t.current_demand_timeout_s)
            self._check_over_voltage(resp)
            await self._clock.sleep(self.current_demand_period_s)

    async def _stop(self, stop: _Stop) -> None:
        """Ordered end: ramp to ~0 A, PowerDelivery(stop), contactor open, welding check,
        SessionStop (charging-facts.md "Ordered shutdown")."""
        t = self.timings
        self.state = "stopping"
        self.stop_reason = stop.reason
        if stop.emergency:
            # The charger cuts supply and opens at once; the EV opens too, no ramp.
            self.failures.append(f"evse emergency shutdown ({stop.reason})")
            self.contactor_closed = False
        if self._powered:
            if not stop.emergency:
                t0 = self._clock.now()
                while self._clock.now() - t0 < t.stop_ramp_limit_s:
                    resp = await self._ask(
                        self._current_demand(ramp_down=True),
                        t.current_demand_timeout_s,
                        notify=False,
                    )
                    if resp.present_current_a < t.stop_current_a:
                        break
                    await self._clock.sleep(min(self.current_demand_period_s, 0.1))
            await self._ask(PowerDeliveryReq(start=False), t.power_delivery_timeout_s, notify=False)
            # The vehicle leaves C after PowerDelivery(stop) (charging-facts.md, MCS note);
            # C->B also makes the charger open its contactors within 100 ms.
            self._set_pilot("B")
            self.contactor_closed = False
            await self._welding_detection()
        else:
            self.contactor_closed = False
            self._set_pilot("B")
        await self._ask(SessionStopReq(), t.general_timeout_s, notify=False)

    async def _welding_detection(self) -> None:
        t = self.timings
        volts = 0.0
        for n in range(1, t.welding_max_requests + 1):
            resp = await self._ask(WeldingDetectionReq(), t.general_timeout_s, notify=False)
            volts = resp.present_voltage_v
            if n >= t.welding_min_requests and volts < t.safe_voltage_v:
                return
            await self._clock.sleep(t.welding_period_s)
        self.warnings.append(f"welding detection: output still {volts:.0f} V")

    async def _abort(self, reason: str) -> None:
        """Communication failed: no more messages; pilot B, then open the contactor."""
        self.failures.append(reason)
        self.stop_reason = reason
        self.state = "stopping"
        if not self._unplugged:
            self._set_pilot("B")
        if self.contactor_closed:
            # Give the charger its 100 ms (C->B) to cut the current before opening under load.
            await self._clock.sleep(self.timings.abort_open_delay_s)
        self.contactor_closed = False

    # --- helpers --------------------------------------------------------------------------

    async def _ask(
        self, req: VehicleRequest, timeout_s: float, *, notify: bool = True
    ) -> VehicleResponse:
        name = type(req).__name__
        now = self._clock.now()
        try:
            resp = await self.channel.request(req, timeout_s)
        except VehicleTimeout:
            self.log.append((now, name, "timeout"))
            raise _Abort(f"timeout: {name} not answered within {timeout_s * 1000:.0f} ms") from None
        except LinkClosed as exc:
            self.log.append((now, name, "link closed"))
            raise _Abort(f"link lost: {exc.reason}") from None
        self.log.append((now, name, f"{resp.code.value} {resp.processing.value}"))
        self.present_voltage_v = resp.present_voltage_v
        self.present_current_a = resp.present_current_a
        if resp.request != name:
            raise _Abort(f"{name}: answer was for {resp.request}")
        if resp.code is not ResponseCode.OK:
            raise _Abort(f"{name}: {resp.code.value}")
        if notify and resp.notification is EvseNotification.STOP_CHARGING:
            raise _Stop("evse stop charging")
        if notify and resp.notification is EvseNotification.EMERGENCY_SHUTDOWN:
            raise _Stop("evse emergency shutdown", emergency=True)
        return resp

    def _check_stop(self) -> None:
        if self._stop_requested:
            raise _Stop("ev stop")

    def _check_over_voltage(self, resp: VehicleResponse) -> None:
        limit = self.battery.max_voltage_v + self.timings.over_voltage_margin_v
        if resp.present_voltage_v > limit:
            raise _Abort(f"over-voltage: {resp.present_voltage_v:.0f} V > {limit:.0f} V")

    def _ev_parameters(self) -> EvParameters:
        b = self.battery
        return EvParameters(
            max_voltage_v=b.max_voltage_v,
            max_current_a=b.max_current_a,
            max_power_w=b.max_power_w,
            energy_capacity_wh=b.capacity_kwh * 1000.0,
            soc_percent=b.soc_percent,
            target_soc_percent=self.target_soc,
        )

    def _current_demand(self, ramp_down: bool = False) -> CurrentDemandReq:
        """Target current: the pack's taper limit, capped by the EV's power at the pack
        voltage it sees. Target voltage: the pack's terminal voltage at that current plus
        a margin, so the charger's voltage ceiling sits just above the pack (current
        control binds) and can never exceed the EV maximum."""
        b = self.battery
        pack_v = b.terminal_voltage(self.present_current_a)
        current = 0.0 if ramp_down else min(b.max_charge_current_a(), b.max_power_w / pack_v)
        voltage = min(b.max_voltage_v, b.terminal_voltage(current) + self.timings.voltage_margin_v)
        power = max(current * pack_v, 1.0)
        to_go_wh = max(self.target_soc - b.soc_percent, 0.0) * b.capacity_kwh * 10.0
        return CurrentDemandReq(
            target_voltage_v=voltage,
            target_current_a=current,
            soc_percent=b.soc_percent,
            max_voltage_v=b.max_voltage_v,
            max_current_a=b.max_current_a,
            max_power_w=b.max_power_w,
            remaining_time_s=None if ramp_down else to_go_wh * 3600.0 / power,
            charging_complete=b.soc_percent >= self.target_soc,
        )

    def _set_pilot(self, state: str) -> None:
        self.pilot_state = state
        self.pilot.set_pilot(state)
