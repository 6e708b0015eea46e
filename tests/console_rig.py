"""A real `chargebay run` on simulated hardware with its console, and a terminal on it.

``Charging`` starts the process (examples/sim.toml with a private control port, state
directory and the console settings a test wants), reads `console on /dev/pts/N` from its
output, and drives trucks through the simulator's control interface. ``Terminal`` is the
engineer's end of the pty: raw bytes in and out, read until a prompt."""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import sys
import time
import tty
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CARD = "04A1B2C3D4E5F6"
SERVICE = ("tech", "tech-demo")  # the demo users documented in examples/sim.toml
VIEWER = ("guest", "guest-demo")
PROMPT = re.compile(rb"(tech|guest)@CB-SIM-0001[#>] $")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sim_file(tmp: Path, console: dict[str, str] | None = None) -> tuple[Path, int]:
    """examples/sim.toml with its own control port and state directory; ``console``
    replaces keys of its [console] section (values as TOML text)."""
    control = free_port()
    text = (ROOT / "examples" / "sim.toml").read_text()
    text = text.replace('csms_url = "ws://127.0.0.1:9000/ocpp"',
                        f'csms_url = "ws://127.0.0.1:9000/ocpp"\nstate_dir = "{tmp / "state"}"')
    text = text.replace('control = "127.0.0.1:7781"', f'control = "127.0.0.1:{control}"')
    for key, value in (console or {}).items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    path = tmp / "sim.toml"
    path.write_text(text)
    return path, control


class Charger:
    def __init__(self, path: Path, control: int) -> None:
        self.control = control
        self.out_path = path.parent / "charger.out"
        self.err_path = path.parent / "charger.err"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware.cli", "run", str(path)], cwd=ROOT, env=env,
            stdout=open(self.out_path, "wb"), stderr=open(self.err_path, "wb"))  # noqa: SIM115

    def console_name(self, within: float = 30.0, nth: int = 1) -> str:
        end = time.monotonic() + within
        while time.monotonic() < end:
            names = re.findall(r"console on (\S+)", self.out_path.read_text())
            if len(names) >= nth:
                return names[nth - 1]
            assert self.proc.poll() is None, self.err_path.read_text()
            time.sleep(0.1)
        raise AssertionError(f"no console line: {self.err_path.read_text()[-2000:]}")

    def drive(self, line: str) -> str:
        with socket.create_connection(("127.0.0.1", self.control), timeout=10) as s:
            s.sendall(line.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        return reply.decode().strip()

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.drive("status"))
        return result

    def until_phase(self, evse: int, phase: str, within: float = 60.0) -> None:
        end = time.monotonic() + within
        status: dict[str, Any] = {}
        while time.monotonic() < end:
            try:
                status = self.status()
                if status[str(evse)]["phase"] == phase:
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"EVSE {evse} not {phase} within {within} s: {status}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.err_path.read_text()


class Terminal:
    """The engineer's side of the console's pty (raw, as picocom would set it)."""

    def __init__(self, name: str) -> None:
        self.fd = os.open(name, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.seen = b""

    def send(self, data: bytes | str) -> None:
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    def read_for(self, seconds: float) -> bytes:
        got = b""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            got += self._read()
        self.seen += got
        return got

    def _read(self) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], 0.05)
        if not ready:
            return b""
        try:
            return os.read(self.fd, 65536)
        except OSError:  # a pty master whose other side nobody has open (yet)
            time.sleep(0.05)
            return b""

    def until(self, pattern: bytes | re.Pattern[bytes], within: float = 15.0) -> bytes:
        """Everything read until ``pattern`` appears (a regex or bytes)."""
        got = b""
        end = time.monotonic() + within
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        while time.monotonic() < end:
            if regex.search(got):
                self.seen += got
                return got
            got += self._read()
        raise AssertionError(f"{pattern!r} not seen within {within} s; got {got[-1500:]!r}")

    def command(self, line: str, within: float = 15.0) -> str:
        """Run ``line`` at the shell prompt; its output (without echo and prompt)."""
        self.send(line + "\r")
        got = self.until(PROMPT, within)
        text = got.decode("ascii")
        text = text[text.find("\r\n") + 2:] if line in text else text
        return PROMPT.sub(b"", text.encode()).decode().replace("\r\n", "\n").rstrip("\n")

    def login(self, user: str, password: str) -> str:
        self.send("\r")
        self.until(b"login: ")
        self.send(user + "\r")
        self.until(b"password: ")
        self.send(password + "\r")
        return self.until(PROMPT).decode()

    def logout(self) -> None:
        self.send("logout\r")
        self.until(b"login: ")

    def close(self) -> None:
        os.close(self.fd)
