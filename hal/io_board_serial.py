"""IoBoard driver for the safety MCU over a serial line (pyserial, asyncio).

The wire format is hal/mcu/frame.py (shared with the MCU firmware); the protocol is
described byte by byte in docs/io-board-protocol.md. This driver:

- reads without blocking: ``loop.add_reader`` on the port's file descriptor feeds the
  frame decoder, which drops and counts corrupt frames and resynchronises on the next
  delimiter;
- does the version handshake in ``start`` and waits for the first status report, so
  ``inputs`` never returns a reading the board did not make;
- acknowledges nothing itself but expects an ACK for every command: unacknowledged
  commands are sent again (same sequence number) every RETRY_S, superseded ones dropped;
- sends a heartbeat from ``poll`` when nothing else went out for half of HEARTBEAT_S; the
  board answers it with a status report (so telemetry comes at the heartbeat's rate);
- reports ``io_board_link_lost`` once through ``take_faults`` when the board has been
  silent for the heartbeat timeout (the board has already opened its contactors by then,
  by its own heartbeat rule), and shakes hands again when it answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import serial

from hal.clock import Clock
from hal.io_board import ConnectorInputs
from hal.mcu import frame

log = logging.getLogger("chargebay.io_board")

HEARTBEAT_S = 0.1  # well inside the board's 500 ms timeout, one control tick
RETRY_S = 0.05
MAX_RETRIES = 5
HANDSHAKE_TIMEOUT_S = 2.0
# What a connector's temperature sensor can read (approx.: NTC/PT1000 in a cable or
# inlet); outside it the sensor or the board is broken.
TEMPERATURE_MIN_C, TEMPERATURE_MAX_C = -50.0, 250.0


class IoBoardError(RuntimeError):
    """The board answered but cannot be used (protocol version mismatch)."""


class SerialLike(Protocol):
    """What the driver needs from a pyserial ``Serial`` (tests wrap one)."""

    def fileno(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    @property
    def in_waiting(self) -> int: ...

    def close(self) -> None: ...


@dataclass
class _Pending:
    key: tuple[int, int]  # (message type, connector): a newer command supersedes
    frame: bytes
    sent_wall: float
    tries: int = 1
    timer: asyncio.TimerHandle | None = None


@dataclass
class LinkStats:
    frames_in: int = 0
    frames_dropped: int = 0  # corrupt, oversize or malformed
    implausible: int = 0  # well-formed readings outside physics (temperature)
    retries: int = 0
    gave_up: int = 0
    refused: int = 0  # commands a hard rule on the board kept pending
    link_losses: int = 0


class SerialIoBoard:
    def __init__(self, connectors: tuple[int, ...], port: str | SerialLike, clock: Clock,
                 baudrate: int = 115200, heartbeat_timeout_ms: int = 500) -> None:
        self.connectors = connectors
        self.clock = clock
        self.heartbeat_timeout_ms = heartbeat_timeout_ms
        self._port_arg = port
        self._baudrate = baudrate
        self.port: SerialLike | None = None
        self.decoder = frame.Decoder()
        self.stats = LinkStats()
        self.firmware_version: tuple[int, int, int] | None = None
        self.ack_rtt_s: deque[float] = deque(maxlen=1000)  # wall time, command to ACK
        self._status: dict[int, ConnectorInputs] = {}
        self._last_status_body = b""
        self._seq = 0
        self._pending: dict[int, _Pending] = {}
        self._by_key: dict[tuple[int, int], int] = {}
        self._faults: list[str] = []
        self._hello_seq: int | None = None
        self._hello_done = asyncio.Event()
        self._status_seen = asyncio.Event()
        self._last_rx = 0.0
        self._last_tx = -1.0
        self._lost = False
        self.version_error: str | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self, now: float) -> None:
        if isinstance(self._port_arg, str):
            self.port = serial.Serial(self._port_arg, self._baudrate, timeout=0,
                                      write_timeout=0)
        else:
            self.port = self._port_arg
        asyncio.get_running_loop().add_reader(self.port.fileno(), self._on_readable)
        self._last_rx = now
        deadline = self.clock.now() + HANDSHAKE_TIMEOUT_S
        while not (self._hello_done.is_set() and self._status_seen.is_set()):
            if self.clock.now() >= deadline:
                self._link_lost()
                log.error("IO board did not answer the handshake")
                return
            self._hello()
            try:
                await self.clock.wait_for(self._status_seen.wait(), 0.2)
            except TimeoutError:
                pass
        if self.version_error is not None:
            raise IoBoardError(self.version_error)
        # The board powers up in state F; the controller's idle state is steady +12 V
        # (state A/B, 61851-1 Annex A) until a session machine says otherwise.
        for c in self.connectors:
            self.set_pilot(c, 100.0, False)
        # Return once the board reports it (after its 20 ms pilot filter): a truck that
        # plugs in meanwhile must not read as a pilot stuck in F (a diode fault).
        settle_until = self.clock.now() + 1.0
        while any(self.inputs(c).pilot == "F" for c in self.connectors) \
                and self.clock.now() < settle_until:
            await self.clock.sleep(0.01)
        log.info("IO board firmware %s, protocol %d", self.firmware_version,
                 frame.PROTOCOL_VERSION)

    async def close(self) -> None:
        if self.port is None:
            return
        for c in self.connectors:  # the board would do it anyway when we go quiet
            self.set_contactors(c, False)
            self.set_pilot(c, 100.0, True)
        for p in self._pending.values():
            if p.timer is not None:
                p.timer.cancel()
        self._pending.clear()
        try:
            asyncio.get_running_loop().remove_reader(self.port.fileno())
        except (OSError, ValueError):
            pass
        if isinstance(self._port_arg, str):
            self.port.close()
        self.port = None

    # --- commands ------------------------------------------------------------------------

    def set_pilot(self, connector: int, duty_percent: float, not_available: bool) -> None:
        permille = max(0, min(1000, round(duty_percent * 10)))
        body = bytes([connector, 1 if not_available else 0, permille >> 8, permille & 0xFF])
        self._command(frame.SET_PILOT, connector, body)

    def set_contactors(self, connector: int, closed: bool) -> None:
        self._command(frame.SET_CONTACTORS, connector, bytes([connector, int(closed)]))

    def set_lock(self, connector: int, locked: bool) -> None:
        self._command(frame.SET_LOCK, connector, bytes([connector, int(locked)]))

    def selftest_contactors(self, connector: int) -> None:
        self._command(frame.SELFTEST_CONTACTORS, connector, bytes([connector]))

    def test_insulation_monitor(self, connector: int) -> None:
        self._command(frame.TEST_IMD, connector, bytes([connector]))

    def set_ovp_band(self, connector: int, limit_v: float) -> None:
        volts = max(0, min(0xFFFF, round(limit_v)))
        self._command(frame.SET_OVP_BAND, connector, bytes([connector, volts >> 8,
                                                            volts & 0xFF]))

    def poll(self, now: float) -> None:
        if self.port is None:
            return
        # Half the period: a poll every HEARTBEAT_S must not skip one on rounding.
        if now - self._last_tx >= HEARTBEAT_S / 2 and self._hello_done.is_set():
            # Answered by a status report, not an ACK: nothing to retry.
            self._write(frame.encode(self._next_seq(), frame.HEARTBEAT))
        silent = now - self._last_rx
        if not self._lost and silent * 1000.0 >= self.heartbeat_timeout_ms:
            self._link_lost()
        if self._lost:
            self._hello()  # keep asking; a rebooted board needs the handshake again

    @property
    def link_up(self) -> bool:
        return self._hello_done.is_set() and not self._lost and self.version_error is None

    def inputs(self, connector: int) -> ConnectorInputs:
        return self._status.get(connector) or ConnectorInputs(
            "F", False, False, False, False, 0.0)  # only before start() succeeded

    def take_faults(self) -> list[str]:
        faults, self._faults = self._faults, []
        return faults

    # --- sending -------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        if self._seq in self._pending:  # 255 commands unacknowledged: drop the oldest
            self._forget(self._seq)
        return self._seq

    def _write(self, data: bytes) -> None:
        if self.port is None:
            return
        try:
            self.port.write(data)
        except (OSError, serial.SerialException) as exc:
            log.warning("IO board write failed: %s", exc)
        self._last_tx = self.clock.now()

    def _hello(self) -> None:
        seq = self._next_seq()
        self._hello_seq = seq
        t = self.heartbeat_timeout_ms
        self._write(frame.encode(seq, frame.HELLO, bytes([frame.PROTOCOL_VERSION,
                                                          t >> 8, t & 0xFF])))

    def _command(self, mtype: int, connector: int, body: bytes) -> None:
        key = (mtype, connector)
        old = self._by_key.pop(key, None)
        if old is not None:
            self._forget(old)
        seq = self._next_seq()
        data = frame.encode(seq, mtype, body)
        pending = _Pending(key, data, time.perf_counter())
        self._pending[seq] = pending
        self._by_key[key] = seq
        self._arm(seq, pending)
        self._write(data)

    def _arm(self, seq: int, pending: _Pending) -> None:
        pending.timer = self.clock.call_later(RETRY_S, self._retry, seq)

    def _retry(self, seq: int) -> None:
        pending = self._pending.get(seq)
        if pending is None:
            return
        if pending.tries > MAX_RETRIES:
            self.stats.gave_up += 1
            self._forget(seq)
            return  # the link-loss rule takes over if the board stays silent
        pending.tries += 1
        self.stats.retries += 1
        self._arm(seq, pending)
        self._write(pending.frame)

    def _forget(self, seq: int) -> None:
        pending = self._pending.pop(seq, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        if self._by_key.get(pending.key) == seq:
            del self._by_key[pending.key]

    # --- receiving -----------------------------------------------------------------------

    def _on_readable(self) -> None:
        if self.port is None:
            return
        try:
            data = self.port.read(max(1, self.port.in_waiting))
        except (OSError, serial.SerialException) as exc:
            # The device went away (USB pulled, board reset): stop reading so a dead fd
            # does not spin the loop; the silence then reports io_board_link_lost.
            # Partial: the driver does not reopen the port; the service restarts.
            log.error("IO board read failed, link down: %s", exc)
            asyncio.get_running_loop().remove_reader(self.port.fileno())
            return
        if not data:
            return
        before = self.decoder.dropped
        for seq, mtype, body in self.decoder.feed(data):
            self._receive(seq, mtype, body)
        self.stats.frames_dropped += self.decoder.dropped - before

    def _receive(self, seq: int, mtype: int, body: bytes) -> None:
        self.stats.frames_in += 1
        self._last_rx = self.clock.now()
        if self._lost and self._hello_done.is_set():
            self._lost = False
            log.warning("IO board link back")
        if mtype == frame.ACK and len(body) == 2:
            pending = self._pending.get(body[0])
            if pending is not None:
                self.ack_rtt_s.append(time.perf_counter() - pending.sent_wall)
                if body[1] == frame.REFUSED:
                    self.stats.refused += 1
                self._forget(body[0])
            if body[1] == frame.BAD_VERSION:
                self._refuse("IO board refused our protocol version "
                             f"{frame.PROTOCOL_VERSION}")
            elif body[1] == frame.BAD_ARGS and body[0] == self._hello_seq:
                self._refuse("IO board refused heartbeat timeout "
                             f"{self.heartbeat_timeout_ms} ms")
        elif mtype == frame.HELLO_ACK and len(body) == 6 and body[0] == self._hello_seq:
            if body[1] != frame.PROTOCOL_VERSION:
                self._refuse(f"IO board protocol {body[1]}, driver {frame.PROTOCOL_VERSION}")
                return
            self.firmware_version = (body[2], body[3], body[4])
            self._hello_done.set()
            self._lost = False
        elif mtype in (frame.TELEMETRY, frame.EVENT):
            if body == self._last_status_body and self._status_seen.is_set():
                return  # most reports repeat the last one
            self._last_status_body = body
            records = frame.unpack_status(body)
            if not records:
                self.stats.frames_dropped += 1  # malformed status: nothing in it is believed
            for connector, pilot, flags, trips, temperature, volts, states in records:
                if connector not in self.connectors:
                    self.stats.frames_dropped += 1  # a connector we do not have
                    continue
                if not TEMPERATURE_MIN_C <= temperature <= TEMPERATURE_MAX_C:
                    # A sensor reading no connector can have (broken or shorted sensor,
                    # a board answering nonsense): fail safe, read as too hot, so the
                    # session stops on over_temperature until a sane reading returns.
                    self.stats.implausible += 1
                    temperature = TEMPERATURE_MAX_C
                self._status[connector] = ConnectorInputs(
                    pilot, bool(flags & frame.F_CONTACTORS), bool(flags & frame.F_LOCKED),
                    bool(flags & frame.F_ESTOP), bool(flags & frame.F_ISOLATION),
                    temperature, plugged=bool(flags & frame.F_PLUGGED),
                    welded=bool(flags & frame.F_WELDED),
                    lock_fault=bool(flags & frame.F_LOCK_FAULT),
                    over_voltage_trip=bool(trips & frame.T_OVER_VOLTAGE),
                    pilot_trip=bool(trips & frame.T_PILOT), output_voltage_v=volts,
                    selftest_running=bool(trips & frame.T_SELFTEST_RUNNING),
                    selftest_closed=bool(trips & frame.T_SELFTEST_CLOSED),
                    selftest_opened=bool(trips & frame.T_SELFTEST_OPENED),
                    selftest_aborted=bool(trips & frame.T_SELFTEST_ABORTED),
                    pilot_held_f=bool(states & frame.S_PILOT_HELD_F),
                    imd_testing=bool(states & frame.S_IMD_TESTING),
                    imd_passed=bool(states & frame.S_IMD_PASSED),
                    imd_failed=bool(states & frame.S_IMD_FAILED))
            if self._hello_done.is_set():
                self._status_seen.set()
        else:
            self.stats.frames_dropped += 1  # well-framed but not a message we know

    def _refuse(self, reason: str) -> None:
        # Raised from start(); a reader callback has no caller to raise to.
        self.version_error = reason
        self._hello_done.set()
        self._status_seen.set()

    def _link_lost(self) -> None:
        self._lost = True
        self.stats.link_losses += 1
        self._faults.append("io_board_link_lost")
        log.error("IO board link lost")
