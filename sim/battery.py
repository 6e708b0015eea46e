"""Truck traction battery model for the simulator.

A lumped model, good enough to drive the charger's control loop with plausible numbers:
- open-circuit voltage (OCV) as a smooth, strictly increasing function of state of charge;
- one series internal resistance R, so the terminal voltage while charging is OCV + I*R;
- the EV's charge-current limit: constant current up to about 80 % SoC, then a linear
  taper to about 0.2 C at 100 % (charging-facts.md, "Heavy trucks", approx.).

Energy bookkeeping: per step, the cells store OCV*I*dt and the resistance dissipates
I^2*R*dt; their sum is exactly terminal_voltage(I)*I*dt evaluated at the start of the step
(explicit Euler), which keeps the meter-vs-battery comparisons in the simulator exact.

All pack figures below are working values (approx.), not maker data: only the capacities
and the DC maximum powers are from the facts file; keep them configurable.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

Chemistry = Literal["lfp", "nmc"]

# Shape of the normalized OCV curve f(x), x = SoC/100, f(0)=0, f(1)=1:
#   f = w_lin*x + w_lo*lo(x) + w_hi*hi(x), weights summing to 1, every term increasing,
# where lo() rises steeply just above empty and hi() just below full. LFP has a flat middle
# plateau (small w_lin); NMC is closer to a straight line (charging-facts.md names the
# eActros 600 as LFP and the eTGX as NMC).
_CURVES: dict[str, tuple[float, float, float, float, float]] = {
    # chemistry: (w_lin, w_lo, k_lo, w_hi, k_hi)
    "lfp": (0.15, 0.40, 0.05, 0.45, 0.05),
    "nmc": (0.75, 0.15, 0.06, 0.10, 0.08),
}

# CCS DC cable limit used for the heavy-truck presets: the facts file works its example
# with "a 500 A cable limit" (400 kW into a 650 V pack gives about 325 kW).
CCS_CABLE_LIMIT_A = 500.0


@dataclass(frozen=True, slots=True)
class BatteryParams:
    """Everything that defines a battery; presets are instances of this."""

    name: str
    capacity_kwh: float
    chemistry: Chemistry
    ocv_empty_v: float  # OCV at 0 % SoC
    ocv_full_v: float  # OCV at 100 % SoC
    internal_resistance_ohm: float
    max_voltage_v: float  # the EV's maximum voltage declared to the charger
    max_current_a: float  # constant-current phase limit (inlet/cable/pack)
    max_power_w: float  # the EV's DC charging power limit
    taper_start_soc: float = 80.0
    taper_end_c: float = 0.2


def _lo(x: float, k: float) -> float:
    return (1.0 - math.exp(-x / k)) / (1.0 - math.exp(-1.0 / k))


def _hi(x: float, k: float) -> float:
    floor = math.exp(-1.0 / k)
    return (math.exp((x - 1.0) / k) - floor) / (1.0 - floor)


class BatteryModel:
    """A charging truck battery. Positive current charges."""

    def __init__(
        self,
        capacity_kwh: float,
        soc_percent: float,
        *,
        chemistry: Chemistry = "lfp",
        ocv_empty_v: float = 672.0,
        ocv_full_v: float = 840.0,
        internal_resistance_ohm: float = 0.05,
        max_voltage_v: float = 900.0,
        max_current_a: float = CCS_CABLE_LIMIT_A,
        max_power_w: float = 400_000.0,
        taper_start_soc: float = 80.0,
        taper_end_c: float = 0.2,
        name: str = "custom",
    ) -> None:
        if capacity_kwh <= 0:
            raise ValueError("capacity_kwh must be positive")
        if not 0.0 <= soc_percent <= 100.0:
            raise ValueError("soc_percent must be within 0..100")
        if not 0.0 < ocv_empty_v < ocv_full_v:
            raise ValueError("need 0 < ocv_empty_v < ocv_full_v")
        if chemistry not in _CURVES:
            raise ValueError(f"unknown chemistry {chemistry!r}")
        if not 0.0 < taper_start_soc < 100.0:
            raise ValueError("taper_start_soc must be within 0..100 (exclusive)")
        if internal_resistance_ohm < 0 or max_current_a <= 0 or max_power_w <= 0:
            raise ValueError("resistance must be >= 0, current and power limits > 0")
        self.name = name
        self.capacity_kwh = capacity_kwh
        self.soc_percent = float(soc_percent)
        self.chemistry: Chemistry = chemistry
        self.ocv_empty_v = ocv_empty_v
        self.ocv_full_v = ocv_full_v
        self.internal_resistance_ohm = internal_resistance_ohm
        self.max_voltage_v = max_voltage_v
        self.max_current_a = max_current_a
        self.max_power_w = max_power_w
        self.taper_start_soc = taper_start_soc
        self.taper_end_c = taper_end_c
        self.stored_wh = 0.0  # integral of OCV*I dt: energy into the cells
        self.loss_wh = 0.0  # integral of I^2*R dt: heat in the internal resistance
        self.elapsed_s = 0.0

    # --- construction helpers -----------------------------------------------------------

    @classmethod
    def from_params(cls, params: BatteryParams, soc_percent: float) -> BatteryModel:
        return cls(
            params.capacity_kwh,
            soc_percent,
            chemistry=params.chemistry,
            ocv_empty_v=params.ocv_empty_v,
            ocv_full_v=params.ocv_full_v,
            internal_resistance_ohm=params.internal_resistance_ohm,
            max_voltage_v=params.max_voltage_v,
            max_current_a=params.max_current_a,
            max_power_w=params.max_power_w,
            taper_start_soc=params.taper_start_soc,
            taper_end_c=params.taper_end_c,
            name=params.name,
        )

    @classmethod
    def from_preset(cls, preset: str, soc_percent: float, **overrides: object) -> BatteryModel:
        """A preset battery; ``overrides`` replace BatteryParams fields (e.g. capacity_kwh)."""
        try:
            params = PRESETS[preset]
        except KeyError:
            raise KeyError(f"unknown battery preset {preset!r}; have {sorted(PRESETS)}") from None
        if overrides:
            params = dataclasses.replace(params, **overrides)  # type: ignore[arg-type]
        return cls.from_params(params, soc_percent)

    # --- electrical behaviour -----------------------------------------------------------

    def ocv_at(self, soc_percent: float) -> float:
        """Open-circuit voltage at a given SoC (clamped to 0..100)."""
        x = min(max(soc_percent / 100.0, 0.0), 1.0)
        w_lin, w_lo, k_lo, w_hi, k_hi = _CURVES[self.chemistry]
        f = w_lin * x + w_lo * _lo(x, k_lo) + w_hi * _hi(x, k_hi)
        return self.ocv_empty_v + (self.ocv_full_v - self.ocv_empty_v) * f

    def ocv(self) -> float:
        return self.ocv_at(self.soc_percent)

    def terminal_voltage(self, current_a: float = 0.0) -> float:
        """Pack terminal voltage while ``current_a`` flows in (OCV + I*R)."""
        return self.ocv() + current_a * self.internal_resistance_ohm

    @property
    def nominal_voltage_v(self) -> float:
        """OCV at 50 % SoC; used to turn the kWh capacity into Ah for C-rates."""
        return self.ocv_at(50.0)

    @property
    def capacity_ah(self) -> float:
        return self.capacity_kwh * 1000.0 / self.nominal_voltage_v

    @property
    def energy_wh(self) -> float:
        return self.capacity_kwh * 10.0 * self.soc_percent  # kWh * 1000 * soc/100

    def max_charge_current_a(self, soc_percent: float | None = None) -> float:
        """The EV's charge-current limit at ``soc_percent`` (default: present SoC).

        Constant ``max_current_a`` up to ``taper_start_soc``, then linear down to
        ``taper_end_c`` * C at 100 % (never above the CC value); a full pack takes nothing.
        """
        soc = self.soc_percent if soc_percent is None else soc_percent
        if soc >= 100.0:
            return 0.0
        cc = self.max_current_a
        if soc <= self.taper_start_soc:
            return cc
        end = min(self.taper_end_c * self.capacity_ah, cc)
        frac = (soc - self.taper_start_soc) / (100.0 - self.taper_start_soc)
        return cc + (end - cc) * frac

    def max_charge_power_w(self) -> float:
        """Power the EV accepts now: its current limit at present terminal voltage, capped."""
        i = self.max_charge_current_a()
        return min(self.max_power_w, i * self.terminal_voltage(i))

    # --- integration ------------------------------------------------------------------

    def charge(self, current_a: float, dt_s: float) -> None:
        """Let ``current_a`` flow in for ``dt_s`` seconds (explicit Euler step).

        SoC is clamped to 0..100; energy pushed beyond full still counts in ``stored_wh``
        (the model does not cover overcharge; the truck stops long before).
        """
        if dt_s < 0:
            raise ValueError("dt_s must be >= 0")
        ocv = self.ocv()
        stored = ocv * current_a * dt_s / 3600.0
        self.stored_wh += stored
        self.loss_wh += current_a * current_a * self.internal_resistance_ohm * dt_s / 3600.0
        self.elapsed_s += dt_s
        soc = self.soc_percent + stored / (self.capacity_kwh * 10.0)
        self.soc_percent = min(max(soc, 0.0), 100.0)

    def __repr__(self) -> str:
        return (
            f"BatteryModel({self.name!r}, {self.capacity_kwh} kWh, "
            f"soc={self.soc_percent:.2f} %, ocv={self.ocv():.1f} V)"
        )


# --- presets -------------------------------------------------------------------------------
# Capacities and DC maximum powers: charging-facts.md "Heavy trucks". Pack voltages are
# chosen inside the facts' "about 550-850 V" range and EV max voltages inside "850-920 V"
# (approx.). Max currents: the smaller of max power / mid-SoC pack voltage and the 500 A
# CCS cable limit. Internal resistances give about 2-3 % loss at full current (approx.).
PRESETS: dict[str, BatteryParams] = {
    # 621 kWh LFP, 800 V class, 400 kW CCS. LFP cells ~2.8 V empty / ~3.5 V full (OCV) at
    # an assumed 240 in series -> 672-840 V, plateau about 740-770 V; 400 kW / 760 V = 526 A,
    # so the 500 A cable limit binds (~385 kW on the plateau).
    "eactros600": BatteryParams(
        name="eactros600", capacity_kwh=621.0, chemistry="lfp",
        ocv_empty_v=672.0, ocv_full_v=840.0, internal_resistance_ohm=0.04,
        max_voltage_v=900.0, max_current_a=500.0, max_power_w=400_000.0,
    ),
    # 540 kWh, 250 kW max DC. Assumed NMC ~560-700 V; 250 kW / 625 V = 400 A.
    "fh-electric": BatteryParams(
        name="fh-electric", capacity_kwh=540.0, chemistry="nmc",
        ocv_empty_v=560.0, ocv_full_v=700.0, internal_resistance_ohm=0.05,
        max_voltage_v=850.0, max_current_a=400.0, max_power_w=250_000.0,
    ),
    # 480 kWh usable NMC, 375 kW CCS. Assumed 600-790 V; 375 kW / 700 V = 536 A, capped
    # at the 500 A cable limit (~350 kW mid-SoC).
    "etgx": BatteryParams(
        name="etgx", capacity_kwh=480.0, chemistry="nmc",
        ocv_empty_v=600.0, ocv_full_v=790.0, internal_resistance_ohm=0.05,
        max_voltage_v=870.0, max_current_a=500.0, max_power_w=375_000.0,
    ),
    # 624 kWh installed, 375 kW CCS. Assumed NMC 560-720 V; 375 kW / 650 V = 577 A, capped
    # at 500 A: the facts' "650 V pack at a 500 A cable limit gives about 325 kW" case.
    "scania-bev": BatteryParams(
        name="scania-bev", capacity_kwh=624.0, chemistry="nmc",
        ocv_empty_v=560.0, ocv_full_v=720.0, internal_resistance_ohm=0.05,
        max_voltage_v=850.0, max_current_a=500.0, max_power_w=375_000.0,
    ),
}
