"""VehicleLink contract: the DC request/response exchange with the vehicle.

Message level of ISO 15118-2 / DIN SPEC 70121 DC charging (charging-facts.md):
SessionSetup -> ServiceDiscovery -> PaymentServiceSelection -> Authorization ->
ChargeParameterDiscovery -> CableCheck* -> PreCharge* -> PowerDelivery(start) ->
CurrentDemand* -> PowerDelivery(stop) -> WeldingDetection* -> SessionStop.

The vehicle asks, the charger answers. A driver turns wire messages (EXI over TCP in
ISO 15118; a queue in the simulator) into these dataclasses and back. It must:
- deliver requests in order, one at a time, and carry the answer back unchanged;
- report link loss as a ``LinkLost`` request so the controller ends the session safely;
- never invent answers itself: every answer comes from the controller's core.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class Processing(enum.Enum):
    FINISHED = "Finished"
    ONGOING = "Ongoing"


class ResponseCode(enum.Enum):
    OK = "OK"
    FAILED = "FAILED"
    FAILED_SEQUENCE_ERROR = "FAILED_SequenceError"


class EvseNotification(enum.Enum):
    NONE = "None"
    STOP_CHARGING = "StopCharging"
    EMERGENCY_SHUTDOWN = "EmergencyShutdown"


@dataclass(frozen=True, slots=True)
class EvParameters:
    """What the EV declares in ChargeParameterDiscovery."""

    max_voltage_v: float
    max_current_a: float
    max_power_w: float
    energy_capacity_wh: float
    soc_percent: float
    target_soc_percent: float = 100.0


# --- requests (vehicle -> charger) -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SessionSetupReq:
    evccid: str


@dataclass(frozen=True, slots=True)
class ServiceDiscoveryReq:
    pass


@dataclass(frozen=True, slots=True)
class PaymentServiceSelectionReq:
    payment: str = "ExternalPayment"  # EIM: RFID, app or payment terminal at the bay


@dataclass(frozen=True, slots=True)
class AuthorizationReq:
    pass


@dataclass(frozen=True, slots=True)
class ChargeParameterDiscoveryReq:
    ev: EvParameters


@dataclass(frozen=True, slots=True)
class CableCheckReq:
    soc_percent: float


@dataclass(frozen=True, slots=True)
class PreChargeReq:
    target_voltage_v: float
    target_current_a: float


@dataclass(frozen=True, slots=True)
class PowerDeliveryReq:
    start: bool  # True: ChargeProgress Start; False: Stop


@dataclass(frozen=True, slots=True)
class CurrentDemandReq:
    target_voltage_v: float
    target_current_a: float
    soc_percent: float
    max_voltage_v: float
    max_current_a: float
    max_power_w: float
    remaining_time_s: float | None = None
    charging_complete: bool = False


@dataclass(frozen=True, slots=True)
class WeldingDetectionReq:
    pass


@dataclass(frozen=True, slots=True)
class SessionStopReq:
    pass


@dataclass(frozen=True, slots=True)
class LinkLost:
    """Not a wire message: the driver's report that the vehicle link is gone."""

    reason: str


VehicleRequest = (
    SessionSetupReq | ServiceDiscoveryReq | PaymentServiceSelectionReq | AuthorizationReq
    | ChargeParameterDiscoveryReq | CableCheckReq | PreChargeReq | PowerDeliveryReq
    | CurrentDemandReq | WeldingDetectionReq | SessionStopReq | LinkLost
)


# --- the answer (charger -> vehicle) ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class VehicleResponse:
    """One answer shape for every request; fields that a message lacks stay at defaults."""

    request: str  # the request's class name, e.g. "CurrentDemandReq"
    code: ResponseCode = ResponseCode.OK
    processing: Processing = Processing.FINISHED
    present_voltage_v: float = 0.0
    present_current_a: float = 0.0
    max_voltage_v: float = 0.0
    max_current_a: float = 0.0
    max_power_w: float = 0.0
    current_limit_reached: bool = False
    notification: EvseNotification = EvseNotification.NONE
    extra: dict[str, str] = field(default_factory=dict)


class VehicleLink(Protocol):
    """Driver side of the link, one per connector."""

    async def receive(self) -> VehicleRequest:
        """Next request from the vehicle (``LinkLost`` when the link dropped)."""

    def answer(self, response: VehicleResponse) -> None:
        """Send the answer to the request last received."""


class VehicleLinks(Protocol):
    """Driver side of the whole role: waits for vehicles on every connector and hands
    each new link to the controller (ISO 15118: SLAC, SDP and the TCP accept; the
    ``virtual`` driver: a vehicle in the same process connecting by name)."""

    async def start(self, on_link: Callable[[int, VehicleLink], None]) -> None:
        """Start listening; ``on_link(connector, link)`` for every vehicle that comes."""

    async def close(self) -> None:
        """Stop listening (links already handed over end with their vehicle)."""


@runtime_checkable
class FollowsPilot(Protocol):
    """A vehicle-link driver that must know the control pilot (ISO 15118-3: SLAC starts
    once the vehicle is plugged, state B, and the charger shows 5 % PWM; it ends on
    unplug). The controller calls it whenever the IO board's pilot reading or the duty
    the core commands changes; it must return at once (no I/O wait)."""

    def follow_pilot(self, evse_id: int, state: str, duty_percent: float, now: float) -> None:
        """``state``: the pilot as read, "A" when unplugged; ``duty_percent``: 5 for
        digital communication, 100 for none (or not available)."""

    # Set by the composition root: called (connector, ready) when matching starts on a
    # connector (False) and when the EV matched (True: ISO 15118-3 D-LINK_READY), so the
    # core's communication setup timer counts from the match, as the EV's does.
    on_data_link: Callable[[int, bool], None]
