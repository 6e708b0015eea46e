"""A simulated MicroPython ``machine`` and ``time`` for running the IO board firmware
under CPython.

Only what hal/mcu/board.py uses: Pin (in, out, irq), ADC.read_u16, PWM.freq/duty_u16,
UART.read/write over a file descriptor (one end of a pty), and ticks from the project
Clock so the firmware runs in simulated time. The world sets input levels and supplies
ADC readings; output changes are reported to it through ``on_output``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hal.clock import Clock


class SimMachine:
    """One board's hardware. Its ``Pin``, ``ADC``, ``PWM`` and ``UART`` attributes are
    classes bound to this board, so it stands in for the ``machine`` module."""

    def __init__(self, read_adc: Callable[[int], int],
                 on_output: Callable[[int, int], None]) -> None:
        self.levels: dict[int, int] = {}  # pin id -> level (inputs and outputs)
        self.pwm_duty: dict[int, int] = {}  # pin id -> duty_u16
        self.irqs: dict[int, tuple[int, Callable[[Any], None]]] = {}
        self.read_adc = read_adc
        self.on_output = on_output
        machine = self

        class Pin(_Pin):
            _machine = machine

        class ADC(_ADC):
            _machine = machine

        class PWM(_PWM):
            _machine = machine

        self.Pin = Pin
        self.ADC = ADC
        self.PWM = PWM
        self.UART = SimUART

    def set_input(self, pin_id: int, level: int) -> None:
        """The world changes an input pin; a matching edge fires its interrupt at once."""
        old = self.levels.get(pin_id, 0)
        self.levels[pin_id] = level
        irq = self.irqs.get(pin_id)
        if irq is None or old == level:
            return
        trigger, handler = irq
        edge = _Pin.IRQ_RISING if level else _Pin.IRQ_FALLING
        if trigger & edge:
            handler(self.Pin(pin_id))


class _Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8
    _machine: SimMachine

    def __init__(self, pin_id: int, mode: int = -1, pull: int = -1,
                 value: int | None = None) -> None:
        self.id = pin_id
        if pull == self.PULL_UP:
            self._machine.levels.setdefault(pin_id, 1)
        if value is not None:
            self.value(value)

    def value(self, level: int | None = None) -> int:
        m = self._machine
        if level is None:
            return m.levels.get(self.id, 0)
        level = 1 if level else 0
        if m.levels.get(self.id) != level:
            m.levels[self.id] = level
            m.on_output(self.id, level)
        return level

    def irq(self, handler: Callable[[Any], None], trigger: int) -> None:
        self._machine.irqs[self.id] = (trigger, handler)


class _ADC:
    _machine: SimMachine

    def __init__(self, channel: int) -> None:
        self.channel = channel

    def read_u16(self) -> int:
        return max(0, min(65535, self._machine.read_adc(self.channel)))


class _PWM:
    _machine: SimMachine

    def __init__(self, pin: _Pin) -> None:
        self.pin = pin.id

    def freq(self, hz: int) -> None:
        self.hz = hz

    def duty_u16(self, duty: int) -> None:
        m = self._machine
        if m.pwm_duty.get(self.pin) != duty:
            m.pwm_duty[self.pin] = duty
            m.on_output(self.pin, duty)


class SimUART:
    """The board's UART on one end of a pty. Like the hardware's receive FIFO, bytes are
    taken off the wire when they arrive (``receive``, called by the simulator when the
    pty is readable) and handed to the firmware on its next ``read``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.fifo = bytearray()
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.tx_dropped = 0  # host not reading: like a real UART, bytes are lost

    def receive(self) -> bool:
        """Moves what the pty holds into the FIFO; True if anything arrived."""
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            return False
        self.rx_bytes += len(data)
        self.fifo.extend(data)
        return bool(data)

    def any(self) -> int:
        return len(self.fifo)

    def read(self) -> bytes | None:
        if not self.fifo:
            return None
        data, self.fifo = bytes(self.fifo), bytearray()
        return data

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError:
                self.tx_dropped += len(view)
                break
            view = view[n:]
        self.tx_bytes += len(data)
        return len(data)


class SimTime:
    """MicroPython's ``time`` ticks, read from the project Clock (virtual time in
    ``--speed max``)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def ticks_ms(self) -> int:
        return int(self.clock.now() * 1000.0)

    @staticmethod
    def ticks_diff(a: int, b: int) -> int:
        return a - b

    @staticmethod
    def ticks_add(a: int, b: int) -> int:
        return a + b
