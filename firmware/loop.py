"""The control loop: the thin shell that feeds the session machines and carries out
their commands on the drivers.

A steady tick (``control.loop_hz``, 10 Hz by default) reads the IO board and the power
stage, turns changes into events and advances time; vehicle requests take a fast path
(their own task per connector: request -> machine -> setpoint frame on the bus -> answer,
with no wait for the next tick) because the EV gives up on CurrentDemand after 250 ms.

On the fast path nothing touches the disk or waits on OCPP: hardware commands and the
answer go out first; observers (OCPP station, reports, screen) get the batch on the event
loop's next turn. Nothing outside the core stops the loop or a safety action: an observer
or a command that raises is logged and skipped; a driver whose poll raises is its part's
fault (``comm_lost``, ``io_board_link_lost``) while it fails; a dead vehicle task is the
link lost; a machine that raises (a bug) is held safe, its session ends as any other, and
a fresh machine follows once the output is safe. A watchdog (firmware/tasks.py) restarts a
tick that ends; a loop blocked altogether stops the IO board's heartbeat, and the board
opens the contactors on its own rule (hal/mcu).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from firmware.allocation import Allocator, fair_share
from firmware.config import ChargerConfig, ConnectorConfig
from firmware.core import events as ev
from firmware.core import limits as lim
from firmware.core.events import StopReason, UnlockOutcome
from firmware.core.session import ConnectorLimits, ConnectorSession, Status
from firmware.core.transitions import NEEDS_POWER, Phase
from firmware.errors import error_code
from firmware.inputs import PartsHealth, health_events, input_events, measurement_due
from firmware.pilot_followers import PilotFollowers
from firmware.tasks import TaskOwner, Watchdog
from hal.clock import Clock
from hal.io_board import ConnectorInputs, IoBoard
from hal.power_stage import Mode, PowerStage, PowerStageFault
from hal.vehicle_link import LinkLost, VehicleLink

log = logging.getLogger("chargebay.loop")

Observer = Callable[[int, ev.Command, float], None]
# Unlock: the machine's answer after the lock confirmation time (the switch read per tick).
UNLOCK_ANSWER_MARGIN_S = 1.0


@dataclass
class Connector:
    config: ConnectorConfig
    session: ConnectorSession
    link: VehicleLink | None = None
    inputs: ConnectorInputs | None = None
    screen: ev.Screen | None = None
    power_mode: Mode = Mode.OFF
    last_measurement: ev.Measurement | None = None
    broken: bool = False  # its machine raised: hardware held safe until a fresh one
    pilot_duty: float = 100.0  # what the core last commanded (SetPilot)


@dataclass
class Controller:
    config: ChargerConfig
    clock: Clock
    power: PowerStage
    io: IoBoard
    observers: list[Observer] = field(default_factory=list)
    connectors: dict[int, Connector] = field(default_factory=dict)
    # Every task of the controller (tick, watchdog, one per vehicle link): kept, its
    # failure logged and counted (tasks.failures), cancelled with the controller.
    tasks: TaskOwner = field(default_factory=lambda: TaskOwner("control"))
    _opened: list[str] = field(default_factory=list)
    allocator: Allocator = field(default_factory=Allocator)
    _notes: deque[tuple[int, list[ev.Command], float]] = field(default_factory=deque)
    _notify_scheduled: bool = False
    failures: dict[str, int] = field(default_factory=dict)  # what raised, counted by kind
    _failing: set[str] = field(default_factory=set)  # drivers whose poll raises right now
    watchdog: Watchdog | None = None
    pilot_followers: PilotFollowers = field(default_factory=PilotFollowers)

    def __post_init__(self) -> None:
        control = self.config.control
        for c in self.config.connectors:
            limits = ConnectorLimits(c.cable_max_current_a, c.cable_max_voltage_v,
                                     control.ramp_a_per_s, control.cable_check_settle_s)
            self.connectors[c.evse_id] = Connector(c, ConnectorSession(c.evse_id, limits))

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the IO board, then the power stage, then start the tick. If a driver
        fails to start, what was opened is closed again and the error goes up."""
        now = self.clock.now()
        try:
            await self.io.start(now)
            self._opened.append("io")
            await self.power.start(now)
            self._opened.append("power")
        except BaseException:
            await self._close_drivers()
            raise
        period = 1.0 / self.config.control.loop_hz
        self.watchdog = Watchdog(self.clock, max(1.0, 5 * period), self._ticker_stalled)
        self._start_ticker()
        self.tasks.spawn(self.watchdog.run(), "control-watchdog")

    def _start_ticker(self) -> None:
        # A tick task that raised starts again at once (the watchdog would too, later).
        self.tasks.spawn(self._ticker(), "control-tick", lambda _: self._start_ticker())

    def _ticker_stalled(self, silent_s: float) -> None:
        """The watchdog's bark (no beat for ``silent_s``): every output's current off, the
        tick started anew. The contactors are the board's: without heartbeats it opened
        them by its own rule, and the new tick hands its link loss to the machines."""
        self._count("watchdog")
        log.error("control tick silent for %.1f s: outputs off, tick restarted", silent_s)
        for conn in self.connectors.values():
            try:
                self.power.set_output(conn.config.output, Mode.OFF, 0.0, 0.0,
                                      self.clock.now())
            except Exception:
                self._count("power")
                log.exception("connector %d: could not switch its output off",
                              conn.config.evse_id)
        if not self.tasks.stopping and not any(t.get_name() == "control-tick"
                                               for t in self.tasks.running):
            self._start_ticker()

    def _count(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1

    async def stop(self) -> None:
        await self.tasks.stop()
        if "power" in self._opened:
            for c in self.connectors.values():
                self.power.set_output(c.config.output, Mode.OFF, 0.0, 0.0, self.clock.now())
        await self._close_drivers()

    async def _close_drivers(self) -> None:
        if "io" in self._opened:
            await self.io.close()
        if "power" in self._opened:
            await self.power.close()
        self._opened.clear()

    def _vehicle_died(self, evse_id: int) -> None:
        """A vehicle task that raised: the link lost to the machine (an ordered end)."""
        conn = self.connectors[evse_id]
        conn.link = None
        self._handle(conn, ev.FromVehicle(LinkLost("the vehicle task failed")), self.clock.now())

    def attach_vehicle(self, evse_id: int, link: VehicleLink) -> None:
        """A vehicle link came up on this connector (SLAC/SDP done, or the simulator)."""
        conn = self.connectors[evse_id]
        conn.link = link
        self.tasks.spawn(self._vehicle(conn, link), f"vehicle-{evse_id}",
                         lambda _: self._vehicle_died(evse_id))

    def connector_safe(self, evse_id: int) -> str | None:
        """None when the connector is safe to leave: no session, contactors commanded
        and read open, output known below 60 V, lock released. Else what is missing."""
        s = self.connectors[evse_id].session
        if s.session_at is not None or s.phase is Phase.STOPPING:
            return f"session still {s.phase.value}"
        if s.contactors_commanded or s.contactors_closed:
            return "contactors not open"
        if not s.below_safe_voltage:
            return f"output at {s.voltage_v:.0f} V"
        if s.lock_locked:
            return "lock still locked"
        return None

    async def shutdown_sessions(self, reason: StopReason,
                                within_s: float) -> list[tuple[int, str]]:
        """End every session in order, wait (<= ``within_s``) until all are safe; the
        connectors that were not, and why."""
        for evse_id in self.connectors:
            self.request_stop(evse_id, reason)
        end = self.clock.now() + within_s
        while True:
            unsafe = [(e, why) for e in self.connectors
                      if (why := self.connector_safe(e)) is not None]
            if not unsafe or self.clock.now() >= end:
                return unsafe
            await self.clock.sleep(0.05)

    # --- inputs from outside (OCPP, card reader, scenario) ----------------------------

    def authorize(self, evse_id: int, token: str, source: str) -> None:
        self.dispatch(evse_id, ev.Authorize(token, source))

    def request_stop(self, evse_id: int, reason: StopReason) -> None:
        self.dispatch(evse_id, ev.StopRequested(reason))

    def set_availability(self, evse_id: int, operative: bool) -> None:
        self.dispatch(evse_id, ev.SetAvailability(operative))

    def reset_connector(self, evse_id: int) -> bool:
        """OCPP Reset of a connector (B11/B12): a fresh machine, as after a restart (so a
        latched "needs service" fault clears remotely, errors.Clearing), only with no
        session, contactors commanded open, output < 60 V. False: try again later."""
        conn = self.connectors[evse_id]
        s = conn.session
        if s.session_at is not None or s.contactors_commanded or not s.below_safe_voltage:
            return False
        self._fresh_machine(conn, self.clock.now())
        return True

    async def unlock_connector(self, evse_id: int) -> UnlockOutcome:
        """OCPP UnlockConnector (F05) through the core's gates (refused in a session or
        under voltage); answered from the lock's switch (a jammed lock: UNLOCK_FAILED)."""
        results: list[UnlockOutcome] = []

        def watch(evse: int, cmd: ev.Command, _now: float) -> None:
            if evse == evse_id and isinstance(cmd, ev.UnlockResult):
                results.append(cmd.outcome)

        self.observers.append(watch)
        try:
            self.dispatch(evse_id, ev.UnlockRequested())
            deadline = self.clock.now() + lim.LOCK_CONFIRM_S + UNLOCK_ANSWER_MARGIN_S
            while not results and self.clock.now() < deadline:
                await self.clock.sleep(1.0 / self.config.control.loop_hz)
        finally:
            self.observers.remove(watch)
        return results[0] if results else UnlockOutcome.UNLOCK_FAILED

    def status(self, evse_id: int) -> Status:
        conn = self.connectors[evse_id]
        status = conn.session.status(self.clock.now())
        if conn.broken:  # held safe, no session: out of order until a fresh machine
            return replace(status, phase=Phase.FAULTED, current_a=0.0, setpoint_a=0.0,
                           limit_a=0.0)
        return status

    def dispatch(self, evse_id: int, event: ev.Event) -> None:
        """An event from outside (OCPP, authorization, the screen), contained as the
        loop's own: a machine that raises on it is held safe, never the caller's crash."""
        self._handle(self.connectors[evse_id], event, self.clock.now())

    def _handle(self, conn: Connector, event: ev.Event, now: float,
                observe_later: bool = False) -> None:
        """One event into the connector's machine, its commands carried out. A machine
        that raises is a bug: logged, counted, and its hardware held safe."""
        if conn.broken:
            return
        try:
            commands = conn.session.handle(event, now)
        except Exception:
            self._count("session")
            log.exception("connector %d: the session machine failed on %r; output off, "
                          "contactors open", conn.config.evse_id, event)
            self._break(conn, now, observe_later)
            return
        self._execute(conn, commands, now, observe_later)

    def _break(self, conn: Connector, now: float, observe_later: bool = False) -> None:
        """A machine that raised (a bug) is held safe; the session it held ends as every
        session does, to every observer: SessionEnded, reason Other (OCPP stoppedReason
        Other, triggerReason AbnormalCondition; the bay captures what was used), and the
        fault screen. The machine is not asked again: its plain fields are read once."""
        if conn.broken:
            return
        conn.broken = True
        self._hold_safe(conn)
        s = conn.session
        out: list[ev.Command] = [ev.SessionEnded(StopReason.OTHER, now, s.energy_wh)] \
            if s.session_at is not None else []
        out.append(ev.Screen(Phase.FAULTED, StopReason.OTHER, energy_wh=s.energy_wh))
        self._execute(conn, out, now, observe_later)

    def _hold_safe(self, conn: Connector) -> None:
        """Straight to the hardware, not through the machine: no current commanded, then
        contactors open (the same order as an emergency shutdown)."""
        evse = conn.config.evse_id
        try:
            self.power.set_output(conn.config.output, Mode.OFF, 0.0, 0.0, self.clock.now())
        except Exception:
            self._count("power")
            log.exception("connector %d: could not switch its output off", evse)
        try:
            self.io.set_contactors(evse, False)
        except Exception:
            self._count("io")
            log.exception("connector %d: could not open its contactors", evse)
        conn.power_mode = Mode.OFF

    def _recover(self, conn: Connector, now: float) -> None:
        """A broken machine is replaced once its output is known safe: contactors read
        open and the output below the safe voltage (the core's own gate, limits.py)."""
        tele = self.power.telemetry(conn.config.output)
        inputs = conn.inputs
        if inputs is None or inputs.contactors_closed or tele.voltage_v >= lim.SAFE_VOLTAGE_V:
            return
        log.warning("connector %d: safe again; a fresh session machine", conn.config.evse_id)
        conn.broken, conn.link = False, None
        self._fresh_machine(conn, now)
        if not conn.broken:  # (a fresh machine that raised at once is held safe again)
            self._execute(conn, [conn.session.screen()], now)  # no longer out of order

    def _fresh_machine(self, conn: Connector, now: float) -> None:
        """As after a process restart (what is still wrong comes back from the inputs),
        and the availability it was given goes on (as across a reboot, OCPP G03.FR.06)."""
        operative = conn.session.operative
        conn.session = ConnectorSession(conn.config.evse_id, conn.session.limits)
        conn.inputs = conn.screen = conn.last_measurement = None
        self.allocator.forget()
        self._feed_inputs(conn, now)
        if not operative:
            self._handle(conn, ev.SetAvailability(False), now)

    def _poll_driver(self, name: str, poll: Callable[[float], None], now: float) -> bool:
        """A driver's poll; one that raises is that part's fault while it does."""
        try:
            poll(now)
        except Exception:
            self._count(name)
            if name not in self._failing:
                log.exception("%s poll failed; its fault is raised until it works", name)
            self._failing.add(name)
            return False
        self._failing.discard(name)
        return True

    # --- the two paths -------------------------------------------------------------------

    async def _ticker(self) -> None:
        period = 1.0 / self.config.control.loop_hz
        next_at = self.clock.now()
        while True:
            try:
                self.tick()
            except Exception:  # the tick itself guards each part; this is the last net
                self._count("tick")
                log.exception("control tick failed")
            if self.watchdog is not None:
                self.watchdog.beat()
            next_at = max(next_at + period, self.clock.now())  # late: no burst to catch up
            await self.clock.sleep_until(next_at)

    async def _vehicle(self, conn: Connector, link: VehicleLink) -> None:
        while True:
            request = await link.receive()
            now = self.clock.now()
            if conn.link is not link:
                return  # a truck plugged straight back in: this link's truck has left
            if type(request).__name__ == "LinkLost":
                # Was it the plug? Read the board first so an unplug counts as one.
                self.io.poll(now)
                self._feed_inputs(conn, now)
            # The fast path: hardware commands and the answer now, observers afterwards.
            self._handle(conn, ev.FromVehicle(request), now, observe_later=True)
            if type(request).__name__ == "LinkLost":
                conn.link = None
                return

    def tick(self) -> None:
        now = self.clock.now()
        io_ok = self._poll_driver("io", self.io.poll, now)
        power_ok = self._poll_driver("power", self.power.poll, now)
        self._allocate(now)
        stage_faults = self.power.take_faults()
        board_faults = self.io.take_faults()
        health = PartsHealth(power_ok, self.power.link_up, io_ok, self.io.link_up,
                             self.power.available_modules()
                             >= self.config.power_stage.module_count)
        for conn in self.connectors.values():
            try:
                self._tick_connector(conn, now, health, stage_faults, board_faults)
            except Exception:  # one bay's trouble is not the other bay's
                self._count("connector")
                log.exception("connector %d: tick failed", conn.config.evse_id)
                self._break(conn, now)  # held safe; a fresh machine once it is (_recover)

    def _tick_connector(self, conn: Connector, now: float, health: PartsHealth,
                        stage_faults: list[PowerStageFault], board_faults: list[str]) -> None:
        if conn.broken:
            self._hold_safe(conn)  # repeated: a driver that missed it once gets it again
            self._feed_inputs(conn, now)
            self._recover(conn, now)
            return
        s = conn.session
        self._feed_inputs(conn, now)
        events: list[ev.Event] = []
        tele = self.power.telemetry(conn.config.output)
        cable_v = conn.inputs.output_voltage_v if conn.inputs is not None else None
        measurement = ev.Measurement(tele.voltage_v, tele.current_a, cable_v)
        if self.measurement_due(s, measurement, conn.last_measurement):
            events.append(measurement)
        conn.last_measurement = measurement
        for fault in stage_faults:
            if fault.output in (None, conn.config.output):
                events.append(ev.FaultRaised(error_code(fault.code)))
        events.extend(ev.FaultRaised(error_code(code)) for code in board_faults)
        events.extend(health_events(s.faults, health))
        # The measurement already advances the machine's timers; no separate Tick.
        for event in events:
            self._handle(conn, event, now)

    measurement_due = staticmethod(measurement_due)

    def _feed_inputs(self, conn: Connector, now: float) -> None:
        inputs = self.io.inputs(conn.config.evse_id)
        events = self._input_events(conn.inputs, inputs)
        conn.inputs = inputs
        for event in events:
            self._handle(conn, event, now)
        if any(isinstance(e, ev.PilotChanged) for e in events):
            self._tell_pilot(conn, now)

    def _tell_pilot(self, conn: Connector, now: float) -> None:
        inputs = conn.inputs  # the pilot as read, "A" once unplugged; the duty commanded
        state = inputs.pilot if inputs is not None and inputs.plugged else "A"
        for _ in range(self.pilot_followers.tell(conn.config.evse_id, state,
                                                 conn.pilot_duty, now)):
            self._count("pilot_follower")

    _input_events = staticmethod(input_events)  # (the safety rig feeds through it)

    def _allocate(self, now: float) -> None:
        """Fair split of healthy modules over connectors that need power (allocation.py).
        Modules stay with an output until it is discharged: they are also what measures
        its voltage for the < 60 V gates."""
        needs = [(c.config.evse_id, c.config.output,
                  c.session.phase in NEEDS_POWER or c.session.voltage_v >= 60.0)
                 for c in self.connectors.values()]
        healthy = self.power.available_modules()
        planned = self.allocator.plan(now, needs, healthy)
        if planned is None:
            return
        plan, needing = planned
        module = self.power.module_capability()
        for conn in self.connectors.values():
            output = conn.config.output
            self.power.assign(output, plan.get(output, 0))
            if output in plan:
                cap = self.power.capability(output)
                event = ev.Capability(cap.max_voltage_v, cap.max_current_a, cap.max_power_w)
            else:  # what it would get: advertised in ChargeParameterDiscovery
                n = fair_share(needing, healthy)
                event = ev.Capability(module.max_voltage_v, n * module.max_current_a,
                                      n * module.max_power_w)
            if event != conn.session.capability:
                self._handle(conn, event, now)

    # --- commands --------------------------------------------------------------------------

    def _execute(self, conn: Connector, commands: list[ev.Command], now: float,
                 observe_later: bool = False) -> None:
        evse = conn.config.evse_id
        for cmd in commands:
            try:
                self._carry_out(conn, cmd, now)
            except Exception:  # the rest of the batch (contactors open...) still goes out
                self._count("command")
                log.exception("connector %d: %r failed", evse, cmd)
        if not commands or not self.observers:
            return
        # One FIFO for every batch, so observers see batches in the order they happened
        # even when a fast-path batch is waiting for the loop's next turn.
        self._notes.append((evse, commands, now))
        if not observe_later:
            self._notify()
        elif not self._notify_scheduled:
            self._notify_scheduled = True
            asyncio.get_running_loop().call_soon(self._notify)

    def _carry_out(self, conn: Connector, cmd: ev.Command, now: float) -> None:
        evse = conn.config.evse_id
        match cmd:
            case ev.SetPower(mode, volts, amps):
                conn.power_mode = mode
                self.power.set_output(conn.config.output, mode, volts, amps, now)
            case ev.SetContactors(closed):
                self.io.set_contactors(evse, closed)
            case ev.SetLock(locked):
                self.io.set_lock(evse, locked)
            case ev.SetPilot(duty, not_available):
                self.io.set_pilot(evse, duty, not_available)
                conn.pilot_duty = 100.0 if not_available else duty
                self._tell_pilot(conn, now)
            case ev.SetOverVoltageBand(limit_v):
                self.io.set_ovp_band(evse, limit_v)
            case ev.TestInsulationMonitor():
                self.io.test_insulation_monitor(evse)
            case ev.Answer(response):
                if conn.link is not None:
                    conn.link.answer(response)
            case ev.Screen():
                conn.screen = cmd

    def _notify(self) -> None:
        self._notify_scheduled = False
        while self._notes:
            evse, commands, now = self._notes.popleft()
            for cmd in commands:
                for observer in self.observers:
                    try:
                        observer(evse, cmd, now)
                    except Exception:  # reporting must never stop control or safety
                        log.exception("observer %r failed on %r", observer, cmd)
