"""The IO board's hard rules for one connector, as pure logic: no pins, no clock.

The board (board.py) samples the inputs, calls ``Connector.update`` with the time in
milliseconds, and drives the outputs this class decides. Everything a safety assessor
needs to check is in this file:

- contactors close only if the host allowed power AND the lock is confirmed AND there is
  no e-stop AND no isolation fault AND the host link is alive AND the pilot is in state
  C or D (IEC 61851-1: energy only while the vehicle asks for it) AND the output has not
  tripped on over-voltage;
- losing any of those opens them on the next update (the e-stop also has an interrupt
  that opens them before any update, see board.py), and closing again then takes a new
  command from the host: a released e-stop never re-energizes by itself. C -> B (or A,
  E, F) therefore opens the contactors here, PILOT_DEBOUNCE_MS after the change plus one
  pass, whatever the host does (IEC 61851-1: within 100 ms);
- PWM off while the contactors are closed (the host stopped it, the vehicle stays in C):
  they open after PWM_LOSS_OPEN_MS (IEC 61851-1: power off within 6 s);
- over-voltage: the output above the band the host set for the session (or the board's
  default) for OVP_FILTER_MS opens the contactors (IEC 61851-23: exceeded for 9 ms ->
  shutdown begins within 1 ms more); the trip holds until the vehicle leaves (pilot A or
  the plug out);
- host silent for the heartbeat timeout: contactors open and the pilot goes to state F;
- the lock never unlocks while the mirror contacts say a contactor is closed (welded or
  not): the output may be live;
- the insulation monitor's self test (TEST_IMD; IEC 61557-8 IMDs have a test function,
  IEC 61851-23 asks for it before the cable check measures): the board drives the IMD's
  test input and expects its alarm within IMD_TEST_ALARM_MS (none: failed), then releases
  it and expects the alarm gone within IMD_TEST_CLEAR_MS (passed; still there: no pass,
  and the standing alarm is reported as the isolation fault it is). It runs only with
  the contactors open and the output below SAFE_VOLTAGE_V (a testing IMD does not
  watch), and the contactors close
  for a vehicle only after a passed test since that vehicle plugged in: every session,
  whatever the host does;
- E/F held: once the board drives state F (the host asked, or the host went silent) it
  keeps F for at least EF_HOLD_MS (IEC 61851-1), and reports "held" meanwhile, so the
  host does not take the F it reads for the vehicle's diode;
- a contactor that is commanded open but whose mirror contact still says closed is
  reported welded;
- the contactor self test (SELFTEST_CONTACTORS, the field console's `selftest
  contactors`) is the one exception to "only in C/D", held by the board itself: it
  starts only with nothing plugged (no plug on PP, pilot A, or F while the board drives
  F), the output below SAFE_VOLTAGE_V, no power asked by the host, no e-stop, no fault
  and the link alive; it closes for SELFTEST_CLOSE_MS, opens by itself and reports what
  the mirror contacts did (trips bits). Any of those conditions failing meanwhile opens
  at once.

Partial, not on the board yet: over-temperature action (the board reports temperatures,
the host derates), lock motor current sensing (a jam shows only as the travel timeout).

MicroPython-compatible: no typing module, no dataclasses, no __future__.
"""

PILOT_DEBOUNCE_MS = 20  # a new CP state must hold this long; IEC 61851-1 allows <= 50 ms
WELD_DETECT_MS = 50  # mirror contact still closed this long after the coil dropped
LOCK_TRAVEL_MAX_MS = 800  # lock motor must reach its end switch within this
PWM_FULL = 1000  # duty per mille: constant +12 V (states A/B without PWM)
PWM_STATE_F = 0  # constant -12 V: EVSE not available (IEC 61851-1 Annex A, state F)
ENERGY_STATES = ("C", "D")  # IEC 61851-1 Annex A: the vehicle asks for energy
# IEC 61851-1: PWM switched off while the vehicle stays in C -> power off within 6 s.
# The board opens after 5 s without PWM, leaving the contactor's drop-out and a pass
# well inside the 6 s.
PWM_LOSS_OPEN_MS = 5000
# IEC 61851-23 over-voltage bands by the session's negotiated maximum voltage: (range up
# to V, limit V). 550 V up to 500 V, 825 V above 500, 935 V above 750, 1100 V above 850,
# 1375 V above 1000 (MCS).
OVP_BANDS = ((500.0, 550.0), (750.0, 825.0), (850.0, 935.0), (1000.0, 1100.0),
             (1250.0, 1375.0))
OVP_DEFAULT_V = 1100.0  # before the host sets a band: the board's CCS rating (1000 V)
# IEC 61851-23: exceeded for 9 ms -> shutdown begins within 1 ms more. The pass runs every
# millisecond, so the sample that sees the crossing is up to 1 ms late; tripping 8 ms
# after that sample starts the shutdown between 8 and 10 ms after the crossing.
OVP_FILTER_MS = 8
# Contactor self test on an empty connector. IEC 61851-23: below 60 V DC the output
# counts as safe to touch (charging-facts.md: cable check starts only below 60 V).
SAFE_VOLTAGE_V = 60.0
# How long the self test holds the contactors closed. A DC contactor picks up and its
# mirror contact follows in 20-50 ms; 500 ms is ten times that, so a slow part still
# reads closed, yet bounded: a live closure the host can no longer stop (it crashed) is
# over in half a second, the same span as the default heartbeat timeout.
SELFTEST_CLOSE_MS = 500
NO_VEHICLE_STATES = ("A", "F")  # F only while the board drives F: then PP is the witness
# IEC 61851-1: an EVSE that signals an error by state E or F keeps it at least 4 s. The
# board signals only F (E, 0 V, would take a short on its own output).
EF_HOLD_MS = 4000
# The IMD's self test (approx.: an IMD's alarm relay follows its test input within about a
# second; the device's data sheet gives the figure). Both bounds keep the cable check's
# whole phase well inside the 25 s some vehicles allow (charging-facts.md).
IMD_TEST_ALARM_MS = 2000
IMD_TEST_CLEAR_MS = 2000

# FLAG bits are those of frame.py; repeated here so this file stands alone for review.
F_CONTACTORS = 0x01
F_LOCKED = 0x02
F_ESTOP = 0x04
F_ISOLATION = 0x08
F_PLUGGED = 0x10
F_WELDED = 0x20
F_LOCK_FAULT = 0x40
F_LINK_TRIP = 0x80
T_OVER_VOLTAGE = 0x01
T_PILOT = 0x02
T_SELFTEST_RUNNING = 0x04
T_SELFTEST_CLOSED = 0x08
T_SELFTEST_OPENED = 0x10
T_SELFTEST_ABORTED = 0x20
S_PILOT_HELD_F = 0x01
S_IMD_TESTING = 0x02
S_IMD_PASSED = 0x04
S_IMD_FAILED = 0x08


def ovp_limit_v(max_voltage_v: float) -> float:
    """The over-voltage limit for a session negotiated up to ``max_voltage_v``."""
    for upto, limit in OVP_BANDS:
        if max_voltage_v <= upto:
            return limit
    return OVP_BANDS[-1][1]


def classify_pilot(high_v: float, low_v: float, pwm_running: bool) -> str:
    """CP state from the two peak levels of the pilot, IEC 61851-1 Annex A (Table A.4):
    A +12 V, B +9 V, C +6 V, D +3 V, E 0 V, F -12 V, each about +-1 V; thresholds sit
    half-way between the nominal levels."""
    if high_v > 10.5:
        state = "A"
    elif high_v > 7.5:
        state = "B"
    elif high_v > 4.5:
        state = "C"
    elif high_v > 1.5:
        state = "D"
    elif high_v > -1.5:
        return "E"
    else:
        return "F"
    # With PWM running the negative half must reach -12 V; if it does not, the vehicle's
    # diode is missing or shorted (Annex A, diode check) and the board reports F.
    if pwm_running and state != "A" and low_v > -10.5:
        return "F"
    return state


class PilotFilter:
    """Accepts a new CP state only after it has been seen continuously for
    PILOT_DEBOUNCE_MS, so a glitch of one sample never reaches the host."""

    def __init__(self) -> None:
        self.state = "F"  # what the board drives at power-up, until the host says otherwise
        self.candidate = "F"
        self.since_ms = 0

    def sample(self, raw: str, now_ms: int) -> bool:
        """True when the filtered state changed."""
        if raw == self.state:
            self.candidate = raw
            return False
        if raw != self.candidate:
            self.candidate = raw
            self.since_ms = now_ms
            return False
        if now_ms - self.since_ms >= PILOT_DEBOUNCE_MS:
            self.state = raw
            return True
        return False

    def deadline_ms(self) -> int:
        """When the pending candidate would be accepted; -1 if none is pending."""
        if self.candidate == self.state:
            return -1
        return self.since_ms + PILOT_DEBOUNCE_MS


class Connector:
    def __init__(self, number: int) -> None:
        self.number = number
        # What the host asked for.
        self.allow_power = False
        self.want_locked = False
        self.pilot_f = True  # start in F until the host says otherwise
        self.duty_permille = PWM_FULL
        # What the inputs say.
        self.pilot = PilotFilter()
        self.plugged = False
        self.mirror_closed = False
        self.lock_switch = False
        self.estop = False
        self.imd_alarm = False  # the IMD's alarm relay, as read on its input
        self.isolation_fault = False  # the alarm, except while it answers the self test
        self.temperature_c = 0.0
        self.output_v = 0.0  # HV sense at the EVSE's side of the cable
        self.link_ok = False
        # What the board decided.
        self.coil_on = False
        self.lock_drive = 0  # +1 towards locked, -1 towards unlocked, 0 stopped
        self.welded = False
        self.lock_fault = False
        self.refused_closes = 0
        self.ovp_limit_v = OVP_DEFAULT_V
        self.ovp_trip = False
        self.pilot_trip = False  # opened because the pilot left C/D (reported once)
        self._over_since = -1
        self._pwm_off_since = -1  # contactors closed with no PWM on the pilot since
        self._coil_off_ms = 0
        self._lock_target = False
        self._lock_started_ms = 0
        # The contactor self test: running, and what the mirror did in the last one.
        self.selftest_running = False
        self.selftest_closed = False
        self.selftest_opened = False
        self.selftest_aborted = False
        self._selftest_until = 0
        # The IMD self test: its test input, running, and the result since plug-in.
        self.imd_test_out = False
        self.imd_testing = False
        self.imd_passed = False
        self.imd_failed = False
        self._imd_alarm_seen = False
        self._imd_until = 0
        self._pp_out_since = -1  # PP has read "no plug" since
        # State F: driven now, since when, held for IEC 61851-1's 4 s (reported).
        self._driving_f = True  # power-up: no error was signalled, so nothing to hold
        self._f_since = -EF_HOLD_MS
        self._f_released = -EF_HOLD_MS
        self.holding_f = False
        self.pilot_held_f = False

    # --- host commands -------------------------------------------------------------------

    def command_contactors(self, closed: bool) -> bool:
        """Records the host's wish; False when a hard rule keeps them open right now."""
        self.allow_power = closed
        self.pilot_trip = False  # the host has seen it and decides anew
        if self.selftest_running:  # the host takes over: the self test ends, opened
            self.selftest_running = False
            self.selftest_aborted = True
        if closed and not self.may_close():
            self.refused_closes += 1
            return False
        return True

    def command_selftest(self, now_ms: int) -> bool:
        """Starts the contactor self test; False (nothing moves) if it is not safe now or
        the contactors are not open."""
        if not self.selftest_safe() or self.coil_on or self.mirror_closed:
            return False
        self.selftest_running = True
        self.selftest_closed = self.selftest_opened = self.selftest_aborted = False
        self._selftest_until = now_ms + SELFTEST_CLOSE_MS
        return True

    def command_imd_test(self, now_ms: int) -> bool:
        """Starts the insulation monitor's self test; False (nothing moves) unless a
        vehicle is plugged, the contactors are open, the output is below SAFE_VOLTAGE_V,
        the IMD does not alarm already and the link is alive."""
        if (self.imd_testing or self.coil_on or self.mirror_closed or not self.plugged
                or self.pilot.state == "A" or self.output_v >= SAFE_VOLTAGE_V
                or self.imd_alarm or not self.link_ok):
            return False
        self.imd_testing = self.imd_test_out = True
        self.imd_passed = self.imd_failed = self._imd_alarm_seen = False
        self._imd_until = now_ms + IMD_TEST_ALARM_MS
        return True

    def command_lock(self, locked: bool, now_ms: int) -> None:
        self.want_locked = locked
        self.lock_fault = False
        self._lock_started_ms = now_ms

    def command_ovp_band(self, limit_v: float) -> bool:
        """The host's band for this session; False (kept) if it is not one of the bands."""
        for _, limit in OVP_BANDS:
            if limit == limit_v:
                self.ovp_limit_v = limit_v
                return True
        return False

    def command_pilot(self, duty_permille: int, state_f: bool) -> None:
        self.duty_permille = max(0, min(PWM_FULL, duty_permille))
        self.pilot_f = state_f

    # --- the rules ----------------------------------------------------------------------

    def may_close(self) -> bool:
        return (self.allow_power and self.lock_confirmed() and not self.estop
                and not self.isolation_fault and self.link_ok and not self.ovp_trip
                and self.pilot.state in ENERGY_STATES and self.imd_passed)

    def selftest_safe(self) -> bool:
        """Safe to close an empty connector, by the board's own readings."""
        no_vehicle = self.pilot.state == "A" or (
            self.pilot.state == "F" and self.pwm_output() == PWM_STATE_F)
        return (no_vehicle and not self.plugged and self.output_v < SAFE_VOLTAGE_V
                and not self.allow_power and not self.estop and not self.isolation_fault
                and not self.ovp_trip and not self.welded and not self.lock_fault
                and self.link_ok)

    def lock_confirmed(self) -> bool:
        return self.want_locked and self.lock_switch and not self.lock_fault

    def pwm_output(self) -> int:
        """Duty per mille to drive: state F when asked or when the host went silent."""
        if self.pilot_f or not self.link_ok or self.holding_f:
            return PWM_STATE_F
        return self.duty_permille

    def trip(self, now_ms: int) -> None:
        """Open at once (e-stop interrupt, heartbeat loss); called before update()."""
        if self.coil_on:
            self._coil_off_ms = now_ms
        self.coil_on = False
        self.allow_power = False
        if self.selftest_running:
            self.selftest_running = False
            self.selftest_aborted = True

    def update(self, now_ms: int) -> None:
        if self.estop or not self.link_ok:
            self.allow_power = False
        self._update_pilot_hold(now_ms)
        self._update_ovp(now_ms)
        self._update_pwm_loss(now_ms)
        if self.pilot.state == "A" or not self.plugged:
            # The vehicle left (pilot A, or the plug out while we drive state F): the
            # next one starts from the default band, no trips.
            self.ovp_trip = self.pilot_trip = False
            self.ovp_limit_v = OVP_DEFAULT_V
        if self._vehicle_gone(now_ms):
            # and its own IMD self test; one running ends (its result would be no one's)
            self.imd_testing = self.imd_test_out = False
            self.imd_passed = self.imd_failed = False
        self._update_imd(now_ms)
        testing = self.selftest_running
        self._update_selftest(now_ms)
        close = self.may_close() or self.selftest_running
        if (self.coil_on and not close and not testing
                and self.pilot.state not in ENERGY_STATES):
            self.pilot_trip = True
        if self.coil_on and not close:
            # The board opened on its own: closing again needs a new command from the host.
            self._coil_off_ms = now_ms
            self.allow_power = False
        self.coil_on = close
        if self.selftest_running and self.mirror_closed:
            self.selftest_closed = True
        elif not self.selftest_running and not self.coil_on and not self.mirror_closed \
                and self.selftest_closed:
            self.selftest_opened = True  # followed closed, then open: the test passed
        # Welded: commanded open, mirror still closed after the contactor's drop-out time.
        if self.coil_on or not self.mirror_closed:
            self.welded = False
        elif now_ms - self._coil_off_ms >= WELD_DETECT_MS:
            self.welded = True
        self._update_lock(now_ms)

    def _vehicle_gone(self, now_ms: int) -> bool:
        """Pilot A, or the plug out (PP) for as long as the pilot filter asks of a new CP
        state: a PP contact's bounce does not end a session (the PE row: PP and CP both
        return through PE, so both read "gone" PILOT_DEBOUNCE_MS after PE breaks)."""
        if self.plugged:
            self._pp_out_since = -1
        elif self._pp_out_since < 0:
            self._pp_out_since = now_ms
        return self.pilot.state == "A" or (
            self._pp_out_since >= 0 and now_ms - self._pp_out_since >= PILOT_DEBOUNCE_MS)

    def _update_pilot_hold(self, now_ms: int) -> None:
        if self.pilot_f or not self.link_ok:
            if not self._driving_f:
                self._f_since = now_ms
            self._driving_f, self.holding_f, self.pilot_held_f = True, False, False
            return
        if self._driving_f and now_ms - self._f_since < EF_HOLD_MS:
            self.holding_f = self.pilot_held_f = True
            return
        if self._driving_f:
            self._f_released = now_ms
        self._driving_f = self.holding_f = False
        # Until the filter has read the vehicle again, the F it reads is still ours: a new
        # reading pending, or not yet two filter times since the release.
        self.pilot_held_f = self.pilot.state == "F" and (
            self.pilot.candidate != "F" or now_ms - self._f_released <= 2 * PILOT_DEBOUNCE_MS)

    def _update_imd(self, now_ms: int) -> None:
        if self.imd_testing:
            if not self._imd_alarm_seen:
                if self.imd_alarm:  # the monitor answered its test: release the input
                    self._imd_alarm_seen, self.imd_test_out = True, False
                    self._imd_until = now_ms + IMD_TEST_CLEAR_MS
                elif now_ms >= self._imd_until:
                    self._imd_end(False)  # no alarm: the monitor or its wiring is dead
            elif not self.imd_alarm:
                self._imd_end(True)
            elif now_ms >= self._imd_until:
                # It alarmed for its test (it works) and keeps alarming: that is an
                # isolation fault (flag bit 3) or a stuck relay; no pass, no closing.
                self.imd_testing = self.imd_test_out = False
        self.isolation_fault = self.imd_alarm and not self.imd_testing

    def _imd_end(self, passed: bool) -> None:
        self.imd_testing = self.imd_test_out = False
        self.imd_passed, self.imd_failed = passed, not passed

    def _update_selftest(self, now_ms: int) -> None:
        if not self.selftest_running:
            return
        if not self.selftest_safe():
            self.selftest_running = False  # a vehicle, voltage, e-stop, link: open now
            self.selftest_aborted = True
        elif now_ms >= self._selftest_until:
            self.selftest_running = False  # the bounded time is over: open by itself

    def _update_ovp(self, now_ms: int) -> None:
        if self.output_v <= self.ovp_limit_v:
            self._over_since = -1
            return
        if self._over_since < 0:
            self._over_since = now_ms
        if now_ms - self._over_since >= OVP_FILTER_MS and not self.ovp_trip:
            self.ovp_trip = True
            self.allow_power = False

    def _update_pwm_loss(self, now_ms: int) -> None:
        running = 0 < self.pwm_output() < PWM_FULL
        if not self.coil_on or running:
            self._pwm_off_since = -1
            return
        if self._pwm_off_since < 0:
            self._pwm_off_since = now_ms
        if now_ms - self._pwm_off_since >= PWM_LOSS_OPEN_MS:
            self.allow_power = False  # opens below; closing again takes a new command

    def _update_lock(self, now_ms: int) -> None:
        target = self.want_locked or self.mirror_closed  # never unlock a live connector
        if target != self._lock_target:
            self._lock_target = target
            self._lock_started_ms = now_ms
            self.lock_fault = False
        if self.lock_switch == target:
            self.lock_drive = 0
        elif self.lock_fault:
            self.lock_drive = 0
        elif now_ms - self._lock_started_ms >= LOCK_TRAVEL_MAX_MS:
            self.lock_fault = True  # jammed or switch broken: the host shows the error
            self.lock_drive = 0
        else:
            self.lock_drive = 1 if target else -1

    def deadline_ms(self) -> int:
        """The next time update() has something to decide without new input; -1 if none."""
        times = [self.pilot.deadline_ms()]
        if not self.coil_on and self.mirror_closed and not self.welded:
            times.append(self._coil_off_ms + WELD_DETECT_MS)
        if self.lock_drive != 0:
            times.append(self._lock_started_ms + LOCK_TRAVEL_MAX_MS)
        if self._over_since >= 0 and not self.ovp_trip:
            times.append(self._over_since + OVP_FILTER_MS)
        if self._pwm_off_since >= 0:
            times.append(self._pwm_off_since + PWM_LOSS_OPEN_MS)
        if self.selftest_running:
            times.append(self._selftest_until)
        if self.imd_testing:
            times.append(self._imd_until)
        if self._pp_out_since >= 0 and (self.imd_passed or self.imd_testing):
            times.append(self._pp_out_since + PILOT_DEBOUNCE_MS)
        if self.holding_f:
            times.append(self._f_since + EF_HOLD_MS)
        elif self.pilot_held_f:
            times.append(self._f_released + 2 * PILOT_DEBOUNCE_MS + 1)
        times = [t for t in times if t >= 0]
        return min(times) if times else -1

    def flags(self) -> int:
        f = 0
        for on, bit in ((self.mirror_closed, F_CONTACTORS), (self.lock_switch, F_LOCKED),
                        (self.estop, F_ESTOP), (self.isolation_fault, F_ISOLATION),
                        (self.plugged, F_PLUGGED), (self.welded, F_WELDED),
                        (self.lock_fault, F_LOCK_FAULT), (not self.link_ok, F_LINK_TRIP)):
            if on:
                f |= bit
        return f

    def states(self) -> int:
        s = 0
        for on, bit in ((self.pilot_held_f, S_PILOT_HELD_F), (self.imd_testing, S_IMD_TESTING),
                        (self.imd_passed, S_IMD_PASSED), (self.imd_failed, S_IMD_FAILED)):
            if on:
                s |= bit
        return s

    def trips(self) -> int:
        t = 0
        for on, bit in ((self.ovp_trip, T_OVER_VOLTAGE), (self.pilot_trip, T_PILOT),
                        (self.selftest_running, T_SELFTEST_RUNNING),
                        (self.selftest_closed, T_SELFTEST_CLOSED),
                        (self.selftest_opened, T_SELFTEST_OPENED),
                        (self.selftest_aborted, T_SELFTEST_ABORTED)):
            if on:
                t |= bit
        return t
