"""What the simulator records of each session and fault, for the scenario summary and
the JSON report (``chargebay sim ... --report json``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FaultRecord:
    code: str
    at_s: float
    safe_state_ms: float | None = None
    pending: bool = False


@dataclass
class SessionRecord:
    connector: int
    truck: str
    start_soc: float
    end_soc: float = 0.0
    energy_kwh: float = 0.0
    duration_s: float = 0.0
    wall_s: float = 0.0
    stop_reason: str | None = None
    fault: str | None = None  # the fault behind stop_reason "Fault"
    max_current_a: float = 0.0
    token: str | None = None
    cost: dict[str, object] | None = None  # the bay's price of it (firmware/bay)
    payment: dict[str, object] | None = None  # the card terminal's figures, if it paid
    peak_power_kw: float = 0.0
    faults: list[FaultRecord] = field(default_factory=list)
    started_at: float | None = None
    wall_started: float = 0.0
    battery_gain_kwh: float = 0.0  # stored + modelled losses (for the energy check)
    open: bool = True

    def as_json(self) -> dict[str, object]:
        return {
            "connector": self.connector, "truck": self.truck,
            "start_soc": round(self.start_soc, 2), "end_soc": round(self.end_soc, 2),
            "energy_kwh": round(self.energy_kwh, 3), "duration_s": round(self.duration_s, 1),
            "wall_s": round(self.wall_s, 3), "stop_reason": self.stop_reason,
            "fault": self.fault,
            "max_current_a": round(self.max_current_a, 1),
            "peak_power_kw": round(self.peak_power_kw, 1),
            "battery_gain_kwh": round(self.battery_gain_kwh, 3),
            "faults": [{"code": f.code, "at_s": round(f.at_s, 3),
                        "safe_state_ms": None if f.safe_state_ms is None
                        else round(f.safe_state_ms, 1)} for f in self.faults],
            **({"cost": self.cost} if self.cost is not None else {}),
            **({"payment": self.payment} if self.payment is not None else {}),
        }
