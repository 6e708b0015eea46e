"""The IO board firmware: pins, the host link and the main-loop pass (MicroPython).

Everything touching hardware comes from the ``machine`` and ``time`` modules, so the
simulator runs this file unchanged under CPython with a simulated ``machine`` (see
sim/mcu_machine.py). The rules themselves are in rules.py; the wire format in frame.py.

Timing: ``step()`` is one pass of the main loop (main.py calls it every millisecond on the
MCU; the simulator calls it when an input changed or ``next_deadline_ms()`` is due). The
e-stop does not wait for a pass: its pin interrupt drops every contactor coil at once.
"""

import time

import machine

try:  # flat files on the MCU; a package when the host or the simulator imports them
    import frame
    import rules
except ImportError:
    from hal.mcu import frame, rules  # type: ignore[no-redef]

FIRMWARE_VERSION = (0, 2, 0)
TELEMETRY_MS = 100  # status at 10 Hz even when nothing changes
DEFAULT_HEARTBEAT_TIMEOUT_MS = 500
# The host's heartbeat timeout a HELLO may ask for; outside it the HELLO is refused (ACK
# BAD_ARGS, link stays down, contactors stay open). No standard has a figure for this
# link: while the host is silent nobody supervises what only the host can, so the
# longest silence is the board's own limit, 1 s, well inside the tightest host-held
# deadline it stands in for (emergency shutdown within 5 s of PE-continuity loss,
# IEC 61851-23; power off within 6 s of PWM loss in state C, IEC 61851-1). The lower
# bound is two of the host's 100 ms heartbeats, so one late frame does not trip.
HEARTBEAT_MIN_MS = 200
HEARTBEAT_MAX_MS = 1000
HV_FULL_SCALE_V = 1500.0  # output-voltage divider: 0..1500 V onto the ADC's range

# Pin map of the reference board. Partial: the RP2040 has four ADC inputs; the reference
# board reads the six analogue channels below through an external multiplexer, which
# this map (and the simulator) treat as plain ADC channel numbers.
ESTOP_PIN = 22  # NC mushroom-button loop to GND: high = pressed or wire broken
# "imd" is the insulation monitor's alarm relay, "imd_test" its test input (the IMD's own
# test button, wired to the board).
PINS = {
    1: {"cp_pwm": 2, "pp": 3, "coil": 4, "mirror": 5, "lock_a": 6, "lock_b": 7,
        "lock_sw": 8, "imd": 9, "imd_test": 18, "cp_high": 0, "cp_low": 1, "temp": 2,
        "hv": 6},
    2: {"cp_pwm": 10, "pp": 11, "coil": 12, "mirror": 13, "lock_a": 14, "lock_b": 15,
        "lock_sw": 16, "imd": 17, "imd_test": 19, "cp_high": 3, "cp_low": 4, "temp": 5,
        "hv": 7},
}


def cp_volts(raw_u16: int) -> float:
    """CP front end: -15 V..+15 V scaled onto the ADC's full range."""
    return raw_u16 * 30.0 / 65535 - 15.0


def output_volts(raw_u16: int) -> float:
    """HV sense: the output divider's 0..HV_FULL_SCALE_V on the ADC's full range."""
    return raw_u16 * HV_FULL_SCALE_V / 65535


def temperature_c(raw_u16: int) -> float:
    """Sensor with 10 mV/degC and 500 mV at 0 degC on a 3.3 V ADC."""
    return (raw_u16 * 3.3 / 65535 - 0.5) * 100.0


class Board:
    def __init__(self, uart: machine.UART, connectors: tuple[int, ...] = (1, 2)) -> None:
        Pin = machine.Pin
        self.uart = uart
        self.decoder = frame.Decoder()
        self.connectors = {}
        self.io = {}
        for n in connectors:
            p = PINS[n]
            pwm = machine.PWM(Pin(p["cp_pwm"], Pin.OUT))
            pwm.freq(1000)  # 1 kHz pilot, IEC 61851-1 Annex A
            pwm.duty_u16(0)  # state F until the host says otherwise
            self.io[n] = {
                "pwm": pwm,
                "coil": Pin(p["coil"], Pin.OUT, value=0),
                "lock_a": Pin(p["lock_a"], Pin.OUT, value=0),
                "lock_b": Pin(p["lock_b"], Pin.OUT, value=0),
                "imd_test": Pin(p["imd_test"], Pin.OUT, value=0),
                "pp": Pin(p["pp"], Pin.IN, Pin.PULL_UP),
                "mirror": Pin(p["mirror"], Pin.IN, Pin.PULL_UP),
                "lock_sw": Pin(p["lock_sw"], Pin.IN, Pin.PULL_UP),
                "imd": Pin(p["imd"], Pin.IN, Pin.PULL_UP),
                "cp_high": machine.ADC(p["cp_high"]),
                "cp_low": machine.ADC(p["cp_low"]),
                "temp": machine.ADC(p["temp"]),
                "hv": machine.ADC(p["hv"]),
            }
            self.connectors[n] = rules.Connector(n)
        self.coils = [self.io[n]["coil"] for n in connectors]  # for the interrupt handler
        self.driven = {n: rules.PWM_STATE_F for n in connectors}  # duty on the pilot now
        self.estop_pin = Pin(ESTOP_PIN, Pin.IN, Pin.PULL_UP)
        self.estop_pin.irq(handler=self._on_estop, trigger=Pin.IRQ_RISING)
        self.heartbeat_timeout_ms = DEFAULT_HEARTBEAT_TIMEOUT_MS
        self.hello_done = False
        self.seq = 0
        self.link_trips = 0
        self.link_ok = False
        self._ticks = time.ticks_ms()
        self.now_ms = 0
        self.last_rx_ms = 0
        self.last_status_ms = -TELEMETRY_MS
        self.last_sent: dict[int, tuple[str, int, int, int]] = {}  # what was last reported
        self.out = bytearray()
        self.answered = False  # a heartbeat arrived in this pass: report the status
        self.last_command: tuple[int, int, bytes] = (-1, -1, b"")
        self.last_result = frame.OK

    # --- the e-stop interrupt --------------------------------------------------------------

    def _on_estop(self, pin: machine.Pin) -> None:
        # Runs before any main-loop pass: coils drop now, the pass records the reason.
        if pin.value():
            for coil in self.coils:
                coil.value(0)
            for conn in self.connectors.values():
                conn.estop = True
                conn.trip(self.now_ms)

    # --- one main-loop pass ---------------------------------------------------------------

    def clock_ms(self) -> int:
        """Milliseconds since start, wrap-safe over the MCU's ticks counter."""
        ticks = time.ticks_ms()
        self.now_ms += time.ticks_diff(ticks, self._ticks)
        self._ticks = ticks
        return self.now_ms

    def step(self) -> None:
        now = self.clock_ms()
        data = self.uart.read()
        if data:
            for seq, mtype, body in self.decoder.feed(data):
                self._handle(seq, mtype, body, now)
        link_ok = self.hello_done and now - self.last_rx_ms < self.heartbeat_timeout_ms
        estop = self.estop_pin.value() == 1
        if self.link_ok and not link_ok:
            self.link_trips += 1
        self.link_ok = link_ok
        for n, conn in self.connectors.items():
            conn.link_ok = link_ok
            conn.estop = estop
            self._sample(n, conn, now)
            conn.update(now)
            self._drive(n, conn)
        self._report(now)
        if self.out:
            self.uart.write(bytes(self.out))
            self.out = bytearray()

    def _sample(self, n: int, conn: rules.Connector, now: int) -> None:
        io = self.io[n]
        conn.plugged = io["pp"].value() == 0  # PP pulled to PE by the plug's resistor
        conn.mirror_closed = io["mirror"].value() == 1  # NC mirror contact opens on close
        conn.lock_switch = io["lock_sw"].value() == 0
        conn.imd_alarm = io["imd"].value() == 1  # IMD alarm relay, fail-safe open
        conn.temperature_c = temperature_c(io["temp"].read_u16())
        conn.output_v = output_volts(io["hv"].read_u16())
        high = cp_volts(io["cp_high"].read_u16())
        low = cp_volts(io["cp_low"].read_u16())
        running = 0 < self.driven[n] < rules.PWM_FULL  # what the pilot carries right now
        conn.pilot.sample(rules.classify_pilot(high, low, running), now)

    def _drive(self, n: int, conn: rules.Connector) -> None:
        io = self.io[n]
        io["coil"].value(1 if conn.coil_on else 0)
        io["lock_a"].value(1 if conn.lock_drive > 0 else 0)
        io["lock_b"].value(1 if conn.lock_drive < 0 else 0)
        io["imd_test"].value(1 if conn.imd_test_out else 0)
        self.driven[n] = conn.pwm_output()
        io["pwm"].duty_u16(self.driven[n] * 65535 // rules.PWM_FULL)

    def next_deadline_ms(self) -> int:
        """When ``step()`` next has something to do if no input changes."""
        times = [self.last_status_ms + TELEMETRY_MS]
        if self.hello_done:
            times.append(self.last_rx_ms + self.heartbeat_timeout_ms)
        for conn in self.connectors.values():
            t = conn.deadline_ms()
            if t >= 0:
                times.append(t)
        return min(times)

    # --- the host link -------------------------------------------------------------------

    def _send(self, mtype: int, body: bytes) -> None:
        self.seq = (self.seq + 1) & 0xFF
        self.out.extend(frame.encode(self.seq, mtype, body))

    def _handle(self, seq: int, mtype: int, body: bytes, now: int) -> None:
        if mtype == frame.HELLO:
            if len(body) != 3 or body[0] != frame.PROTOCOL_VERSION:
                self._send(frame.ACK, bytes([seq, frame.BAD_VERSION]))
                return
            timeout_ms = (body[1] << 8) | body[2]
            if not HEARTBEAT_MIN_MS <= timeout_ms <= HEARTBEAT_MAX_MS:
                self._send(frame.ACK, bytes([seq, frame.BAD_ARGS]))
                return
            self.heartbeat_timeout_ms = timeout_ms
            self.hello_done = True
            self.last_rx_ms = now
            major, minor, patch = FIRMWARE_VERSION
            self._send(frame.HELLO_ACK, bytes([seq, frame.PROTOCOL_VERSION, major, minor,
                                               patch, len(self.connectors)]))
            self.last_sent = {}  # report the full status right after the handshake
            return
        if not self.hello_done:
            return  # nothing counts as a heartbeat before the handshake
        self.last_rx_ms = now
        if mtype == frame.HEARTBEAT:
            self.answered = True  # the answer is the status report of this pass
            return
        if (seq, mtype, body) == self.last_command:
            result = self.last_result  # the host's retry: our ACK was lost, do not redo
        else:
            result = self._command(mtype, body, now)
            self.last_command, self.last_result = (seq, mtype, body), result
        self._send(frame.ACK, bytes([seq, result]))

    def _command(self, mtype: int, body: bytes, now: int) -> int:
        if mtype not in (frame.SET_PILOT, frame.SET_CONTACTORS, frame.SET_LOCK,
                         frame.SET_OVP_BAND, frame.SELFTEST_CONTACTORS, frame.TEST_IMD):
            return frame.UNKNOWN_TYPE
        conn = self.connectors.get(body[0]) if body else None
        if conn is None:
            return frame.BAD_ARGS
        if mtype == frame.SET_PILOT and len(body) == 4:
            conn.command_pilot((body[2] << 8) | body[3], body[1] == 1)
        elif mtype == frame.SET_CONTACTORS and len(body) == 2:
            if not conn.command_contactors(body[1] == 1):
                return frame.REFUSED
        elif mtype == frame.SET_LOCK and len(body) == 2:
            conn.command_lock(body[1] == 1, now)
        elif mtype == frame.SELFTEST_CONTACTORS and len(body) == 1:
            if not conn.command_selftest(now):
                return frame.REFUSED
        elif mtype == frame.TEST_IMD and len(body) == 1:
            if not conn.command_imd_test(now):
                return frame.REFUSED
        elif mtype == frame.SET_OVP_BAND and len(body) == 3:
            if not conn.command_ovp_band(float((body[1] << 8) | body[2])):
                return frame.BAD_ARGS
        else:
            return frame.BAD_ARGS
        return frame.OK

    def _report(self, now: int) -> None:
        status = {n: (c.pilot.state, c.flags(), c.trips(), c.states())
                  for n, c in self.connectors.items()}
        changed = status != self.last_sent
        # Due every TELEMETRY_MS, and at once as the answer to a heartbeat.
        asked, self.answered = self.answered, False
        if not (changed or asked) and now - self.last_status_ms < TELEMETRY_MS:
            return
        if not self.hello_done:
            return
        body = bytearray()
        for n, conn in self.connectors.items():
            pilot, flags, trips, states = status[n]
            body.extend(frame.pack_status(n, pilot, flags, trips, conn.temperature_c,
                                          conn.output_v, states))
        self._send(frame.EVENT if changed else frame.TELEMETRY, bytes(body))
        self.last_sent = status
        self.last_status_ms = now
