"""The station's wall-clock time: a CSMS's time is evidence, not a command.

OCPP gives the CSMS's time in BootNotificationResponse and HeartbeatResponse
(ClockCtrlr.TimeSource Heartbeat). The station uses it for timestamps only; every timer
and interval runs on the monotonic clock (hal/clock.py), so whatever the CSMS says, no
session stops and no burst of meter values follows. A time is taken only when:

- it is an RFC 3339 date-time with an offset (OCPP's dateTime; a naive time names no
  instant): an offset such as +05:00 is converted, so timestamps stay UTC;
- it lies between ``EARLIEST`` and ``LATEST``: a year 9999 or a 1970 from a CSMS with a
  dead clock is refused and logged, the station keeps its own count.

Every accepted step larger than ``NOTABLE_STEP_S`` is reported (``on_step``), for the
security log's SettingSystemTime.

    wall = WallClock(clock.now, datetime.now(UTC))
    wall.offer("2026-12-01T10:00:00+05:00", "Heartbeat")  -> None (taken) | reason refused
    wall.now() -> aware UTC datetime
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger("chargebay.ocpp")

# The oldest time a working clock can show: this software did not exist before it.
EARLIEST = datetime(2024, 1, 1, tzinfo=UTC)
# Far enough for a charger's service life; keeps every timestamp a 4-digit year (and
# datetime arithmetic far from its year-9999 overflow).
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
NOTABLE_STEP_S = 60.0  # smaller corrections are drift, not worth a security event

OnStep = Callable[[datetime, datetime, str], None]


def parse(value: Any) -> datetime:
    """An aware UTC datetime from an RFC 3339 string; ValueError otherwise."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        raise ValueError(f"not a date-time string: {value!r:.60}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    t = datetime.fromisoformat(text)  # ValueError when not ISO 8601
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset (RFC 3339 requires one)")
    try:
        return t.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is past datetime's range
        raise ValueError(f"{value!r} is out of range") from None


class WallClock:
    def __init__(self, monotonic: Callable[[], float], start_utc: datetime | None = None,
                 on_step: OnStep | None = None) -> None:
        self._monotonic = monotonic
        start = start_utc if start_utc is not None else datetime.now(UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._base = min(max(start.astimezone(UTC), EARLIEST), LATEST)
        self._at = monotonic()
        self.on_step = on_step
        self.refused = 0

    def now(self) -> datetime:
        return self._base + timedelta(seconds=self._monotonic() - self._at)

    def offer(self, value: Any, source: str) -> str | None:
        """Take ``value`` as the time now if it is sane; else the reason it was not."""
        try:
            t = parse(value)
        except ValueError as exc:
            return self._refuse(source, str(exc))
        if not EARLIEST <= t < LATEST:
            return self._refuse(source, f"{t.isoformat()} is outside "
                                        f"{EARLIEST.year}..{LATEST.year - 1}")
        before = self.now()
        self._base, self._at = t, self._monotonic()
        step = (t - before).total_seconds()
        if abs(step) >= NOTABLE_STEP_S:
            log.warning("wall clock set by the CSMS (%s): %+.0f s, now %s", source, step,
                        t.isoformat())
            if self.on_step is not None:
                self.on_step(before, t, source)
        return None

    def _refuse(self, source: str, reason: str) -> str:
        self.refused += 1
        log.warning("CSMS time from %s refused (%s); keeping %s", source, reason,
                    self.now().isoformat())
        return reason
