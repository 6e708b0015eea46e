"""The [console] section of the config file.

    [console]
    device = "/dev/ttyGS0"      # or "pty": a pseudo-terminal (logged as `console on ...`)
    baud = 115200
    max_failures = 5            # failed logins in a row before the console locks
    lockout_s = 300
    idle_logout_s = 600
    [console.users.tech]
    role = "service"
    password = "scrypt$16384$8$1$..."   # from `chargebay passwd`
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from firmware.console.passwords import parse_hash
from firmware.schema import Section, parse_section

# The baud rates a UART / USB gadget console is set to (POSIX termios speeds).
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
USER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class ConsoleUser(Section):
    role: Literal["viewer", "service"]
    password: str  # a salted scrypt hash (`chargebay passwd`), never the password

    @field_validator("password")
    @classmethod
    def _a_hash(cls, value: str) -> str:
        parse_hash(value)  # ValueError names what is wrong with it
        return value


class ConsoleSettings(Section):
    device: str = Field(min_length=1)
    baud: int = 115200
    users: dict[str, ConsoleUser] = Field(min_length=1)
    max_failures: int = Field(5, ge=1, le=20)
    lockout_s: int = Field(300, ge=1, le=86400)
    idle_logout_s: int = Field(600, ge=10, le=86400)
    diag_dir: str = ""  # where `diag` writes its archive ("" : the system's temp dir)

    @field_validator("baud")
    @classmethod
    def _baud(cls, value: int) -> int:
        if value not in BAUD_RATES:
            raise ValueError(f"must be one of {', '.join(map(str, BAUD_RATES))}")
        return value

    @field_validator("users")
    @classmethod
    def _names(cls, value: dict[str, ConsoleUser]) -> dict[str, ConsoleUser]:
        for name in value:
            if not USER_NAME.fullmatch(name):
                raise ValueError(f"user name {name!r}: lower-case letters, digits, _ and -,"
                                 " at most 32, starting with a letter")
        return value


def parse(section: Any) -> ConsoleSettings:
    return parse_section(ConsoleSettings, section, "console")
