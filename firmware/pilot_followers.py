"""Who follows the control pilot besides the core.

The iso15118 driver starts SLAC when the pilot shows B with 5 % PWM and ends it on
anything else (ISO 15118-3: the EVSE leaves the vehicle's network within 1 s of an
unplug), so it is told each change on the spot, not on the next control tick. A follower
that raises is the caller's to count: it never stops the others or the tick.

    followers = PilotFollowers()
    followers.append(links.follow_pilot)
    failed = followers.tell(evse_id, "B", 5.0, now)  -> followers that raised
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("chargebay.loop")

# (evse_id, pilot state as the IO board reads it ("A" when unplugged), the duty in % the
# core commands (100 when not available), now) (hal/vehicle_link.py FollowsPilot).
PilotFollower = Callable[[int, str, float, float], None]


@dataclass
class PilotFollowers:
    followers: list[PilotFollower] = field(default_factory=list)
    _told: dict[int, tuple[str, float]] = field(default_factory=dict)  # last heard

    def append(self, follower: PilotFollower) -> None:
        self.followers.append(follower)

    def __contains__(self, follower: object) -> bool:
        return follower in self.followers

    def tell(self, evse_id: int, state: str, duty: float, now: float) -> int:
        """Tell every follower a change (nothing when unchanged); how many raised."""
        if self._told.get(evse_id) == (state, duty):
            return 0
        self._told[evse_id] = (state, duty)
        failed = 0
        for follow in self.followers:
            try:
                follow(evse_id, state, duty, now)
            except Exception:
                failed += 1
                log.exception("connector %d: pilot follower failed", evse_id)
        return failed
