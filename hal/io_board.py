"""IoBoard contract: the safety MCU between the controller and the high-voltage hardware.

Per connector it drives the control pilot (PWM duty or state F), the DC output
contactors and the connector lock, and reads back the pilot state, the contactors'
mirror contacts, the lock position switch, the emergency stop, the isolation monitor and
temperatures.

Behaviour every driver must keep:
- The board itself enforces the hard rules, whatever the host says: e-stop opens the
  contactors within 10 ms; the pilot leaving C/D opens them within 100 ms (IEC 61851-1);
  the output above the session's over-voltage band for 9 ms opens them (IEC 61851-23);
  contactors close only if the host allowed it AND the lock is confirmed AND there is no
  e-stop AND no isolation fault AND the pilot is C or D; no valid host frame for the
  heartbeat timeout opens the contactors and drives the pilot to state F. Each trip is
  reported in the inputs (``over_voltage_trip``, ``pilot_trip``), as are the board's
  welded-contactor and lock-fault findings.
- E/F held: once the board drives state F it keeps F at least 4 s (IEC 61851-1) and
  reports ``pilot_held_f`` meanwhile; the contactors close for a vehicle only after the
  insulation monitor passed its self test (``test_insulation_monitor``) since the vehicle
  plugged in.
- The one exception to "only in C/D" is the board's own contactor self test
  (``selftest_contactors``): on an empty connector only (no plug, output below 60 V, no
  power asked, no e-stop, no fault), closed for the board's bounded time and opened by
  the board itself, at once if any of those fails meanwhile or the link goes silent.
- ``inputs()`` returns what the board last reported; a driver never invents a reading.
- Link loss with the board is reported once through ``take_faults()`` as
  ``io_board_link_lost`` (emergency severity in the error catalogue); the board's own
  heartbeat rule has already made the output safe by then. ``link_up`` says whether the
  board answers now (handshake done, not silent for the timeout), which is how the
  controller knows the fault has cleared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ConnectorInputs:
    pilot: str  # 'A'..'F' after the board's filtering (<= 50 ms)
    contactors_closed: bool  # mirror contacts
    lock_locked: bool  # lock position switch
    emergency_stop: bool
    isolation_fault: bool
    temperature_c: float
    plugged: bool = False  # proximity / insertion detection (PP): sees the plug even
    # while the board holds the pilot at state F
    welded: bool = False  # commanded open, mirror contacts still closed (the board's timer)
    lock_fault: bool = False  # the lock did not reach the commanded position in time
    over_voltage_trip: bool = False  # the board opened: output above the band for 9 ms
    pilot_trip: bool = False  # the board opened: pilot left C/D while closed
    output_voltage_v: float | None = None  # the board's HV sense (None: board has none)
    # The board-held contactor self test (``selftest_contactors``): running now; in the
    # last one the mirror contacts followed closed, then open again; aborted (a safety
    # condition failed meanwhile, or the host commanded the contactors).
    selftest_running: bool = False
    selftest_closed: bool = False
    selftest_opened: bool = False
    selftest_aborted: bool = False
    # The board holds the pilot in state F for the rest of IEC 61851-1's 4 s: the pilot it
    # reads is its own F, not the vehicle (which cannot be read meanwhile).
    pilot_held_f: bool = False
    # The insulation monitor's self test (``test_insulation_monitor``): running now; its
    # result since the vehicle plugged in.
    imd_testing: bool = False
    imd_passed: bool = False
    imd_failed: bool = False


class IoBoard(Protocol):
    connectors: tuple[int, ...]

    @property
    def link_up(self) -> bool:
        """The board answers now (handshake done, not silent for the timeout)."""

    async def start(self, now: float) -> None:
        """Open the link and do the version handshake."""

    async def close(self) -> None:
        """Command everything safe (contactors open, pilot F) and release the link."""

    def set_pilot(self, connector: int, duty_percent: float, not_available: bool) -> None: ...

    def set_contactors(self, connector: int, closed: bool) -> None: ...

    def set_lock(self, connector: int, locked: bool) -> None: ...

    def set_ovp_band(self, connector: int, limit_v: float) -> None:
        """The over-voltage limit of the session's negotiated range (IEC 61851-23 bands);
        the board trips on it by itself."""

    def selftest_contactors(self, connector: int) -> None:
        """Ask the board to close an empty connector's contactors for its own bounded
        time and open them again. The board refuses unless safe by its own readings (no
        plug, pilot A or F, output below 60 V, no power asked, no e-stop, no fault);
        the result shows in ``inputs()`` (``selftest_*``, ``welded``)."""

    def test_insulation_monitor(self, connector: int) -> None:
        """Run the insulation monitor's self test (IEC 61557-8 test function) before the
        cable check measures. The board refuses unless a vehicle is plugged, the
        contactors are open and the output is below 60 V; it closes the contactors for a
        vehicle only after a passed test since it plugged in. The result shows in
        ``inputs()`` (``imd_passed`` / ``imd_failed``)."""

    def poll(self, now: float) -> None:
        """Read what arrived; send the heartbeat when due."""

    def inputs(self, connector: int) -> ConnectorInputs: ...

    def take_faults(self) -> list[str]:
        """Link-level faults (error-catalogue codes) since the last call."""
