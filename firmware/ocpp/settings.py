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

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from firmware.schema import ConfigError, Section, parse_section

# A bad [ocpp] key is the config's own ConfigError (the name stays for older callers).
OcppSettingsError = ConfigError

# NetworkConnectionProfile.ocppCsmsUrl is string[512] (OCPP 2.0.1 Part 2, 2.xx); the
# BasicAuthPassword at most 40 characters (SecurityCtrlr.BasicAuthPassword, string[40]).
URL_MAX = 512
PASSWORD_MAX = 40


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


_Path = Annotated[str, Field(min_length=1, max_length=4096)]


class _Ocpp(Section):
    csms_url: Annotated[str, Field(min_length=1, max_length=URL_MAX)] = OcppSettings.csms_url
    security_profile: Annotated[int, Field(ge=1, le=3)] = 1
    basic_auth_password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX)] | None \
        = None
    ca_file: _Path | None = None
    client_cert: _Path | None = None
    client_key: _Path | None = None
    state_dir: _Path = OcppSettings.state_dir
    variables: dict[str, str | int | bool] = {}
    on_storage_loss: Literal["stop", "continue"] = "stop"

    @model_validator(mode="after")
    def _consistent(self) -> _Ocpp:
        url = urlsplit(self.csms_url)
        if url.scheme not in ("ws", "wss"):
            raise ValueError("csms_url: must start with ws:// or wss://")
        try:
            port = url.port  # raises for a port that is not a number or out of 0..65535
        except ValueError:
            raise ValueError("csms_url: the port must be a number 1..65535") from None
        if not url.hostname or port == 0:
            raise ValueError("csms_url: needs a host (and a port 1..65535 if any), e.g. "
                             "wss://csms.example.net/ocpp")
        if url.query or url.fragment or any(c.isspace() for c in self.csms_url):
            raise ValueError("csms_url: no query, fragment or white space (the charge "
                             "point id is appended to the path, OCPP-J)")
        profile = self.security_profile
        if profile >= 2 and url.scheme != "wss":
            raise ValueError(f"csms_url: security profile {profile} needs wss://")
        if profile == 1 and url.scheme == "wss":
            raise ValueError("security_profile: profile 1 is without TLS; use 2 for wss")
        if profile == 3 and not (self.client_cert and self.client_key):
            raise ValueError("client_cert: security profile 3 needs client_cert and "
                             "client_key")
        return self


def parse(section: dict[str, Any],
          known_variables: Collection[tuple[str, str]] | None = None) -> OcppSettings:
    """The [ocpp] table; ``known_variables`` (the device model's "Component.Variable"
    names) makes a misspelt variable an error instead of a default that never applies."""
    s = parse_section(_Ocpp, section, "ocpp")
    variables: dict[tuple[str, str], str] = {}
    for name, value in s.variables.items():
        component, _, variable = name.partition(".")
        key = f"ocpp.variables.{name}"
        if not component or not variable:
            raise ConfigError(key, 'use "Component.Variable" = value')
        if known_variables is not None and (component, variable) not in known_variables:
            raise ConfigError(key, "unknown device-model variable (misspelt?)")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if len(text) > 1000:  # the longest OCPP 2.0.1 VariableAttribute value is 1000
            raise ConfigError(key, "longer than 1000 characters")
        variables[(component, variable)] = text
    return OcppSettings(s.csms_url, s.security_profile, s.basic_auth_password, s.ca_file,
                        s.client_cert, s.client_key, s.state_dir, variables,
                        on_storage_loss=s.on_storage_loss)
