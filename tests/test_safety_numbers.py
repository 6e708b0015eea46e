"""Numbers of charging-facts.md held by the host's core, each tested against the
standard's figure written here (never the code's own constant), so that moving the
number past the limit fails (tests/mutation_check.py moves each one)."""

from __future__ import annotations

import dataclasses

import pytest
from core_rig import EV, Rig

from firmware.core import events as ev
from hal import vehicle_link as vl


@pytest.mark.parametrize(("ev_max_v", "band_v"), [
    (400.0, 550.0), (700.0, 825.0), (850.0, 935.0), (920.0, 1100.0), (1200.0, 1100.0)])
def test_over_voltage_band_goes_to_the_board_when_the_range_is_negotiated(
        ev_max_v: float, band_v: float) -> None:
    # IEC 61851-23 bands; the EVSE here is a 1000 V output, so a 1200 V EV negotiates
    # 1000 V and gets the 1100 V band, not MCS's 1375 V.
    rig = Rig()
    rig.send(ev.PilotChanged("B"))
    rig.ask(vl.SessionSetupReq("X"))
    rig.send(ev.Authorize("CARD1", "rfid"))
    before = len(rig.log)
    rig.ask(vl.ChargeParameterDiscoveryReq(dataclasses.replace(EV, max_voltage_v=ev_max_v)))
    bands = [c.limit_v for c in rig.log[before:] if isinstance(c, ev.SetOverVoltageBand)]
    assert bands == [band_v]
