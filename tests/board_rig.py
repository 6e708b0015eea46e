"""A simulated IO board (the real MCU firmware on simulated pins) and the real serial
driver on the two ends of a pty, in virtual time (looptime)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import looptime

from hal.clock import Clock
from hal.io_board_serial import SerialIoBoard
from sim.mcu_board import SimMcuBoard

T = TypeVar("T")


def virtual(body: Callable[[], Awaitable[T]]) -> T:
    """Runs ``body`` on a looptime loop: simulated seconds cost no wall time."""
    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    try:
        return loop.run_until_complete(body())
    finally:
        loop.close()


class Rig:
    def __init__(self, connectors: tuple[int, ...] = (1,),
                 heartbeat_timeout_ms: int = 500) -> None:
        self.clock = Clock()
        self.opened_at: list[tuple[int, float]] = []
        self.board = SimMcuBoard(connectors, self.clock,
                                 on_contactors_open=lambda c, t: self.opened_at.append((c, t)))
        self.host = SerialIoBoard(connectors, self.board.host_port(), self.clock,
                                  heartbeat_timeout_ms=heartbeat_timeout_ms)
        self.polling = True
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.board.start()
        await self.host.start(self.clock.now())
        self._poller = asyncio.create_task(self._poll())

    async def _poll(self) -> None:  # the controller's 10 Hz tick
        while True:
            if self.polling:
                self.host.poll(self.clock.now())
            await self.clock.sleep(0.1)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        await self.host.close()
        await self.board.close()

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)

    def firmware(self, connector: int = 1) -> object:
        return self.board.board.connectors[connector]

    async def charging(self, connector: int = 1) -> None:
        """Plugged (state C), locked, contactors closed: as mid-session."""
        self.board.port(connector).set_pilot("C")
        self.host.set_pilot(connector, 5.0, False)
        self.host.set_lock(connector, True)
        await self.sleep(0.1)  # the board's pilot filter has seen the vehicle
        self.host.test_insulation_monitor(connector)  # the board closes only after it passed
        await self.sleep(1.0)
        assert self.host.inputs(connector).imd_passed
        self.host.set_contactors(connector, True)
        await self.sleep(0.2)
        assert self.board.bays[connector].contactors
        assert self.host.inputs(connector).contactors_closed
