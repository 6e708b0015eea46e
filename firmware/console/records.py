"""What the console keeps in memory to show: the recent log, the recent OCPP traffic and
the error history. Each is bounded; the oldest goes first."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from firmware.core import events as ev
from firmware.errors import ErrorCode

LOG_KEEP = 2000
TRAFFIC_KEEP = 200
ERRORS_KEEP = 200
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}


@dataclass(frozen=True, slots=True)
class LogLine:
    at: datetime
    part: str  # the logger's name after "chargebay." (loop, ocpp, charger, ...)
    level: int
    text: str

    def render(self) -> str:
        return (f"{self.at:%H:%M:%S} {logging.getLevelName(self.level):<7} {self.part}: "
                f"{self.text}")


class RingHandler(logging.Handler):
    """A logging handler that keeps the last ``keep`` records as lines."""

    def __init__(self, keep: int = LOG_KEEP, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.lines: deque[LogLine] = deque(maxlen=keep)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not lose the others
            text = str(record.msg)
        part = record.name.removeprefix("chargebay.")
        self.lines.append(LogLine(datetime.fromtimestamp(record.created, UTC), part,
                                  record.levelno, text.replace("\n", " ")[:500]))

    def tail(self, count: int, part: str | None = None, level: int = logging.NOTSET
             ) -> list[LogLine]:
        found = [line for line in self.lines if line.level >= level
                 and (part is None or line.part == part or line.part.startswith(part + "."))]
        return found[-count:]


class ForwardWarnings(logging.Handler):
    """Hands WARNING and worse on to the root logger's handlers (for a logger whose INFO
    records the console keeps but nobody else wants: the OCPP library's traffic)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        for handler in logging.getLogger().handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


@dataclass
class ErrorEntry:
    evse_id: int
    code: ErrorCode
    raised_at: datetime
    cleared_at: datetime | None = None


class ErrorHistory:
    """Every fault a connector reported (the core's FaultReported), and when it went
    away (seen gone from the connector's active faults)."""

    def __init__(self, utc: Callable[[], datetime], active: Callable[[int], tuple[str, ...]],
                 keep: int = ERRORS_KEEP) -> None:
        self.utc = utc
        self.active = active
        self.entries: deque[ErrorEntry] = deque(maxlen=keep)

    def observe(self, evse_id: int, cmd: ev.Command, now: float) -> None:
        if isinstance(cmd, ev.FaultReported):
            self.entries.append(ErrorEntry(evse_id, ErrorCode(cmd.code), self.utc()))
        elif isinstance(cmd, ev.Screen):
            self.refresh(evse_id)

    def refresh(self, evse_id: int | None = None) -> None:
        for entry in self.entries:
            if entry.cleared_at is None and (evse_id is None or entry.evse_id == evse_id) \
                    and entry.code not in self.active(entry.evse_id):
                entry.cleared_at = self.utc()
