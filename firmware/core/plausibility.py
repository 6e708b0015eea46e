"""Measured-output plausibility: the power stage's own readings (the modules' CAN
telemetry), the IO board's HV sense and the DC meter where there is one must agree on
the output. A sensor that drifts misleads every gate that reads it (the < 60 V gates, the
cable check's test voltage, the EV's PreCharge match), so a lasting disagreement stops
the session in order (catalogue: ``measurement_implausible``).

The tolerance is IEC 61851-23's measured-output accuracy as charging-facts.md gives it
(approx. clause): +-10 V or +-1.5 % for the voltage, +-0.5 A or +-1.5 % for the current,
whichever is larger, taken of the lower of the two readings compared. Pure functions.
"""

from __future__ import annotations

from itertools import combinations

from firmware.core import events as ev

VOLTAGE_TOLERANCE_V = 10.0
CURRENT_TOLERANCE_A = 0.5
RELATIVE_TOLERANCE = 0.015
# How long a disagreement must last to count. The modules are polled once a second
# (hal/power_stage_can.py), so their reading may be a second older than the board's
# (10 Hz); the output's steps (the cable check's test voltage, its discharge, PreCharge,
# a module joining the output) settle within about a second. 3 s is a late poll and a
# step settling, twice over, so a healthy plant never trips; a drifting sensor is caught
# 3 s after it leaves the tolerance, while the fast dangers have their own holders (the
# board's over-voltage trip in 9 ms, the insulation monitor).
DEBOUNCE_S = 3.0


def voltage_tolerance_v(a_v: float, b_v: float) -> float:
    return max(VOLTAGE_TOLERANCE_V, RELATIVE_TOLERANCE * min(abs(a_v), abs(b_v)))


def current_tolerance_a(a_a: float, b_a: float) -> float:
    return max(CURRENT_TOLERANCE_A, RELATIVE_TOLERANCE * min(abs(a_a), abs(b_a)))


def disagreement(m: ev.Measurement) -> str | None:
    """Which two readings disagree beyond the tolerance (the first pair found), or None.
    Only meaningful with the contactors closed: then module node and cable are one."""
    volts = [("power stage", m.voltage_v), ("IO board", m.cable_voltage_v),
             ("meter", m.meter_voltage_v)]
    for (name_a, a), (name_b, b) in combinations(volts, 2):
        if a is not None and b is not None and abs(a - b) > voltage_tolerance_v(a, b):
            return f"{name_a} {a:.1f} V, {name_b} {b:.1f} V"
    meter_a = m.meter_current_a
    if meter_a is not None and abs(m.current_a - meter_a) > current_tolerance_a(
            m.current_a, meter_a):
        return f"power stage {m.current_a:.1f} A, meter {meter_a:.1f} A"
    return None
