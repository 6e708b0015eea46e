"""Owned tasks (firmware/tasks.py) and the OCPP station's use of them: a failing task is
logged with its name at once and never surfaces as "Task exception was never retrieved";
stop() leaves nothing pending, also after a Reset (which used to leave fire-and-forget
follow-ups behind)."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

import looptime
import pytest
from ocpp_rig import CONFIG, CP_ID, station_tasks

from firmware import config as cfg
from firmware.service import running
from firmware.tasks import TaskOwner
from hal.clock import Clock
from sim.world import SimWorld


async def _boom() -> None:
    await asyncio.sleep(0)
    raise ValueError("boom")


def test_failing_task_is_logged_by_name_and_retrieved(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> TaskOwner:
        owner = TaskOwner("test")
        owner.spawn(_boom(), "exploding-follow-up")
        await asyncio.sleep(0.01)
        assert len(owner) == 0  # finished tasks are dropped
        # The control: the same failure, fire-and-forget, is only noticed at collection.
        asyncio.ensure_future(_boom())
        await asyncio.sleep(0.01)
        return owner

    with caplog.at_level(logging.ERROR):
        owner = asyncio.run(main())
        gc.collect()
    ours = [r for r in caplog.records if r.name == "chargebay.tasks"]
    assert len(ours) == 1 and "exploding-follow-up" in ours[0].getMessage()
    assert ours[0].exc_info is not None and "boom" in str(ours[0].exc_info[1])
    assert owner.failures == 1
    never = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert len(never) == 1  # the control's, not ours
    assert "_boom" in never[0].getMessage()


def test_the_owner_hears_a_failure_not_a_cancellation() -> None:
    """``on_failure`` is how the control loop reacts to its own tasks (a dead vehicle
    task is the link lost, a dead tick starts again): called with the name once the
    failure is logged; a cancelled task or one that fails while stopping is not one."""
    async def main() -> list[str]:
        owner = TaskOwner("test")
        heard: list[str] = []
        owner.spawn(_boom(), "vehicle-1", heard.append)
        cancelled = owner.spawn(asyncio.sleep(3600), "control-tick", heard.append)
        await asyncio.sleep(0.01)
        cancelled.cancel()
        await asyncio.sleep(0.01)

        async def breaks_when_cancelled() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise ValueError("cleanup broke") from None

        owner.spawn(breaks_when_cancelled(), "vehicle-2", heard.append)
        await asyncio.sleep(0.01)
        await owner.stop()  # it fails while the owner stops: nobody to react any more
        assert owner.failures == 2
        return heard

    assert asyncio.run(main()) == ["vehicle-1"]


def test_stop_cancels_and_awaits_everything() -> None:
    async def main() -> None:
        owner = TaskOwner("test")
        cleaned: list[str] = []

        async def forever(name: str) -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                cleaned.append(name)

        for n in range(3):
            owner.spawn(forever(f"t{n}"), f"forever-{n}")
        await asyncio.sleep(0)
        await owner.stop()
        assert sorted(cleaned) == ["t0", "t1", "t2"]
        assert asyncio.all_tasks() == {asyncio.current_task()}
        with pytest.raises(RuntimeError):
            owner.spawn(forever("late"), "late")
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}  # never started

    asyncio.run(main())


def test_station_stop_leaves_no_task_after_reset_and_trigger(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    config = cfg.load(CONFIG)

    async def main() -> tuple[list[str], set[asyncio.Task[object]]]:
        clock = Clock(1.0, virtual=True)
        world = SimWorld(config, clock, state_dir=str(tmp_path))
        async with running(config, clock, world) as charger:
            station = charger.station
            csms = world.csms
            assert csms is not None
            while not station.online.is_set():
                await clock.sleep(0.2)
            await csms.send(CP_ID, "Reset", {"type": "Immediate", "evseId": 1})
            assert (await csms.send(CP_ID, "Reset", {"type": "Immediate"}))[
                "status"] == "Accepted"
            await csms.send(CP_ID, "TriggerMessage", {"requestedMessage": "StatusNotification"})
            await csms.send(CP_ID, "GetBaseReport", {"requestId": 1,
                                                     "reportBase": "FullInventory"})
            await station.stop()  # the follow-ups of these requests are under way
            left = station_tasks()
        await asyncio.sleep(0)
        return left, asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    with caplog.at_level(logging.ERROR):
        try:
            left, rest = loop.run_until_complete(main())
        finally:
            loop.close()
        gc.collect()
    assert left == []
    assert rest == set(), [t.get_name() for t in rest]
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not [r for r in caplog.records if r.name == "chargebay.tasks"]
