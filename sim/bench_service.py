"""``make bench``: the memory of the whole service, measured on the service's own process.

- service_rss_mb: ``chargebay run`` on examples/sim.toml as its own process, as an
  operator starts it, driven from outside over its control interface (sim/control.py,
  what ``chargebay drive`` does): a truck plugged into each bay and authorized, both
  bays charging on the wire (the trucks' EVCCs speak EXI over TCP to the real SECC),
  then VmHWM (peak) and VmRSS read from /proc/PID/status. That process holds the
  service (controller, drivers, OCPP station, console, bay) and, in it, the simulated
  world (modules, the MCU firmware on its pty, the trucks, the local CSMS): a cabinet
  runs without the simulator, so its figure is at most this one.
- service_imports_mb: peak of a fresh interpreter that imports what ``chargebay run``
  imports on a cabinet (nothing running): the floor under the figure above.
Target (issue 12): service peak <= 80 MB.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "sim.toml"
CHARGING_S = 20.0  # both bays charging this long before the reading (several ramps' worth)
START_LIMIT_S = 60.0
PRODUCT_IMPORTS = ("firmware.cli", "firmware.service", "firmware.charger", "firmware.drivers",
                   "hal.v2g.server", "hal.power_stage_can", "hal.io_board_serial")
TRUCKS = (("plug 1 eactros600 soc=20", "authorize 1 rfid 04A1B2C3D4E5F6"),
          ("plug 2 scania-bev soc=30", "authorize 2 rfid 04DRIVER00002"))


def proc_memory_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident) and VmRSS of a process, from /proc (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = round(int(value.split()[0]) / 1024.0, 1)
    return fields


class Control:
    """One connection to the control interface: a line out, a line back."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
        self.reader = self.sock.makefile("r", encoding="utf-8")

    def ask(self, line: str) -> str:
        self.sock.sendall((line + "\n").encode())
        return self.reader.readline().strip()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def _control_port(proc: subprocess.Popen[str], deadline: float) -> int:
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise RuntimeError(f"bench_service: chargebay run ended (rc {proc.poll()})")
        found = re.search(r"control interface on 127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))
    raise RuntimeError("bench_service: no control interface within the start limit")


def own_peak_mb() -> float:
    """This process's peak, VmHWM: ``getrusage``'s ru_maxrss is no good in a child, it
    keeps the parent's size at the fork across exec (the old v2g figure was the whole
    bench's 127 MB so)."""
    return proc_memory_mb(os.getpid())["VmHWM"]


def isolated(function: str, *args: Any) -> Any:
    """``module:function(*args)`` in a fresh interpreter; its JSON result. A benchmark
    that reports memory runs so: its peak is its own."""
    module, _, name = function.partition(":")
    code = (f"import json; from {module} import {name}; "
            f"print(json.dumps({name}(*{args!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench: {function} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def service_rss(seconds: float = CHARGING_S) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chargebay-bench-") as tmp:
        # A free control port (the example's fixed one may be in use on this machine).
        text = re.sub(r'control = "127\.0\.0\.1:\d+"', 'control = "127.0.0.1:0"',
                      CONFIG.read_text())
        config = Path(tmp) / "sim.toml"
        config.write_text(text)
        proc = subprocess.Popen([sys.executable, "-m", "firmware.cli", "run", str(config)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            deadline = time.monotonic() + START_LIMIT_S
            control = Control(_control_port(proc, deadline))
            # The rest of its log is read and dropped, so the pipe never fills.
            threading.Thread(target=_discard, args=(proc.stderr,), daemon=True).start()
            try:
                status = _charge_both(control, deadline)
                time.sleep(seconds)
                status = json.loads(control.ask("status"))
                memory = proc_memory_mb(proc.pid)
            finally:
                control.close()
            phases = [status[str(e)]["phase"] for e in (1, 2)]
            if phases != ["Charging", "Charging"]:
                raise RuntimeError(f"bench_service: both bays should be charging: {phases}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {"service_rss_mb": {"peak": memory["VmHWM"], "now": memory["VmRSS"],
                               "charging_s": seconds,
                               "what": "chargebay run examples/sim.toml (its own process, "
                                       "the simulated world inside), both bays charging "
                                       "on the wire; /proc VmHWM"},
            "service_imports_mb": imports_rss()}


def _charge_both(control: Control, deadline: float) -> dict[str, Any]:
    while not json.loads(_status(control)).get("ocpp_online"):
        _wait(deadline, "the station online")
    for lines in TRUCKS:
        for line in lines:
            answer = control.ask(line)
            if answer != "ok":
                raise RuntimeError(f"bench_service: {line!r} -> {answer}")
    while True:
        status: dict[str, Any] = json.loads(_status(control))
        if all(status[str(e)]["phase"] == "Charging" for e in (1, 2)):
            return status
        _wait(deadline, "both bays charging")


def _discard(stream: IO[str] | None) -> None:
    if stream is not None:
        for _ in stream:
            pass


def _status(control: Control) -> str:
    answer = control.ask("status")
    if answer.startswith("error"):  # the charger is still starting
        return "{}"
    return answer


def _wait(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise RuntimeError(f"bench_service: {what} not within {START_LIMIT_S:.0f} s")
    time.sleep(0.5)


def imports_rss() -> float:
    """Peak of an interpreter that only imports the service's product modules."""
    code = ("import importlib, sys\n"
            f"for m in {PRODUCT_IMPORTS!r}: importlib.import_module(m)\n"
            "assert not any(n == 'sim' or n.startswith('sim.') for n in sys.modules)\n"
            "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return round(int(out.stdout.strip()) / 1024.0, 1)


if __name__ == "__main__":
    print(json.dumps(service_rss()))
