"""Every phase of a connector and every move between them, in one table.

The session machine (session.py) decides *when* a trigger fires (guards, timers, gates);
this table alone decides *where* it leads. A trigger that has no row for the present
phase changes nothing. Read it top to bottom as one DC session (IEC 61851-23 flow).
"""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    AVAILABLE = "Available"
    PREPARING = "Preparing"  # cable connected, waiting for authorization
    AUTHORIZED = "Authorized"  # authorized, vehicle negotiating parameters
    CABLE_CHECK = "CableCheck"
    PRE_CHARGE = "PreCharge"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    STOPPING = "Stopping"  # ramp down, open contactors, welding detection
    FINISHED = "Finished"  # session over, vehicle still plugged
    FAULTED = "Faulted"
    UNAVAILABLE = "Unavailable"


class Trigger(enum.Enum):
    PLUG_IN = "plug_in"
    UNPLUG = "unplug"
    AUTHORIZED = "authorized"
    CABLE_CHECK_START = "cable_check_start"
    PRECHARGE_START = "precharge_start"
    POWER_DELIVERY_START = "power_delivery_start"
    EV_PAUSE = "ev_pause"
    EV_RESUME = "ev_resume"
    EVSE_PAUSE = "evse_pause"
    EVSE_RESUME = "evse_resume"
    STOP = "stop"  # ordered shutdown (driver, operator, vehicle, error)
    SHUTDOWN_DONE = "shutdown_done"
    SHUTDOWN_DONE_FAULTED = "shutdown_done_faulted"
    EMERGENCY = "emergency"  # supply off and contactors open at once
    RECOVERED_UNPLUGGED = "recovered_unplugged"
    RECOVERED_PLUGGED = "recovered_plugged"
    DISABLE = "disable"
    ENABLE = "enable"


P, T = Phase, Trigger
_SESSION = (P.AUTHORIZED, P.CABLE_CHECK, P.PRE_CHARGE, P.CHARGING, P.SUSPENDED_EV,
            P.SUSPENDED_EVSE)
_ANY_BUT_FAULTED = tuple(p for p in P if p is not P.FAULTED)

_ROWS: list[tuple[tuple[Phase, ...], Trigger, Phase]] = [
    ((P.AVAILABLE,), T.PLUG_IN, P.PREPARING),
    ((P.AVAILABLE,), T.DISABLE, P.UNAVAILABLE),
    ((P.UNAVAILABLE,), T.ENABLE, P.AVAILABLE),
    ((P.PREPARING,), T.AUTHORIZED, P.AUTHORIZED),
    ((P.PREPARING,), T.UNPLUG, P.AVAILABLE),
    ((P.PREPARING,), T.STOP, P.FINISHED),  # nothing energized yet: nothing to shut down
    ((P.AUTHORIZED,), T.CABLE_CHECK_START, P.CABLE_CHECK),
    ((P.CABLE_CHECK,), T.PRECHARGE_START, P.PRE_CHARGE),
    ((P.PRE_CHARGE,), T.POWER_DELIVERY_START, P.CHARGING),
    ((P.CHARGING,), T.EV_PAUSE, P.SUSPENDED_EV),
    ((P.SUSPENDED_EV,), T.EV_RESUME, P.CHARGING),
    ((P.CHARGING,), T.EVSE_PAUSE, P.SUSPENDED_EVSE),
    ((P.SUSPENDED_EVSE,), T.EVSE_RESUME, P.CHARGING),
    (_SESSION, T.STOP, P.STOPPING),
    (_SESSION, T.UNPLUG, P.STOPPING),  # emergency opening happens in the machine
    ((P.STOPPING,), T.SHUTDOWN_DONE, P.FINISHED),
    ((P.STOPPING,), T.SHUTDOWN_DONE_FAULTED, P.FAULTED),
    ((P.FINISHED,), T.UNPLUG, P.AVAILABLE),
    (_ANY_BUT_FAULTED, T.EMERGENCY, P.FAULTED),
    ((P.FINISHED,), T.STOP, P.FINISHED),
    ((P.FAULTED,), T.RECOVERED_UNPLUGGED, P.AVAILABLE),
    ((P.FAULTED,), T.RECOVERED_PLUGGED, P.FINISHED),
]

TABLE: dict[tuple[Phase, Trigger], Phase] = {}
for _sources, _trigger, _target in _ROWS:
    for _source in _sources:
        TABLE.setdefault((_source, _trigger), _target)

ENERGIZING = frozenset({P.CABLE_CHECK, P.PRE_CHARGE, P.CHARGING, P.SUSPENDED_EV,
                        P.SUSPENDED_EVSE})


def next_phase(phase: Phase, trigger: Trigger) -> Phase | None:
    return TABLE.get((phase, trigger))
