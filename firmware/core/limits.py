"""Numbers from the standards, and the arithmetic that uses them. Pure functions."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hal.mcu.rules import IMD_TEST_ALARM_MS, IMD_TEST_CLEAR_MS, ovp_limit_v

__all__ = ["ovp_limit_v"]  # the IEC 61851-23 bands: one table, the board's (hal/mcu/rules.py)

# IEC 61851-23: no cable check, and no unlocking, unless the output is below 60 V.
SAFE_VOLTAGE_V = 60.0

# ISO 15118-2 / DIN SPEC 70121 charger-side timers (charging-facts.md, "DC flow").
COMM_SETUP_TIMEOUT_S = 18.0  # SessionSetup must arrive this long after 5 % PWM
SEQUENCE_TIMEOUT_S = 60.0  # longest gap between two vehicle requests
CABLE_CHECK_TIMEOUT_S = 38.0  # cable check performance time (aim for < 25 s)
PRECHARGE_TIMEOUT_S = 5.0  # reach the EV's target voltage within this
PRECHARGE_TOLERANCE_V = 20.0  # approx.: |present - target| counted as matched

# Pre-authorisation (card before plug-in) expires after this (OCPP EVConnectionTimeOut
# default is implementation defined; 60 s is a common value, approx.).
CONNECTION_TIMEOUT_S = 60.0

# Ordered shutdown (IEC 61851-23 6.3.1.x): current to ~0, then open, then check.
SHUTDOWN_CURRENT_A = 5.0  # approx.: open contactors once below this
SHUTDOWN_CURRENT_WAIT_S = 2.0  # open anyway after this (EV left the loop)
CONTACTOR_CONFIRM_S = 1.0  # mirror contacts must follow within this, else welded/stuck
CABLE_CHECK_REACHED = 0.95  # fraction of the test voltage counted as "applied" (approx.)
CABLE_CHECK_COLLAPSE = 0.8  # below this fraction after reaching it: the insulation broke
# The insulation monitor's self test, run by the board: its two bounds (hal/mcu/rules.py)
# and a second for the link; unanswered by then, the test failed.
IMD_TEST_ANSWER_S = (IMD_TEST_ALARM_MS + IMD_TEST_CLEAR_MS) / 1000.0 + 1.0
LOCK_CONFIRM_S = 2.0  # approx.: lock actuators move in well under a second (IEC 62196-3)

# Over-voltage / over-current trip margins above the hard limits (approx.: measurement
# accuracy of the module telemetry plus the EV's own tolerance).
def voltage_margin(limit_v: float) -> float:
    return max(10.0, 0.02 * limit_v)


def current_margin(limit_a: float) -> float:
    return max(10.0, 0.1 * limit_a)


def cable_check_voltage(ev_max_voltage_v: float, evse_max_voltage_v: float) -> float:
    """IEC 61851-23:2023 cable-check test voltage.

    EV max <= 500 V: min(EV max + 50 V, 500 V, EVSE max); above: min(1.1 x EV max, EVSE max).
    """
    if ev_max_voltage_v <= 500.0:
        return min(ev_max_voltage_v + 50.0, 500.0, evse_max_voltage_v)
    return min(1.1 * ev_max_voltage_v, evse_max_voltage_v)


def ramp(previous_a: float, target_a: float, rate_a_per_s: float, dt_s: float) -> float:
    """Move toward target: increases at most ``rate * dt``; decreases at once, because a
    lower request or limit must be honoured immediately (never above a limit)."""
    if target_a <= previous_a:
        return target_a
    return min(target_a, previous_a + rate_a_per_s * max(dt_s, 0.0))


class BindingLimit(enum.Enum):
    """Which limit sets the charging current (the screen and smart charging read it)."""

    EV_REQUEST = "ev_request"  # EVTargetCurrent of CurrentDemand
    EV_MAX = "ev_max"  # EVMaximumCurrentLimit
    CABLE = "cable"  # the cable's current rating
    ALLOCATION = "allocation"  # the power modules this connector holds now
    EVSE_POWER = "evse_power"  # the connector's power limit at the present voltage
    EV_POWER = "ev_power"  # EVMaximumPowerLimit at the present voltage


@dataclass(frozen=True, slots=True)
class CurrentLimit:
    amps: float
    binding: BindingLimit


def current_limit(*, ev_target_a: float, ev_max_a: float, cable_max_a: float,
                  allocation_a: float, evse_power_w: float, ev_power_w: float,
                  voltage_v: float) -> CurrentLimit:
    """The lowest applicable current, and which limit it is: EV request, EV maximum,
    cable rating, allocation, and both power limits divided by the present voltage. On a
    tie the first in that order is named (the vehicle's own request before the rest)."""
    v = max(voltage_v, 1.0)
    candidates = ((ev_target_a, BindingLimit.EV_REQUEST), (ev_max_a, BindingLimit.EV_MAX),
                  (cable_max_a, BindingLimit.CABLE), (allocation_a, BindingLimit.ALLOCATION),
                  (evse_power_w / v, BindingLimit.EVSE_POWER),
                  (ev_power_w / v, BindingLimit.EV_POWER))
    amps, binding = min(candidates, key=lambda c: c[0])  # min keeps the first of equals
    return CurrentLimit(max(amps, 0.0), binding)
