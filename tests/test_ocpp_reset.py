"""Reset of one EVSE (OCPP 2.0.1 B11 / B12) against the local CSMS, in virtual time.

A reset EVSE's machine starts afresh once it is idle and safe, as after a process
restart: that is how a "needs service" fault is cleared remotely, and what is still
wrong comes straight back from the hardware.
"""

from __future__ import annotations

from ocpp_rig import OcppRig, run_rig

from firmware.core.transitions import Phase

SESSION = """
plug 1 eactros600 soc=20
authorize 1 rfid 04A1B2C3D4E5F6
wait 1 Charging timeout=2m
"""


def _statuses(r: OcppRig, after: int, evse: int = 1) -> list[str]:
    return [m.payload["connectorStatus"] for m in r.csms.received[after:]
            if m.action == "StatusNotification" and m.payload["evseId"] == evse]


def test_evse_reset_on_idle_waits_for_the_transaction() -> None:
    """TC_B_26-like: OnIdle with a transaction running is Scheduled; the session goes on
    (no Ended, meter values keep coming); once it is over the EVSE resets and reports its
    status again; the other EVSE and the link are not touched."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        machine = r.world.controller.connectors[1].session
        other = r.world.controller.connectors[2].session
        mark = r.mark()
        reply = await r.command("Reset", {"type": "OnIdle", "evseId": 1})
        assert reply["status"] == "Scheduled"
        await r.sleep(65)
        events = [m.payload for m in r.csms.received[mark:] if m.action == "TransactionEvent"]
        assert events and all(e["eventType"] == "Updated" for e in events)
        assert r.world.controller.connectors[1].session is machine  # not yet
        await r.play("stop 1 Local\nwait 1 Finished timeout=1m\nunplug 1\n"
                     "wait 1 Available timeout=30s\n")
        await r.sleep(3)
        assert r.world.controller.connectors[1].session is not machine
        assert r.world.controller.connectors[2].session is other
        assert not r.station.evse_resets
        assert _statuses(r, mark)[-1] == "Available"
        assert not [m for m in r.csms.received[mark:] if m.action == "BootNotification"]
    run_rig(body)


def test_evse_reset_immediate_stops_the_session_first() -> None:
    """TC_B_27-like: Immediate with a transaction running: Accepted, the transaction ends
    with ImmediateReset, then the EVSE resets once its output is below 60 V."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        machine = r.world.controller.connectors[1].session
        mark = r.mark()
        assert (await r.command("Reset", {"type": "Immediate", "evseId": 1}))["status"] == \
            "Accepted"
        ended = await r.expect("TransactionEvent", {"eventType": "Ended"}, after=mark)
        assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        await r.sleep(10)
        assert r.world.controller.connectors[1].session is not machine
        assert not r.station.evse_resets
        assert r.world.controller.status(1).voltage_v < 60.0
    run_rig(body)


def test_evse_reset_clears_a_service_fault_only_when_the_hardware_is_healthy() -> None:
    """A contactor welded at the end of a session latches "needs service". A reset with the
    contactor still welded brings the fault straight back (seen on the mirror contacts);
    once it is repaired, the reset returns the bay to service."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION + "sleep 30s\nfault 1 welded\nstop 1 Local\n"
                     "wait 1 Faulted timeout=1m\nunplug 1\nsleep 10s\n")
        assert "welded_contactor" in r.world.controller.status(1).faults
        assert r.phase() is Phase.FAULTED
        mark = r.mark()
        assert (await r.command("Reset", {"type": "Immediate", "evseId": 1}))["status"] == \
            "Accepted"
        await r.sleep(10)
        assert not r.station.evse_resets  # it did reset ...
        assert "welded_contactor" in r.world.controller.status(1).faults  # ... and it is back
        assert _statuses(r, mark)[-1] == "Faulted"
        await r.play("clear 1 welded\nsleep 5s\n")
        assert r.phase() is Phase.FAULTED  # repair alone does not clear it: needs service
        mark = r.mark()
        assert (await r.command("Reset", {"type": "OnIdle", "evseId": 1}))["status"] == \
            "Accepted"
        await r.sleep(5)
        assert r.phase() is Phase.AVAILABLE and not r.world.controller.status(1).faults
        assert _statuses(r, mark)[-1] == "Available"
    run_rig(body)


def test_evse_reset_of_an_unknown_evse_is_rejected() -> None:
    async def body(r: OcppRig) -> None:
        assert (await r.command("Reset", {"type": "Immediate", "evseId": 9}))["status"] == \
            "Rejected"
    run_rig(body)
