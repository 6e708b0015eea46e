"""Rig for SLAC on the wire: two network namespaces the test creates, joined by a veth
pair; the product's side (raw socket, SECC) runs on the test's own loop inside the EVSE
namespace, the simulated modem + EV (sim/slac_ev.py) and the EVCC on a loop in a thread
of their own inside the EV namespace. Network namespaces are per thread (setns), and a
socket stays in the namespace it was made in, so no frame leaves the two namespaces.

Python 3.11 has no ``os.setns``: libc's, through ctypes.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from interop import Pair, can_make_namespaces

from firmware import config as cfg

T = TypeVar("T")
CLONE_NEWNET = 0x40000000  # linux/sched.h
_libc = ctypes.CDLL(None, use_errno=True)

__all__ = ["Far", "Hub", "Pair", "can_make_namespaces", "netns"]


@contextmanager
def netns(name: str) -> Iterator[None]:
    """This thread inside namespace ``name`` (from ``ip netns add``), then back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")
    finally:
        os.close(target)
        os.close(home)


class Far:
    """An event loop in a thread of its own, inside namespace ``ns``: the EV's side."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"far-{ns}", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        with netns(self.ns):
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(self._ready.set)
            self.loop.run_forever()

    async def do(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class Hub:
    """One EVSE namespace with a veth end per bay, and an EV namespace per bay: a
    cabinet with one modem per connector (link-local IPv6 ready on every end)."""

    def __init__(self, bays: int) -> None:
        tag = f"{os.getpid() % 10000}"
        self.evse = f"cbh-evse-{tag}"
        self.evs = [f"cbh-ev{n}-{tag}" for n in range(1, bays + 1)]
        # Made in the root namespace first: unique per test process.
        self.evse_ifs = [f"cbh{tag}e{n}" for n in range(1, bays + 1)]
        self.ev_ifs = [f"cbh{tag}v{n}" for n in range(1, bays + 1)]

    def __enter__(self) -> Hub:
        from interop import sh

        sh("ip", "netns", "add", self.evse)
        sh("ip", "link", "set", "lo", "up", ns=self.evse)
        for ns, a, b in zip(self.evs, self.evse_ifs, self.ev_ifs, strict=True):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            for where, ifname in ((self.evse, a), (ns, b)):
                sh("ip", "link", "set", ifname, "netns", where)
                sh("sysctl", "-q", f"net.ipv6.conf.{ifname}.accept_dad=0", ns=where)
                sh("ip", "link", "set", ifname, "up", ns=where)
        for ifname in self.evse_ifs:
            for _ in range(50):
                if "fe80" in sh("ip", "-6", "addr", "show", "dev", ifname, ns=self.evse).stdout:
                    break
                time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        from interop import sh

        for ns in [self.evse, *self.evs]:
            sh("ip", "netns", "del", ns, check=False)


def with_modems(connectors: list[dict[str, Any]]) -> cfg.ChargerConfig:
    """examples/sim.toml on the iso15118 driver with these [[iso15118.connector]]s."""
    config = cfg.load(Path(__file__).resolve().parent.parent / "examples" / "sim.toml")
    return replace(config, vehicle_link=replace(config.vehicle_link, driver="iso15118"),
                   extra={**config.extra, "iso15118": {"connector": connectors}})
