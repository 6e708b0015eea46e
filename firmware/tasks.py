"""Owned asyncio tasks: every task has an owner that keeps it, hears how it ended, and
cancels it when the owner stops.

A task started with ``asyncio.ensure_future`` and dropped can be garbage-collected
mid-flight, and its exception surfaces only as "Task exception was never retrieved" at
some later moment, without the task's purpose. ``TaskOwner.spawn`` keeps a reference
until the task is done, logs a failure with the task's name as soon as it happens
(which also retrieves the exception), and ``stop()`` cancels and awaits whatever is
still running.

    tasks = TaskOwner("ocpp")
    tasks.spawn(send_statuses(link), "ocpp-status")
    ...
    await tasks.stop()   # nothing of ours is pending afterwards
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from hal.clock import Clock

T = TypeVar("T")
OnFailure = Callable[[str], None]  # the failed task's name

log = logging.getLogger("chargebay.tasks")


class TaskOwner:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.failures = 0  # tasks that ended with an exception (not cancellation)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str,
              on_failure: OnFailure | None = None) -> asyncio.Task[T]:
        """Run ``coro`` as a task named ``name``, owned until it ends. ``on_failure(name)``
        runs after a failure is logged (the owner's own reaction: e.g. the control loop
        treats a dead vehicle task as the link lost); not after a cancellation."""
        if self._stopping:
            coro.close()  # never started: no "coroutine was never awaited" either
            raise RuntimeError(f"{self.owner}: stopped, cannot start {name}")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(t, on_failure))
        return task

    def _finished(self, task: asyncio.Task[Any], on_failure: OnFailure | None) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here: never "was never retrieved"
        if exc is not None:
            self.failures += 1
            log.error("%s: task %s failed: %r", self.owner, task.get_name(), exc,
                      exc_info=exc)
            if on_failure is not None and not self._stopping:
                try:
                    on_failure(task.get_name())
                except Exception:  # a done callback that raised would only be logged
                    log.exception("%s: reacting to the failure of %s failed", self.owner,
                                  task.get_name())

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def running(self) -> list[asyncio.Task[Any]]:
        return [t for t in self._tasks if not t.done()]

    def __len__(self) -> int:
        return len(self._tasks)

    async def stop(self) -> None:
        """Cancel every owned task and wait until each has ended. A task that spawns
        another while being cancelled is refused (spawn raises), so this terminates."""
        self._stopping = True
        me = asyncio.current_task()
        while tasks := [t for t in self._tasks if t is not me]:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in tasks:  # done callbacks run soon, not within gather
                self._tasks.discard(task)

    def restart(self) -> None:
        """Accept new tasks again after stop() (a station started a second time)."""
        self._stopping = False


class Watchdog:
    """Notices a task that stops beating: ``beat()`` from the watched loop, ``run()`` as
    its own task. When no beat came for ``timeout_s``, ``bark(silent_s)`` is called once
    per silence (again only after a beat and a new silence).

    It shares the event loop with what it watches, so it catches a task that died, hangs
    on an await or was never restarted; a loop blocked altogether is caught outside the
    process (the IO board's host-heartbeat rule opens the contactors)."""

    def __init__(self, clock: Clock, timeout_s: float,
                 bark: Callable[[float], None]) -> None:
        self.clock = clock
        self.timeout_s = timeout_s
        self._bark = bark
        self.last_beat = clock.now()
        self.barks = 0
        self._barked = False

    def beat(self) -> None:
        self.last_beat = self.clock.now()
        self._barked = False

    def check(self) -> bool:
        """One look; True when it barked now."""
        silent = self.clock.now() - self.last_beat
        if silent < self.timeout_s or self._barked:
            return False
        self._barked = True
        self.barks += 1
        try:
            self._bark(silent)
        except Exception:  # the watchdog outlives what it reports to
            log.exception("watchdog: the bark failed")
        return True

    async def run(self) -> None:
        while True:
            await self.clock.sleep(self.timeout_s / 2)
            self.check()
