"""Every phase of a connector and every move between them, in one table.

The session machine (session.py) decides *when* a trigger fires (guards, timers, gates);
this table alone decides *where* it leads. A trigger that has no row for the present
phase changes nothing. Read it top to bottom as one DC session (IEC 61851-23 flow).
"""

from __future__ import annotations

import enum
from collections.abc import Collection


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

# --- the named sets of phases: each defined here once, used everywhere -----------------

# Cable check until delivery: the output may carry voltage (never unlock, open at once
# when the EV opens S2, IEC 61851-23).
ENERGIZING = frozenset({P.CABLE_CHECK, P.PRE_CHARGE, P.CHARGING, P.SUSPENDED_EV,
                        P.SUSPENDED_EVSE})
# An authorized session runs: a stop needs the ordered shutdown (Stopping).
SESSION = frozenset({P.AUTHORIZED}) | ENERGIZING
# The vehicle's session set-up messages belong here (SessionSetup .. Authorization).
SETUP = frozenset({P.PREPARING, P.AUTHORIZED})
# Power delivery was started (PowerDelivery(start)): CurrentDemand belongs here.
DELIVERING = frozenset({P.CHARGING, P.SUSPENDED_EV, P.SUSPENDED_EVSE})
# The contactors are closed onto the vehicle's pack: the EV's own maximum voltage binds.
PACK_CONNECTED = frozenset({P.PRE_CHARGE}) | DELIVERING
# The vehicle talks and owes the next request within the sequence timeout (ISO 15118-2).
TALKING = SETUP | ENERGIZING
# Where an error fault can still get an ordered shutdown (elsewhere it opens at once).
SHUTDOWN_CAN_RUN = SESSION | {P.STOPPING}
# The session is over or ending: responses tell the vehicle StopCharging.
ENDING = frozenset({P.STOPPING, P.FINISHED})
# WeldingDetection and SessionStop belong here (after PowerDelivery(stop) or a fault).
WINDING_DOWN = ENDING | {P.FAULTED}
# Plugged with nothing energized and no shutdown owed: an unplug frees the bay at once.
PLUGGED_AT_REST = frozenset({P.PREPARING, P.FINISHED})
# No session yet: a stop only cancels the authorization given so far.
BEFORE_SESSION = frozenset({P.AVAILABLE, P.PREPARING})
# Arriving here ends the running session (SessionEnded).
SESSION_OVER = frozenset({P.FINISHED, P.FAULTED, P.AVAILABLE})
# The bay refuses vehicles: pilot state F (IEC 61851-1).
OUT_OF_SERVICE = frozenset({P.FAULTED, P.UNAVAILABLE})
# The connector holds power modules (they also measure the output for the < 60 V gates).
NEEDS_POWER = frozenset({P.AUTHORIZED, P.CABLE_CHECK, P.PRE_CHARGE, P.CHARGING,
                         P.SUSPENDED_EV, P.STOPPING})
# No vehicle and nothing running: nothing changes unless an input does.
IDLE = frozenset({P.AVAILABLE, P.UNAVAILABLE})

_ANY_BUT_FAULTED = frozenset(P) - {P.FAULTED}

_ROWS: list[tuple[Collection[Phase], Trigger, Phase]] = [
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
    (SESSION, T.STOP, P.STOPPING),
    (SESSION, T.UNPLUG, P.STOPPING),  # emergency opening happens in the machine
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


def next_phase(phase: Phase, trigger: Trigger) -> Phase | None:
    return TABLE.get((phase, trigger))
