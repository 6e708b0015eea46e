"""The controller's clock: seconds as a float, and a way to wait.

On a cabinet it is the event loop's monotonic time (speed 1). The simulator runs the same
code faster: speed N divides every wait by N; "max" runs on a looptime event loop whose
virtual time jumps ahead whenever nothing is runnable (speed 1 on that loop).
"""

from __future__ import annotations

import asyncio


class Clock:
    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = speed
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
