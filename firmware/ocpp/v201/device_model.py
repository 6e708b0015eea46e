"""The OCPP 2.0.1 device model of the station's controllers (Part 2, B "Provisioning").

Components and variables the OCA Core profile needs, with their data type, mutability and
default; values set by the CSMS (SetVariables) persist in SQLite and survive restarts.
Read-only variables refuse writes; write-only ones (BasicAuthPassword) refuse reads;
changes the running connection cannot take are answered RebootRequired.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("chargebay.ocpp")

_MEASURANDS = ("Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,"
               "SoC")
_ALL_MEASURANDS = _MEASURANDS + ",Current.Offered,Power.Offered"


@dataclass(frozen=True, slots=True)
class Variable:
    component: str
    name: str
    default: str
    data_type: str = "integer"  # integer, decimal, boolean, string, MemberList
    mutability: str = "ReadWrite"  # ReadOnly, WriteOnly, ReadWrite
    instance: str | None = None
    reboot: bool = False  # a change takes effect after a reboot
    values: str = ""  # MemberList: the allowed members, comma separated
    minimum: int | None = None


def _v(component: str, name: str, default: str, **kw: Any) -> Variable:
    return Variable(component, name, default, **kw)


_TX_POINTS = "ParkingBayOccupancy,EVConnected,Authorized,DataSigned,PowerPathClosed,EnergyTransfer"

VARIABLES: tuple[Variable, ...] = (
    _v("OCPPCommCtrlr", "HeartbeatInterval", "300", minimum=1),
    # ReadOnly: the running link's response timeout is set when it connects.
    _v("OCPPCommCtrlr", "MessageTimeout", "30", instance="Default", mutability="ReadOnly"),
    _v("OCPPCommCtrlr", "MessageAttempts", "3", instance="TransactionEvent", minimum=1),
    _v("OCPPCommCtrlr", "MessageAttemptInterval", "60", instance="TransactionEvent", minimum=0),
    _v("OCPPCommCtrlr", "OfflineThreshold", "60", minimum=0),
    _v("OCPPCommCtrlr", "RetryBackOffWaitMinimum", "10", minimum=0),
    _v("OCPPCommCtrlr", "RetryBackOffRandomRange", "10", minimum=0),
    _v("OCPPCommCtrlr", "RetryBackOffRepeatTimes", "5", minimum=0),
    _v("OCPPCommCtrlr", "NetworkConfigurationPriority", "0", data_type="string", reboot=True),
    _v("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "3", minimum=1),
    _v("OCPPCommCtrlr", "ResetRetries", "1", minimum=0),
    _v("OCPPCommCtrlr", "WebSocketPingInterval", "30", minimum=0),
    # No file transfer is implemented yet (GetLog, firmware update): what it would use.
    _v("OCPPCommCtrlr", "FileTransferProtocols", "HTTPS", data_type="MemberList",
       mutability="ReadOnly", values="FTP,FTPS,HTTP,HTTPS,SFTP"),
    # DC: the core releases the lock when the session ends, whoever disconnects.
    _v("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", "true", data_type="boolean",
       mutability="ReadOnly"),
    _v("TxCtrlr", "TxStartPoint", "PowerPathClosed", data_type="MemberList", values=_TX_POINTS),
    _v("TxCtrlr", "TxStopPoint", "EVConnected,Authorized", data_type="MemberList",
       values=_TX_POINTS),
    _v("TxCtrlr", "EVConnectionTimeOut", "60", minimum=1),
    _v("TxCtrlr", "StopTxOnEVSideDisconnect", "true", data_type="boolean",
       mutability="ReadOnly"),
    _v("TxCtrlr", "StopTxOnInvalidId", "true", data_type="boolean"),
    _v("TxCtrlr", "MaxEnergyOnInvalidId", "0", minimum=0),
    _v("TxCtrlr", "TxBeforeAcceptedEnabled", "false", data_type="boolean"),
    _v("DeviceDataCtrlr", "ItemsPerMessage", "100", mutability="ReadOnly",
       instance="GetReport"),
    _v("DeviceDataCtrlr", "ItemsPerMessage", "50", mutability="ReadOnly",
       instance="GetVariables"),
    _v("DeviceDataCtrlr", "ItemsPerMessage", "50", mutability="ReadOnly",
       instance="SetVariables"),
    _v("DeviceDataCtrlr", "BytesPerMessage", "65000", mutability="ReadOnly",
       instance="GetReport"),
    # Issue 16: a request longer than these is refused before any work (firmware/ocpp/link.py)
    _v("DeviceDataCtrlr", "BytesPerMessage", "65000", mutability="ReadOnly",
       instance="GetVariables"),
    _v("DeviceDataCtrlr", "BytesPerMessage", "65000", mutability="ReadOnly",
       instance="SetVariables"),
    _v("ClockCtrlr", "DateTime", "", data_type="string", mutability="ReadOnly"),
    _v("ClockCtrlr", "TimeSource", "Heartbeat", data_type="MemberList",
       values="Heartbeat,NTP,GPS,RealTimeClock,MobileNetwork,RadioTimeTransmitter"),
    _v("SecurityCtrlr", "SecurityProfile", "1", mutability="ReadOnly"),
    _v("SecurityCtrlr", "Identity", "", data_type="string", mutability="ReadOnly"),
    _v("SecurityCtrlr", "OrganizationName", "chargebay", data_type="string"),
    _v("SecurityCtrlr", "BasicAuthPassword", "", data_type="string", mutability="WriteOnly",
       reboot=True),
    _v("SecurityCtrlr", "CertificateEntries", "0", mutability="ReadOnly"),
    _v("SampledDataCtrlr", "Enabled", "true", data_type="boolean"),
    _v("SampledDataCtrlr", "TxUpdatedInterval", "30", minimum=0),
    _v("SampledDataCtrlr", "TxUpdatedMeasurands", _MEASURANDS, data_type="MemberList",
       values=_ALL_MEASURANDS),
    _v("SampledDataCtrlr", "TxStartedMeasurands", "Energy.Active.Import.Register",
       data_type="MemberList", values=_ALL_MEASURANDS),
    _v("SampledDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register",
       data_type="MemberList", values=_ALL_MEASURANDS),
    _v("SampledDataCtrlr", "TxEndedInterval", "0", minimum=0),
    _v("AlignedDataCtrlr", "Enabled", "true", data_type="boolean"),
    _v("AlignedDataCtrlr", "Interval", "900", minimum=0),
    _v("AlignedDataCtrlr", "Measurands", "Energy.Active.Import.Register",
       data_type="MemberList", values=_ALL_MEASURANDS),
    _v("AlignedDataCtrlr", "TxEndedInterval", "0", minimum=0),
    _v("AlignedDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register",
       data_type="MemberList", values=_ALL_MEASURANDS),
    _v("AuthCtrlr", "Enabled", "true", data_type="boolean"),
    _v("AuthCtrlr", "AuthorizeRemoteStart", "false", data_type="boolean"),
    _v("AuthCtrlr", "LocalAuthorizeOffline", "true", data_type="boolean"),
    _v("AuthCtrlr", "LocalPreAuthorize", "false", data_type="boolean"),
    _v("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "false", data_type="boolean"),
    _v("AuthCacheCtrlr", "Enabled", "true", data_type="boolean"),
    _v("AuthCacheCtrlr", "LifeTime", "86400", minimum=1),
    _v("AuthCacheCtrlr", "Storage", "1000", mutability="ReadOnly"),
    _v("LocalAuthListCtrlr", "Enabled", "true", data_type="boolean"),
    _v("LocalAuthListCtrlr", "Entries", "0", mutability="ReadOnly"),
    _v("LocalAuthListCtrlr", "ItemsPerMessage", "100", mutability="ReadOnly"),
    _v("LocalAuthListCtrlr", "BytesPerMessage", "65000", mutability="ReadOnly"),
    _v("LocalAuthListCtrlr", "Storage", "10000", mutability="ReadOnly"),
)

_KEY = tuple[str, str, str | None]


class DeviceModel:
    def __init__(self, path: str | Path, overrides: dict[tuple[str, str], str] | None = None
                 ) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS variable (component TEXT, name TEXT, "
                        "instance TEXT, value TEXT, PRIMARY KEY (component, name, instance))")
        self.spec: dict[_KEY, Variable] = {(v.component, v.name, v.instance): v
                                           for v in VARIABLES}
        self.values = {k: v.default for k, v in self.spec.items()}
        for (component, name), value in (overrides or {}).items():  # from the config file
            for key in self._keys(component, name):
                self.values[key] = value
        for component, name, instance, value in self.db.execute(
                "SELECT component, name, instance, value FROM variable"):
            key = (component, name, instance or None)
            if key in self.spec:
                self.values[key] = value

    def _keys(self, component: str, name: str) -> list[_KEY]:
        return [k for k in self.spec if k[0] == component and k[1] == name]

    def get(self, component: str, name: str, instance: str | None = None) -> str:
        """The value for the station's own modules (any instance if none is named)."""
        key = (component, name, instance)
        if key not in self.values:
            keys = self._keys(component, name)
            if not keys:
                raise KeyError(f"{component}.{name} is not in the device model")
            key = keys[0]
        return self.values[key]

    def get_int(self, component: str, name: str, instance: str | None = None) -> int:
        return int(self.get(component, name, instance))

    def get_bool(self, component: str, name: str) -> bool:
        return self.get(component, name) == "true"

    def set_internal(self, component: str, name: str, value: str) -> None:
        """The station's own updates (e.g. HeartbeatInterval from BootNotification)."""
        for key in self._keys(component, name):
            self.values[key] = value
            self._store(key, value)

    def _store(self, key: _KEY, value: str) -> None:
        try:
            self.db.execute("INSERT OR REPLACE INTO variable VALUES (?, ?, ?, ?)",
                            (key[0], key[1], key[2] or "", value))
        except sqlite3.Error as exc:  # disk full / read-only: in effect until a restart
            log.error("device model: %s.%s not persisted (%s)", key[0], key[1], exc)

    # --- what the CSMS asks (GetVariables / SetVariables / GetBaseReport) ----------------

    def _find(self, component: str, name: str, instance: str | None) -> Variable | str:
        if not any(k[0] == component for k in self.spec):
            return "UnknownComponent"
        key = (component, name, instance)
        if key in self.spec:
            return self.spec[key]
        keys = self._keys(component, name)
        if instance is None and len(keys) == 1:
            return self.spec[keys[0]]
        return "UnknownVariable"

    def get_variable(self, component: str, name: str, instance: str | None,
                     attribute: str = "Actual") -> tuple[str, str | None]:
        """(attributeStatus, value) per GetVariableResultType."""
        found = self._find(component, name, instance)
        if isinstance(found, str):
            return found, None
        if attribute != "Actual":
            return "NotSupportedAttributeType", None
        if found.mutability == "WriteOnly":
            return "Rejected", None
        return "Accepted", self.values[(found.component, found.name, found.instance)]

    def set_variable(self, component: str, name: str, instance: str | None, value: str,
                     attribute: str = "Actual") -> str:
        """attributeStatus per SetVariableResultType."""
        found = self._find(component, name, instance)
        if isinstance(found, str):
            return found
        if attribute != "Actual":
            return "NotSupportedAttributeType"
        if found.mutability == "ReadOnly" or not _valid(found, value):
            return "Rejected"
        key = (found.component, found.name, found.instance)
        self.values[key] = value
        self._store(key, value)
        return "RebootRequired" if found.reboot else "Accepted"

    def report(self, base: str) -> list[dict[str, Any]]:
        """ReportDataType entries for GetBaseReport (ConfigurationInventory: the writable
        ones; FullInventory and SummaryInventory: all of them)."""
        out = []
        for key, var in self.spec.items():
            if base == "ConfigurationInventory" and var.mutability == "ReadOnly":
                continue
            variable: dict[str, Any] = {"name": var.name}
            if var.instance:
                variable["instance"] = var.instance
            attribute: dict[str, Any] = {"type": "Actual", "mutability": var.mutability}
            if var.mutability != "WriteOnly":
                attribute["value"] = self.values[key]
            characteristics: dict[str, Any] = {"dataType": _DATA_TYPES[var.data_type],
                                               "supportsMonitoring": False}
            if var.values:
                characteristics["valuesList"] = var.values
            out.append({"component": {"name": var.component}, "variable": variable,
                        "variableAttribute": [attribute],
                        "variableCharacteristics": characteristics})
        return out

    def close(self) -> None:
        self.db.close()


_DATA_TYPES = {"integer": "integer", "decimal": "decimal", "boolean": "boolean",
               "string": "string", "MemberList": "MemberList"}


def _valid(var: Variable, value: str) -> bool:
    if var.data_type == "integer":
        try:
            number = int(value)
        except ValueError:
            return False
        return var.minimum is None or number >= var.minimum
    if var.data_type == "boolean":
        return value in ("true", "false")
    if var.data_type == "MemberList":
        allowed = set(var.values.split(","))
        members = [m for m in value.split(",") if m]
        return bool(members) and all(m in allowed for m in members)
    return len(value) <= 1000
