"""The ordered shutdown (IEC 61851-23; charging-facts.md "Ordered shutdown"): current to
about 0 A, then open the contactors, confirm them open, then wait for the output to fall
below 60 V. This module owns the sequence's state; ``progress`` returns the next step for
the session to carry out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from firmware.core import limits as lim


class StopStage(enum.Enum):
    RAMP_DOWN = "ramp_down"
    OPENING = "opening"
    DISCHARGING = "discharging"


class Step(enum.Enum):
    OPEN_CONTACTORS = "open_contactors"  # current is down (or the EV left the loop)
    RELEASE_LOCK = "release_lock"  # mirror contacts say open: the lock may follow < 60 V
    DONE = "done"  # below 60 V: the session is over


@dataclass
class Shutdown:
    stage: StopStage | None = None
    since: float = 0.0

    @property
    def running(self) -> bool:
        return self.stage is not None


def begin(sd: Shutdown, now: float, ramp_down: bool) -> None:
    sd.stage, sd.since = (StopStage.RAMP_DOWN if ramp_down else StopStage.OPENING), now


def abandon(sd: Shutdown) -> None:
    """An emergency took over: contactors already open, nothing left to sequence."""
    sd.stage = None


def progress(sd: Shutdown, now: float, *, current_a: float, contactors_closed: bool,
             below_safe_voltage: bool) -> Step | None:
    waited = now - sd.since
    if sd.stage is StopStage.RAMP_DOWN:
        if abs(current_a) < lim.SHUTDOWN_CURRENT_A or waited > lim.SHUTDOWN_CURRENT_WAIT_S:
            sd.stage, sd.since = StopStage.OPENING, now
            return Step.OPEN_CONTACTORS
    elif sd.stage is StopStage.OPENING:
        if not contactors_closed:
            sd.stage, sd.since = StopStage.DISCHARGING, now
            return Step.RELEASE_LOCK
    elif sd.stage is StopStage.DISCHARGING and below_safe_voltage:
        sd.stage = None
        return Step.DONE
    return None
