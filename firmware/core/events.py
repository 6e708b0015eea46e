"""What goes into a connector's session machine (events) and what comes out (commands).

Small immutable values, in the manner of h11: the machine never does I/O and never reads
a clock; the shell passes ``now`` with every event and carries out the commands.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from firmware.core.transitions import Phase
from firmware.errors import ErrorCode
from hal.power_stage import Mode
from hal.vehicle_link import VehicleRequest, VehicleResponse


class StopReason(enum.StrEnum):
    """Why a session ended, in OCPP 2.0.1 ReasonEnumType words where it has one (the OCPP
    layer maps them, mapping.py). A fault says FAULT and carries its ErrorCode beside."""

    LOCAL = "Local"  # the bay's screen or the driver
    REMOTE = "Remote"  # the central system (RequestStopTransaction)
    DEAUTHORIZED = "DeAuthorized"  # the token was found invalid after the start
    EV_DISCONNECTED = "EVDisconnected"  # unplugged, or the EV opened S2 while energized
    STOPPED_BY_EV = "StoppedByEV"  # PowerDelivery(stop) from the vehicle
    SEQUENCE_ERROR = "SequenceError"  # a vehicle request out of order (ISO 15118-2)
    IMMEDIATE_RESET = "ImmediateReset"
    POWER_LOSS = "PowerLoss"
    REBOOT = "Reboot"
    ENERGY_LIMIT_REACHED = "EnergyLimitReached"
    TIME_LIMIT_REACHED = "TimeLimitReached"
    FAULT = "Fault"  # see the fault's ErrorCode
    OTHER = "Other"


class UnlockOutcome(enum.StrEnum):
    """How an unlock request ended (OCPP 2.0.1 UnlockStatusEnumType words, plus the
    refusal the core adds: it never unlocks under voltage)."""

    UNLOCKED = "Unlocked"  # the lock's position switch confirms it open
    UNLOCK_FAILED = "UnlockFailed"  # commanded open, the switch did not follow in time
    ONGOING_AUTHORIZED_TRANSACTION = "OngoingAuthorizedTransaction"  # a session runs
    REFUSED_ENERGIZED = "RefusedEnergized"  # contactors not open or output >= 60 V


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PilotChanged:
    """Control pilot state as the IO board decoded it: 'A'..'F' (IEC 61851-1)."""

    state: str


@dataclass(frozen=True, slots=True)
class Feedback:
    """Mirror contacts and lock position switch, as the IO board reads them."""

    contactors_closed: bool
    lock_locked: bool


@dataclass(frozen=True, slots=True)
class Measurement:
    """Output voltage and current (power stage telemetry or DC meter), and the voltage
    at the EVSE's side of the cable from the IO board's HV sense where it has one: with
    the contactors open the two nodes differ, and the < 60 V gates and WeldingDetection
    must read the cable's."""

    voltage_v: float
    current_a: float
    cable_voltage_v: float | None = None
    # The DC meter on the output, where there is one (its own voltage and current): a
    # third opinion for the plausibility check (supervision.py).
    meter_voltage_v: float | None = None
    meter_current_a: float | None = None


@dataclass(frozen=True, slots=True)
class Capability:
    """What this connector may draw now: power stage allocation and any charging limit."""

    max_voltage_v: float
    max_current_a: float
    max_power_w: float


@dataclass(frozen=True, slots=True)
class Authorize:
    token: str
    source: str  # "rfid", "remote", "payment"


@dataclass(frozen=True, slots=True)
class AuthorizeRejected:
    token: str
    reason: str


@dataclass(frozen=True, slots=True)
class StopRequested:
    reason: StopReason


@dataclass(frozen=True, slots=True)
class FaultRaised:
    code: ErrorCode


@dataclass(frozen=True, slots=True)
class FaultCleared:
    code: ErrorCode


@dataclass(frozen=True, slots=True)
class FromVehicle:
    request: VehicleRequest


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: timeouts and the current ramp advance."""


@dataclass(frozen=True, slots=True)
class SetAvailability:
    operative: bool


@dataclass(frozen=True, slots=True)
class InsulationMonitorTested:
    """The result of the insulation monitor's self test the board ran on our asking
    (TestInsulationMonitor): the monitor alarmed for its test and released again."""

    passed: bool


@dataclass(frozen=True, slots=True)
class DataLinkChanged:
    """SLAC on the connector's PLC modem (ISO 15118-3): matching began (``ready`` False)
    or the EV matched (True, D-LINK_READY). With matching, the communication setup timer
    counts from D-LINK_READY, as the EV's does (ISO 15118-2 V2G_EVCC_CommunicationSetup
    _Timeout); until the match SLAC's own timers bound the wait (TT_EVSE_SLAC_init,
    TT_match_join: a failure comes as LinkLost)."""

    ready: bool


@dataclass(frozen=True, slots=True)
class UnlockRequested:
    """Release the connector lock (OCPP UnlockConnector, F05): only when no session runs,
    the contactors are commanded open and the output is below 60 V (IEC 61851-23)."""


Event = (PilotChanged | Feedback | Measurement | Capability | Authorize | AuthorizeRejected
         | StopRequested | FaultRaised | FaultCleared | FromVehicle | Tick | SetAvailability
         | UnlockRequested | InsulationMonitorTested | DataLinkChanged)

# --- commands -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetPilot:
    """duty_percent 100 = steady +12 V (no PWM), 5 = digital communication (61851-1
    Annex A); not_available drives state F (-12 V)."""

    duty_percent: float
    not_available: bool = False


@dataclass(frozen=True, slots=True)
class SetContactors:
    closed: bool


@dataclass(frozen=True, slots=True)
class SetLock:
    locked: bool


@dataclass(frozen=True, slots=True)
class SetPower:
    mode: Mode
    voltage_v: float
    current_a: float


@dataclass(frozen=True, slots=True)
class SetOverVoltageBand:
    """The IO board's over-voltage limit for this session's negotiated range (IEC
    61851-23 bands); the board trips on it by itself (9 ms + 1 ms)."""

    limit_v: float


@dataclass(frozen=True, slots=True)
class TestInsulationMonitor:
    """Run the insulation monitor's self test before the cable check measures (IEC
    61851-23; IEC 61557-8 test function). The board answers with the result in its
    inputs (InsulationMonitorTested)."""


@dataclass(frozen=True, slots=True)
class Answer:
    response: VehicleResponse


@dataclass(frozen=True, slots=True)
class Screen:
    """What the bay's screen shows, as facts only (firmware/words.py has the sentences):
    the phase, why the last session stopped, the worst fault present, the energy."""

    phase: Phase
    stop_reason: StopReason | None = None
    stop_fault: ErrorCode | None = None  # the fault behind stop_reason FAULT
    worst_fault: ErrorCode | None = None  # the most severe fault present
    energy_wh: float = 0.0
    card_rejected: str | None = None  # a card was refused: the central system's status


@dataclass(frozen=True, slots=True)
class SessionStarted:
    token: str
    source: str
    at_s: float


@dataclass(frozen=True, slots=True)
class SessionEnded:
    reason: StopReason
    at_s: float
    energy_wh: float
    fault: ErrorCode | None = None  # set when reason is FAULT


@dataclass(frozen=True, slots=True)
class FaultReported:
    """A fault the core acted on, for the record (reports, OCPP)."""

    code: ErrorCode
    at_s: float


@dataclass(frozen=True, slots=True)
class UnlockResult:
    """The answer to UnlockRequested: at once when refused, else once the lock's position
    switch confirms open, or UNLOCK_FAILED after the lock confirmation time."""

    outcome: UnlockOutcome


Command = (SetPilot | SetContactors | SetLock | SetPower | SetOverVoltageBand
           | TestInsulationMonitor | Answer | Screen | SessionStarted | SessionEnded
           | FaultReported | UnlockResult)
