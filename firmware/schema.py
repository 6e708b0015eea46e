"""The one way a config section is declared: a frozen pydantic model, strict and closed.

Every section of the config file (the charger's own in ``firmware/config.py``, and those
the parts own: ocpp, tariff, screen, payment, card_reader, console, ...) is a ``Section``
subclass: each key has a type, a unit in its name or description, and a range taken from
the hardware or the standard. ``parse_section`` turns pydantic's report into the one
``ConfigError`` the rest of the product knows: the full key and the reason, in one line.

Strict: TOML's booleans are not integers and strings are not numbers; NaN and infinity are
refused; an unknown key is an error (a misspelt key that is silently ignored is a setting
that silently does not apply).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

S = TypeVar("S", bound="Section")


class ConfigError(ValueError):
    """A bad config key: ``key`` is the full path (``connector[1].type``), ``reason`` one
    sentence. (Also importable from firmware.config, where it has always been.)"""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"config key '{key}': {reason}")
        self.key = key
        self.reason = reason


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False,
                              validate_default=True)


def _key(path: str, loc: tuple[int | str, ...]) -> str:
    key = path
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key = f"{key}.{part}" if key else str(part)
    return key or "(file)"


def _reason(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (misspelt?)"
    if error["type"] == "missing":
        return "is required"
    msg = str(error["msg"])
    if msg.startswith("Value error, "):  # a validator's own sentence
        msg = msg[len("Value error, "):]
    return msg[:1].lower() + msg[1:]


def parse_section(model: type[S], data: Any, path: str) -> S:
    """Validate one table of the config file; the first problem raises ``ConfigError``."""
    if not isinstance(data, dict):
        raise ConfigError(path or "(file)", "must be a table")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc, reason = tuple(first["loc"]), _reason(dict(first))
        # A whole-section check names its key first: "outputs: each output once".
        named = re.match(r"^(\w+): (.*)$", reason, re.S)
        if not loc and named and named.group(1) in model.model_fields:
            loc, reason = (named.group(1),), named.group(2)
        raise ConfigError(_key(path, loc), reason) from None
    except (RecursionError, MemoryError):
        raise ConfigError(path or "(file)", "nested too deeply") from None
