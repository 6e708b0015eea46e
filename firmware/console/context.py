"""What a command sees: the charger's parts (read through their public state), the
console's records, and who is asking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from firmware.console.records import ErrorHistory, RingHandler
from firmware.console.settings import ConsoleSettings


@dataclass
class Context:
    charger: Any  # firmware.charger.Charger (it imports the console, not the other way)
    settings: ConsoleSettings
    log: RingHandler
    traffic: RingHandler  # the OCPP library's send / receive lines
    errors: ErrorHistory
    utc: Callable[[], datetime]
    stats: Callable[[], dict[str, int]]  # the console's own counters
    user: str = ""
    role: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def controller(self) -> Any:
        return self.charger.controller

    @property
    def station(self) -> Any:
        return self.charger.station

    @property
    def evse_ids(self) -> tuple[int, ...]:
        return tuple(self.charger.controller.connectors)

    def record(self, kind: str, tech_info: str, critical: bool = False) -> None:
        self.charger.security.record(kind, f"console: {self.user}: {tech_info}", critical)
