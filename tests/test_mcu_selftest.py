"""The IO board's contactor self test (SELFTEST_CONTACTORS), in the real MCU firmware on
simulated pins, with the real serial driver, in virtual time (looptime).

The board closes an empty connector's contactors only when safe by its own readings,
opens them by itself after a bounded time, and opens at once when a condition fails.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from board_rig import Rig, virtual

# The longest an empty connector's contacts may stay closed in the self test: half a
# second, the board's default heartbeat timeout (a host that died mid-test cannot stop it).
HOLD_LIMIT_S = 0.5
# A failing condition opens at once: the next pass (1 ms) plus the contactor's drop-out
# (4 ms in the simulator), with margin for the pass that sees the input.
OPEN_AT_ONCE_S = 0.010


async def _until(rig: Rig, done: Callable[[], bool], within_s: float) -> float | None:
    """Simulated seconds until ``done()`` (None: not within ``within_s``)."""
    t0 = rig.clock.now()
    while rig.clock.now() - t0 <= within_s:
        if done():
            return rig.clock.now() - t0
        await rig.sleep(0.001)
    return None


def test_selftest_closes_an_empty_connector_and_opens_it_by_itself_twice() -> None:
    async def body() -> dict[str, object]:
        rig = Rig()
        await rig.start()
        bay = rig.board.bays[1]
        out: dict[str, object] = {"holds": []}
        for _ in range(2):  # as a hub runs it: again and again
            rig.host.selftest_contactors(1)
            assert await _until(rig, lambda: bay.contactors, 0.2) is not None
            hold = await _until(rig, lambda: not bay.contactors, 2.0)
            await rig.sleep(0.2)
            out["holds"].append(hold)  # type: ignore[attr-defined]
            out["inputs"] = rig.host.inputs(1)
        # The normal rule is unchanged: no vehicle, no closing on the host's command.
        rig.host.set_lock(1, True)
        await rig.sleep(0.3)
        rig.host.set_contactors(1, True)
        await rig.sleep(0.3)
        out["closed_without_vehicle"] = bay.contactors
        out["refused"] = rig.host.stats.refused
        await rig.close()
        return out

    out = virtual(body)
    for hold in out["holds"]:  # type: ignore[attr-defined]
        assert hold is not None and 0.3 <= hold <= HOLD_LIMIT_S, hold
    inputs = out["inputs"]
    assert inputs.selftest_closed and inputs.selftest_opened  # type: ignore[attr-defined]
    assert not inputs.selftest_running and not inputs.selftest_aborted  # type: ignore[attr-defined]
    assert not inputs.welded and not inputs.pilot_trip  # type: ignore[attr-defined]
    assert out["closed_without_vehicle"] is False
    assert out["refused"] == 1


def test_selftest_reports_a_welded_contactor() -> None:
    async def body() -> tuple[bool, bool, bool]:
        rig = Rig()
        await rig.start()
        rig.host.selftest_contactors(1)
        await _until(rig, lambda: rig.board.bays[1].contactors, 0.2)
        rig.board.inject(1, "welded")
        await rig.sleep(1.0)
        inputs = rig.host.inputs(1)
        await rig.close()
        return inputs.welded, inputs.selftest_closed, inputs.selftest_opened

    welded, closed, opened = virtual(body)
    assert welded and closed and not opened


def _plugged(rig: Rig) -> None:
    rig.board.port(1).set_pilot("B")


def _voltage(rig: Rig) -> None:
    rig.board.set_output_voltage(1, 61.0)  # IEC 61851-23: 60 V is the safe limit


def _estop(rig: Rig) -> None:
    rig.board.inject(1, "estop")


def _isolation(rig: Rig) -> None:
    rig.board.inject(1, "isolation")


def _power_asked(rig: Rig) -> None:
    rig.host.set_contactors(1, True)  # refused (pilot A), but the wish is kept


REFUSING = {"plugged": _plugged, "voltage": _voltage, "estop": _estop,
            "isolation": _isolation, "power_asked": _power_asked}


@pytest.mark.parametrize("gate", sorted(REFUSING) + ["link_down"])
def test_selftest_refused_unless_safe_by_the_boards_own_readings(gate: str) -> None:
    async def body() -> tuple[float | None, int, bool]:
        rig = Rig()
        await rig.start()
        if gate == "link_down":
            rig.polling = False  # the host silent past the heartbeat timeout
            await rig.sleep(0.6)
        else:
            REFUSING[gate](rig)
            await rig.sleep(0.1)
        refused = rig.host.stats.refused
        rig.host.selftest_contactors(1)
        rig.polling = True
        closed = await _until(rig, lambda: rig.board.bays[1].contactors, 1.0)
        out = (closed, rig.host.stats.refused - refused,
               rig.board.board.connectors[1].selftest_closed)
        await rig.close()
        return out

    closed, refused, tested = virtual(body)
    assert closed is None
    assert refused == 1
    assert not tested


@pytest.mark.parametrize("gate", ["plugged", "voltage", "estop"])
def test_selftest_opens_at_once_when_a_condition_fails_meanwhile(gate: str) -> None:
    async def body() -> tuple[float | None, bool]:
        rig = Rig()
        await rig.start()
        bay = rig.board.bays[1]
        rig.host.selftest_contactors(1)
        await _until(rig, lambda: bay.contactors, 0.2)
        await rig.sleep(0.1)  # mid-test
        REFUSING[gate](rig)
        opened = await _until(rig, lambda: not bay.contactors, 0.3)
        await rig.sleep(0.2)
        aborted = rig.host.inputs(1).selftest_aborted
        await rig.close()
        return opened, aborted

    opened, aborted = virtual(body)
    assert opened is not None and opened <= OPEN_AT_ONCE_S, opened
    assert aborted


def test_selftest_opens_on_heartbeat_loss_before_its_own_time() -> None:
    async def body() -> tuple[float | None, bool]:
        rig = Rig(heartbeat_timeout_ms=200)
        await rig.start()
        bay = rig.board.bays[1]
        rig.host.selftest_contactors(1)
        rig.polling = False  # the host dies right after asking
        t0 = rig.host._last_tx
        await _until(rig, lambda: bay.contactors, 0.2)
        await _until(rig, lambda: not bay.contactors, 1.0)
        opened = rig.clock.now() - t0
        aborted = rig.board.board.connectors[1].selftest_aborted
        await rig.close()
        return opened, aborted

    opened, aborted = virtual(body)
    assert opened is not None and 0.2 <= opened <= 0.2 + OPEN_AT_ONCE_S, opened
    assert aborted
