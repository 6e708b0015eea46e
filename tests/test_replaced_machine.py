"""A session machine that raises mid-session (a bug) is held safe and replaced
(firmware/loop.py, issue 16); the session it held must end like any other: the CSMS gets
its Ended event (stoppedReason Other, triggerReason AbnormalCondition), the bay screen
says the bay is out of order, the card terminal captures what was used, and the bay
charges the next truck with a fresh machine. The whole charger with the local CSMS, the
card terminal and the bay screen on simulated hardware, in virtual time."""

from __future__ import annotations

from typing import Any

from ocpp_rig import OcppRig, run_rig

from firmware.core.transitions import Phase
from sim.world import SimWorld

BAY = {"tariff": {}, "screen": {"port": 0, "support_phone": "+49 800 1"}, "payment": {}}


def _plant_safe(w: SimWorld, evse: int = 1) -> bool:
    return not w.io.bays[evse].contactors and w.bays[evse].plant.current_a < 1.0


async def _paid_session(r: OcppRig) -> dict[str, Any]:
    w = r.world
    mark = r.mark()
    w.plug(1, "eactros600", 20.0)
    assert await w._until(lambda: r.phase() is Phase.PREPARING, 30)
    await w.pay(1, "approve")
    started = await r.expect("TransactionEvent", {"eventType": "Started"}, within=120,
                             after=mark)
    assert await w._until(lambda: r.phase() is Phase.CHARGING, 120)
    return started


def test_a_replaced_machine_ends_its_session_like_any_other() -> None:
    async def body(r: OcppRig) -> None:
        w = r.world
        ctl = w.controller
        started = await _paid_session(r)
        tx = started["transactionInfo"]["transactionId"]
        await r.sleep(120)  # energy to bill
        energy_wh = ctl.status(1).energy_wh
        assert energy_wh > 1000
        broken = ctl.connectors[1].session

        def raising(event: object, now: float) -> list[Any]:
            raise ZeroDivisionError("a bug in the machine")

        broken.handle = raising  # type: ignore[method-assign]
        ended = await r.expect("TransactionEvent", {
            "eventType": "Ended", "transactionInfo": {"transactionId": tx}}, within=30)
        assert ended["transactionInfo"]["stoppedReason"] == "Other"
        assert ended["triggerReason"] == "AbnormalCondition"
        assert await w._until(lambda: _plant_safe(w), 5)
        # The bay screen: out of order while held safe, the session's price settled.
        shell = w.bay_shell
        assert shell.screen.bays[1].phase is Phase.FAULTED
        assert [f["evse"] for f in shell.finished] == [1]
        assert await w._until(lambda: any(h.state == "booked"
                                          for h in w.terminal.journal.values()), 60)
        booked = [h for h in w.terminal.journal.values() if h.state == "booked"]
        total = shell.finished[0]["cost"].total
        assert [h.booked_minor for h in booked] == [int(total * 100)] and total > 1
        # A fresh machine once safe; the truck leaves, the next one charges on the bay.
        assert await w._until(lambda: ctl.connectors[1].session is not broken, 30)
        assert ctl.failures.get("session", 0) >= 1
        w.unplug(1)
        assert await w._until(lambda: r.phase() is Phase.AVAILABLE, 60)
        assert await w._until(lambda: shell.screen.bays[1].phase is Phase.AVAILABLE, 5)
        again = await _paid_session(r)
        assert again["transactionInfo"]["transactionId"] != tx
        assert r.phase(2) is Phase.AVAILABLE  # the other bay never noticed
        assert len(w.monitor.violations) == 0
    run_rig(body, sections=BAY)
