"""Measured-output plausibility in the core: the power stage's readings, the IO board's
HV sense and the DC meter agree within IEC 61851-23's measured-output tolerance
(charging-facts.md, approx. clause: +-10 V or +-1.5 %, +-0.5 A or +-1.5 %, whichever is
larger) or the session ends in order after a lasting disagreement. The figures below are
written from the clause, not read from firmware/core/plausibility.py."""

from __future__ import annotations

import pytest
from core_rig import Rig

from firmware.core import events as ev
from firmware.core.transitions import Phase
from firmware.errors import ErrorCode

IMPLAUSIBLE = ErrorCode.MEASUREMENT_IMPLAUSIBLE


def charging(pack_v: float = 650.0, amps: float = 100.0) -> Rig:
    r = Rig(pack_v=pack_v, sense_offset_v=0.0, meter_offset_v=0.0, meter_offset_a=0.0)
    r.to_charging()
    r.demand(amps, 8.0)  # ramped up and steady
    assert r.s.phase is Phase.CHARGING and r.set_a == pytest.approx(amps)
    assert IMPLAUSIBLE not in r.s.faults
    return r


def disagree(r: Rig, amps: float, seconds: float, **offsets: float) -> None:
    for name, value in offsets.items():
        setattr(r, name, value)
    r.demand(amps, seconds)


@pytest.mark.parametrize(("pack_v", "offset_v", "trips"), [
    (650.0, 9.9, False), (650.0, 10.1, True),  # +-10 V binds below about 667 V
    (650.0, -9.9, False), (650.0, -10.1, True),
    (900.0, 13.4, False), (900.0, 13.6, True),  # 1.5 % of 900 V = 13.5 V binds
])
@pytest.mark.parametrize("sensor", ["sense_offset_v", "meter_offset_v"])
def test_voltage_tolerance_edges(pack_v: float, offset_v: float, trips: bool,
                                 sensor: str) -> None:
    r = charging(pack_v)
    disagree(r, 100.0, 5.0, **{sensor: offset_v})
    assert (IMPLAUSIBLE in r.s.faults) is trips


@pytest.mark.parametrize(("amps", "offset_a", "trips"), [
    (20.0, 0.45, False), (20.0, 0.55, True),  # +-0.5 A binds below about 33 A
    (200.0, 2.9, False), (200.0, 3.1, True),  # 1.5 % of 200 A = 3 A binds
    (200.0, -2.9, False), (200.0, -3.1, True),
])
def test_current_tolerance_edges(amps: float, offset_a: float, trips: bool) -> None:
    r = charging(amps=amps)
    disagree(r, amps, 5.0, meter_offset_a=offset_a)
    assert (IMPLAUSIBLE in r.s.faults) is trips


def test_a_lasting_disagreement_ends_the_session_in_order_within_3s() -> None:
    r = charging()
    r.sense_offset_v = 40.0
    t0 = r.now
    while IMPLAUSIBLE not in r.s.faults and r.now - t0 < 20.0:
        r.demand(100.0, 0.25)
    assert r.now - t0 <= 3.0 + 0.5  # the debounce and two CurrentDemand rounds
    assert r.s.phase is Phase.STOPPING  # ordered: ramp down, then open
    r.demand(100.0, 3.0)
    assert not r.contactors and r.s.phase is Phase.FAULTED
    r.sense_offset_v = 0.0
    r.send(ev.PilotChanged("A"))  # the catalogue: cleared when the vehicle leaves
    r.advance(2.0)
    assert r.s.phase is Phase.AVAILABLE and IMPLAUSIBLE not in r.s.faults


def test_a_short_disagreement_does_not_trip() -> None:
    """Shorter than the debounce (a module reading a poll late while the output steps)."""
    r = charging()
    disagree(r, 100.0, 2.0, sense_offset_v=40.0)
    disagree(r, 100.0, 5.0, sense_offset_v=0.0)
    assert IMPLAUSIBLE not in r.s.faults


def test_nothing_is_judged_with_the_contactors_open() -> None:
    """Open, the module node and the cable are two nodes: they may differ."""
    r = Rig(sense_offset_v=300.0)
    r.to_parameters()
    r.advance(10.0)
    assert IMPLAUSIBLE not in r.s.faults
