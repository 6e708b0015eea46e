"""SLAC follows the pilot: the controller tells the vehicle-link driver the IO board's
pilot state and the duty the core commands (firmware/loop.py pilot_followers), and a
failed matching (the driver's LinkLost) ends the plug-in in a safe state with a
catalogue fault that the unplug clears; the next truck charges. The whole service on
simulated hardware, in virtual time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from board_rig import virtual

from firmware import config as cfg
from firmware.core import events as ev
from firmware.core.session import ConnectorLimits, ConnectorSession
from firmware.core.transitions import Phase
from firmware.errors import ErrorCode
from firmware.service import running
from hal import vehicle_link as vl
from hal.clock import Clock
from hal.v2g.slac_link import FailedLink
from sim.runner import play
from sim.scenario import parse
from sim.world import SimWorld

CONFIG = cfg.load(Path(__file__).resolve().parent.parent / "examples" / "sim.toml")
NO_OCPP = replace(CONFIG, extra={k: v for k, v in CONFIG.extra.items() if k != "ocpp"})
CHARGE = """
plug 1 eactros600 soc=30
authorize 1 rfid 04A1B2C3D4E5F6
wait 1 Charging timeout=2m
sleep 10s
"""
UNPLUG = """
unplug 1
wait 1 Available timeout=2m
"""


def test_the_core_ends_a_plug_in_whose_matching_failed_safely_until_unplug() -> None:
    s = ConnectorSession(1, ConnectorLimits(500.0, 1000.0, 25.0, 1.0))
    out = s.handle(ev.PilotChanged("B"), 0.0)
    assert ev.SetPilot(5.0) in out  # what starts SLAC
    out = s.handle(ev.FromVehicle(vl.LinkLost("SLAC: no CM_SLAC_PARM.REQ")), 50.0)
    assert ErrorCode.VEHICLE_COMM_LOST in s.faults
    assert ev.SetPilot(100.0, not_available=True) in out  # what ends SLAC
    assert not s.contactors_commanded
    s.handle(ev.Feedback(False, False), 50.1)
    s.handle(ev.PilotChanged("A"), 60.0)
    s.handle(ev.Measurement(0.0, 0.0, 0.0), 60.1)  # the output known safe
    assert ErrorCode.VEHICLE_COMM_LOST not in s.faults and s.phase is Phase.AVAILABLE
    assert ev.SetPilot(5.0) in s.handle(ev.PilotChanged("B"), 70.0)  # the next truck


def test_the_pilot_reaches_the_driver_and_a_failed_match_is_a_safe_fault() -> None:
    async def body() -> dict[str, Any]:
        clock = Clock(1.0, virtual=True)
        world = SimWorld(NO_OCPP, clock)
        async with running(world.config, clock, world) as charger:
            ctl = charger.controller
            seen: list[tuple[int, str, float, float]] = []
            registered = charger.vehicle_links.follow_pilot in ctl.pilot_followers
            ctl.pilot_followers.append(lambda *a: seen.append(a))
            await play(world, parse(CHARGE + UNPLUG))
            first = list(seen)
            # The next truck: its matching fails (the driver's FailedLink).
            await play(world, parse("plug 1 eactros600 soc=30\nsleep 1s\n"))
            ctl.attach_vehicle(1, FailedLink("no CM_SLAC_PARM.REQ within TT_EVSE_SLAC_init"))
            await clock.sleep(2.0)
            status = ctl.status(1)
            faulted = (status.phase, set(status.faults), seen[-1])
            safe = not world.io.bays[1].contactors
            await play(world, parse(UNPLUG + CHARGE))
            return {"registered": registered, "first": first, "faulted": faulted,
                    "safe": safe, "phase": ctl.status(1).phase,
                    "violations": [v.rule for v in world.monitor.violations][:5]}

    got = virtual(body)
    assert got["registered"]  # the iso15118 driver of sim.toml follows the pilot
    states = [(e, st, duty) for e, st, duty, _ in got["first"]]
    # Plugged (B) with the 5 % the core commands, then unplugged (A), nothing else first.
    # Plugged (B) with the 5 % the core commands, C while charging, then unplugged (A):
    # told once per change, the unplug before the duty goes back to 100 %.
    assert states == [(1, "B", 5.0), (1, "C", 5.0), (1, "A", 5.0), (1, "A", 100.0)]
    phase, faults, last = got["faulted"]
    assert ErrorCode.VEHICLE_COMM_LOST in faults and phase is Phase.FAULTED
    assert last[2] == 100.0 and last[1] in ("B", "F")  # not available: SLAC ends
    assert got["safe"] and got["violations"] == []
    assert got["phase"] is Phase.CHARGING  # unplug cleared it: the next truck charges
