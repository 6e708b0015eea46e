"""The ``[ocpp]`` section of the charger config (any OCPP version).

    [ocpp]
    csms_url = "wss://csms.example.net/ocpp"   # the charge point id is appended (OCPP-J)
    security_profile = 2                        # 1 basic auth, 2 + TLS, 3 TLS client cert
    basic_auth_password = "..."                 # profiles 1 and 2
    ca_file = "/etc/chargebay/csms-ca.pem"      # profiles 2 and 3: checks the CSMS
    client_cert = "/etc/chargebay/cp.pem"       # profile 3
    client_key = "/etc/chargebay/cp.key"
    state_dir = "/var/lib/chargebay"            # device model, auth cache, message queue
    on_storage_loss = "stop"                    # or "continue" (firmware/ocpp/queue.py)
    [ocpp.variables]                            # device-model defaults, "Component.Variable"
    "SampledDataCtrlr.TxUpdatedInterval" = "30"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class OcppSettingsError(ValueError):
    """A bad ``[ocpp]`` key. Carries ``key`` and ``reason`` like firmware.config's
    ConfigError, which the config loader turns it into; this module does not import the
    loader (the loader imports this module)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"config key '{key}': {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class OcppSettings:
    csms_url: str = "ws://127.0.0.1:9000/ocpp"
    security_profile: int = 1
    basic_auth_password: str | None = None
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    state_dir: str = "var/ocpp"
    variables: dict[tuple[str, str], str] = field(default_factory=dict)
    # The state directory failing mid-session (disk full, read-only): "stop" ends the
    # running sessions and takes no new ones until it writes again; "continue" charges
    # on with billing records in memory only (lost on a power cut). Default stop: a
    # record the station cannot keep is energy it cannot bill or prove (docs/ocpp.md).
    on_storage_loss: str = "stop"


def parse(section: dict[str, Any]) -> OcppSettings:
    known = {"csms_url", "security_profile", "basic_auth_password", "ca_file", "client_cert",
             "client_key", "state_dir", "variables", "on_storage_loss"}
    for key in section:
        if key not in known:
            raise OcppSettingsError(f"ocpp.{key}",
                                    f"unknown key; known: {', '.join(sorted(known))}")

    def text(key: str, default: str | None) -> str | None:
        value = section.get(key, default)
        if value is not None and (not isinstance(value, str) or not value):
            raise OcppSettingsError(f"ocpp.{key}", "must be a non-empty string")
        return value

    url = text("csms_url", OcppSettings.csms_url) or OcppSettings.csms_url
    if not url.startswith(("ws://", "wss://")):
        raise OcppSettingsError("ocpp.csms_url", "must start with ws:// or wss://")
    profile = section.get("security_profile", 1)
    if profile not in (1, 2, 3) or isinstance(profile, bool):
        raise OcppSettingsError("ocpp.security_profile", "must be 1, 2 or 3")
    if profile >= 2 and not url.startswith("wss://"):
        raise OcppSettingsError("ocpp.csms_url", f"security profile {profile} needs wss://")
    if profile == 1 and url.startswith("wss://"):
        raise OcppSettingsError("ocpp.security_profile", "profile 1 is without TLS; use 2 for wss")
    if profile == 3 and not (section.get("client_cert") and section.get("client_key")):
        raise OcppSettingsError("ocpp.client_cert", "security profile 3 needs client_cert and "
                          "client_key")
    variables: dict[tuple[str, str], str] = {}
    raw = section.get("variables", {})
    if not isinstance(raw, dict):
        raise OcppSettingsError("ocpp.variables", "must be a table")
    for name, value in raw.items():
        component, _, variable = name.partition(".")
        if not variable or not isinstance(value, str | int | bool):
            raise OcppSettingsError(f"ocpp.variables.{name}",
                              "use \"Component.Variable\" = value")
        variables[(component, variable)] = (str(value).lower() if isinstance(value, bool)
                                            else str(value))
    on_loss = section.get("on_storage_loss", "stop")
    if on_loss not in ("stop", "continue"):
        raise OcppSettingsError("ocpp.on_storage_loss", 'must be "stop" or "continue"')
    return OcppSettings(url, int(profile), text("basic_auth_password", None),
                        text("ca_file", None), text("client_cert", None),
                        text("client_key", None),
                        text("state_dir", OcppSettings.state_dir) or "var/ocpp", variables,
                        on_storage_loss=str(on_loss))
