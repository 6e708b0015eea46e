"""The one time contract of the whole charger: seconds as a float, and ways to wait.

The core takes ``now`` as a value; the shell, the drivers and the simulator read and wait
on this clock and nothing else (no ``asyncio.sleep``, ``loop.call_later`` or
``wait_for`` with their own seconds), so one object decides what a second is.

On a cabinet it is the event loop's monotonic time (speed 1). The simulator runs the same
code faster: speed N divides every wait by N; "max" runs on a looptime event loop whose
virtual time jumps ahead whenever nothing is runnable (speed 1 on that loop). Code using
the clock never sees the speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

# How long (wall time) a hold may keep virtual time still: a reply on 127.0.0.1 takes
# microseconds; a peer that never answers must not freeze the simulation.
HOLD_LIMIT_S = 2.0


class Clock:
    def __init__(self, speed: float = 1.0, virtual: bool = False) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = speed
        self.virtual = virtual  # a looptime loop: time jumps whenever nothing is runnable
        self._origin: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _loop_time(self) -> float:
        if self._loop is None:  # bound to the loop it first runs on; readable afterwards
            self._loop = asyncio.get_running_loop()
        return self._loop.time()

    def now(self) -> float:
        t = self._loop_time()
        if self._origin is None:
            self._origin = t
        return (t - self._origin) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self.speed)

    async def sleep_until(self, at: float) -> None:
        await self.sleep(at - self.now())

    def call_later(self, seconds: float, callback: Callable[..., Any],
                   *args: Any) -> asyncio.TimerHandle:
        """Run ``callback(*args)`` after ``seconds`` of this clock's time."""
        return asyncio.get_running_loop().call_later(max(seconds, 0.0) / self.speed,
                                                     callback, *args)

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        """``asyncio.wait_for`` in this clock's seconds (raises TimeoutError)."""
        return await asyncio.wait_for(awaitable, max(seconds, 0.0) / self.speed)

    async def hold(self, awaitable: Awaitable[T]) -> T:
        """Await a reply from a real socket without letting virtual time jump past it.

        On a looptime loop, time jumps ahead whenever no callback is ready, even while a
        reply is on its way through the kernel; keeping one callback ready until the
        reply is in (or HOLD_LIMIT_S of wall time has passed) holds the virtual clock
        still. On an ordinary loop it simply awaits."""
        if not self.virtual:
            return await awaitable
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(awaitable)
        started = time.perf_counter()

        def spin() -> None:
            if not task.done() and time.perf_counter() - started < HOLD_LIMIT_S:
                loop.call_soon(spin)

        loop.call_soon(spin)
        return await task
