"""`chargebay console` as a person uses it: in a terminal (tmux), keys typed one line at a
time, the screen read back. Against `chargebay run examples/sim.toml` with its console on
a pty: an engineer logs in and sees the charging session in `status`, a viewer cannot
`unlock`, the transcript is saved, and `reboot` brings the charger back with its console.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_rig import CARD, ROOT, Charger, sim_file

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it)")


class Screen:
    def __init__(self, socket: str, command: str) -> None:
        assert TMUX is not None
        self.base = [TMUX, "-L", socket]
        subprocess.run([*self.base, "new-session", "-d", "-s", "cb", "-x", "150", "-y", "50",
                        command], check=True, cwd=ROOT)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "cb", *keys], check=True)

    def type(self, line: str) -> None:
        self.keys("-l", line)  # literally, as typed
        self.keys("Enter")

    def text(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", "cb", "-S", "-200"],
                              check=True, capture_output=True, text=True).stdout

    def wait_for(self, words: str, within: float = 20.0, count: int = 1) -> str:
        end = time.monotonic() + within
        while time.monotonic() < end:
            screen = self.text()
            if screen.count(words) >= count:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{words!r} not on the screen within {within} s:\n{self.text()}")

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


@pytest.fixture()
def charger(tmp_path: Path) -> Iterator[Charger]:
    path, control = sim_file(tmp_path)
    c = Charger(path, control)
    try:
        c.until_phase(1, "Available", 30)
        yield c
    finally:
        err = c.stop()
        assert "Traceback" not in err, err[-3000:]


def test_an_engineer_at_the_cabinet(charger: Charger, tmp_path: Path) -> None:
    transcript = tmp_path / "transcript.log"
    pts = charger.console_name()
    screen = Screen(f"chargebay-{os.getpid()}-{tmp_path.name}",
                    f"{sys.executable} -m firmware.cli console {pts} --log {transcript}")
    try:
        screen.wait_for("Ctrl-] quits")
        # A truck charging on bay 1 (driven through the simulator, as a driver would).
        assert charger.drive("plug 1 eactros600 soc=20") == "ok"
        assert charger.drive(f"authorize 1 rfid {CARD}") == "ok"
        charger.until_phase(1, "Charging", 60)
        screen.keys("Enter")
        screen.wait_for("login:")
        screen.type("tech")
        screen.wait_for("password:")
        screen.type("tech-demo")
        screen.wait_for("tech@CB-SIM-0001#")
        screen.type("status")
        shown = screen.wait_for("active errors", count=2)
        assert "EVSE 1: Charging" in shown and "session 0:" in shown
        assert f"token {CARD}" in shown
        assert "tech-demo" not in shown  # the password was never echoed
        screen.type("logout")
        screen.wait_for("logged out")
        screen.type("guest")
        screen.wait_for("password:", count=2)
        screen.type("guest-demo")
        screen.wait_for("guest@CB-SIM-0001>")
        screen.type("unlock 1")
        shown = screen.wait_for("unlock: refused: needs the service role")
        assert charger.status()["1"]["phase"] == "Charging"
        # History and completion as a person uses them.
        screen.keys("Up")
        screen.wait_for("guest@CB-SIM-0001> unlock 1")
        screen.keys("C-u")
        screen.keys("-l", "vers")
        screen.keys("Tab")
        screen.keys("Enter")
        screen.wait_for("IO board firmware")
        screen.type("logout")
        screen.wait_for("logged out", count=2)
        # `reboot` (service): sessions end in order, the charger and its console come back.
        screen.type("tech")
        screen.wait_for("password:", count=3)
        screen.type("tech-demo")
        screen.wait_for("tech@CB-SIM-0001#", count=3)
        screen.type("reboot")
        screen.wait_for("rebooting: sessions end in order")
        assert charger.console_name(within=60, nth=2).startswith("/dev/pts/")
        charger.until_phase(1, "Available", 30)
        screen.keys("C-]")
        time.sleep(0.5)
    finally:
        screen.close()
    saved = transcript.read_text(errors="replace")
    assert "EVSE 1: Charging" in saved and "needs the service role" in saved
    assert "rebooting" in saved
