"""The physical components of the device model: ChargingStation, EVSE and Connector
(OCPP 2.0.1 Part 2, B "Provisioning", and the appendix of referenced components and
variables). Their values are the hardware's state, read when asked, never stored:
AvailabilityState, Available, SupplyPhases, the EVSE's Power and the Connector's
ConnectorType. All read-only.

    physical = PhysicalComponents(config, status)   # status(evse_id) -> core Status
    physical.knows(component_name) -> bool
    physical.get(component, evse, connector, variable) -> (attributeStatus, value)
    physical.report() -> [ReportDataType, ...]        # for GetBaseReport
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware.config import ChargerConfig
from firmware.core.session import Status
from firmware.ocpp.v201 import mapping

NAMES = ("ChargingStation", "EVSE", "Connector")
# ConnectorEnumType (Part 2, 2.0.1): CCS Combo 2 is cCCS2; the enum has no MCS yet.
_CONNECTOR_TYPE = {"CCS2": "cCCS2", "MCS": "Unknown"}
# SupplyPhases: 0 means DC (the appendix); the cabinet itself takes three-phase AC.
_STATION_PHASES = "3"
_DC_PHASES = "0"
_AVAILABILITY = "Available,Occupied,Reserved,Unavailable,Faulted"


@dataclass(frozen=True, slots=True)
class _Var:
    name: str
    data_type: str
    values: str = ""
    max_limit: float | None = None
    unit: str | None = None


class PhysicalComponents:
    def __init__(self, config: ChargerConfig, status: Callable[[int], Status]) -> None:
        self.config = config
        self.status = status
        self.evse_ids = tuple(c.evse_id for c in config.connectors)
        stage = config.power_stage
        # The allocation may give one output every module: the EVSE's power limit is
        # the cabinet's.
        self.max_power_w = stage.module_count * stage.module_rating_kw * 1000.0

    def knows(self, component: str) -> bool:
        return component in NAMES

    def _vars(self, component: str) -> tuple[_Var, ...]:
        common = (_Var("AvailabilityState", "OptionList", _AVAILABILITY),
                  _Var("Available", "boolean"), _Var("SupplyPhases", "integer"))
        if component == "EVSE":
            return (*common, _Var("Power", "decimal", max_limit=self.max_power_w, unit="W"))
        if component == "Connector":
            return (*common, _Var("ConnectorType", "string"))
        return common

    def _state(self, evse_id: int | None) -> str:
        if evse_id is not None:
            return mapping.CONNECTOR_STATUS[self.status(evse_id).phase]
        states = {mapping.CONNECTOR_STATUS[self.status(e).phase] for e in self.evse_ids}
        for whole in ("Unavailable", "Faulted"):  # the station is so only when all are
            if states == {whole}:
                return whole
        return "Available"

    def _value(self, component: str, evse_id: int | None, variable: str) -> str:
        if variable == "AvailabilityState":
            return self._state(evse_id)
        if variable == "Available":
            return "true"
        if variable == "SupplyPhases":
            return _STATION_PHASES if component == "ChargingStation" else _DC_PHASES
        assert evse_id is not None
        if variable == "Power":
            st = self.status(evse_id)
            return f"{st.voltage_v * st.current_a:.0f}"
        connector = next(c for c in self.config.connectors if c.evse_id == evse_id)
        return _CONNECTOR_TYPE.get(connector.connector_type, "Unknown")

    def get(self, component: str, evse: dict[str, Any] | None, variable: str,
            attribute: str = "Actual") -> tuple[str, str | None]:
        """(attributeStatus, value) per GetVariableResultType; ``evse`` as the CSMS sent
        it (``id``, ``connector_id``)."""
        evse_id = evse.get("id") if evse else None
        connector = evse.get("connector_id", evse.get("connectorId")) if evse else None
        if component == "ChargingStation":
            evse_id = None
        elif evse_id not in self.evse_ids or (component == "Connector"
                                              and connector not in (None, 1)):
            return "UnknownComponent", None
        if variable not in {v.name for v in self._vars(component)}:
            return "UnknownVariable", None
        if attribute != "Actual":
            return "NotSupportedAttributeType", None
        return "Accepted", self._value(component, evse_id, variable)

    def report(self) -> list[dict[str, Any]]:
        out = []
        targets: list[tuple[str, dict[str, Any] | None]] = [("ChargingStation", None)]
        for e in self.evse_ids:
            targets.append(("EVSE", {"id": e}))
            targets.append(("Connector", {"id": e, "connectorId": 1}))
        for component, evse in targets:
            name: dict[str, Any] = {"name": component}
            if evse is not None:
                name["evse"] = evse
            evse_id = evse["id"] if evse else None
            for var in self._vars(component):
                characteristics: dict[str, Any] = {"dataType": var.data_type,
                                                   "supportsMonitoring": False}
                if var.values:
                    characteristics["valuesList"] = var.values
                if var.max_limit is not None:
                    characteristics["maxLimit"] = var.max_limit
                if var.unit:
                    characteristics["unit"] = var.unit
                out.append({"component": name, "variable": {"name": var.name},
                            "variableAttribute": [{
                                "type": "Actual", "mutability": "ReadOnly",
                                "value": self._value(component, evse_id, var.name)}],
                            "variableCharacteristics": characteristics})
        return out
