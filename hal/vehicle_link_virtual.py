"""The ``virtual`` vehicle-link driver: an in-process wire between the charger and a
vehicle in the same process, found by name, as python-can's ``virtual`` bus is.

The charger's side listens on one name per connector (``VirtualVehicleLinks``: like an
ISO 15118 SECC that answers SDP and accepts a TCP connection); a simulated truck
``connect(name)``s when it plugs in and gets a ``VehicleChannel``. Neither side imports
the other: they meet at the name. The ISO 15118 driver will sit beside this one.

The truck end asks (``request``), the charger end receives and answers, exactly as the
ISO 15118-2 / DIN 70121 request/response exchange does over TCP (hal/vehicle_link.py).
Properties the simulator relies on:
- strictly one outstanding request; the answer goes back unchanged;
- the EV's timeout is the truck's: if the charger is late, ``request`` raises
  ``VehicleTimeout`` and the late answer is dropped and counted (``late_answers``), as a
  real EV would have closed the session by then;
- ``close(reason)`` models unplugging / link loss: requests not yet read are lost, the
  charger's ``receive()`` returns ``LinkLost(reason)`` from then on, a pending truck
  request fails with ``LinkClosed``.

Only asyncio primitives bound lazily to the running loop are used (no threads, no wall
clock), so the channel works on a normal loop and on a looptime virtual-time loop alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from hal.vehicle_link import LinkLost, VehicleLink, VehicleRequest, VehicleResponse


class VehicleTimeout(asyncio.TimeoutError):
    """The charger did not answer within the EV's timeout."""


class LinkClosed(ConnectionError):
    """The channel was closed (unplug, link loss) while or before asking."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_CLOSED = object()  # queue sentinel that wakes a charger blocked in receive()

_Item = tuple[VehicleRequest, "asyncio.Future[VehicleResponse]"]


@dataclass
class ChannelStats:
    requests: int = 0
    answered: int = 0  # answers that reached the truck
    timeouts: int = 0  # requests the truck gave up on
    late_answers: int = 0  # answers dropped: truck gave up, link closed, or nothing asked
    trace: list[str] = field(default_factory=list)  # request class names, in order sent


class ChargerEnd:
    """The charger's view of the channel: implements the VehicleLink protocol."""

    def __init__(self, channel: VehicleChannel) -> None:
        self._channel = channel

    async def receive(self) -> VehicleRequest:
        return await self._channel.receive()

    def answer(self, response: VehicleResponse) -> None:
        self._channel.answer(response)


class TruckEnd:
    """The truck's view of the channel."""

    def __init__(self, channel: VehicleChannel) -> None:
        self._channel = channel

    async def request(self, req: VehicleRequest, timeout_s: float) -> VehicleResponse:
        return await self._channel.request(req, timeout_s)

    def close(self, reason: str) -> None:
        self._channel.close(reason)


class VehicleChannel:
    """One connector's wire. The channel itself also offers both ends' methods."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.stats = ChannelStats()
        self._queue: asyncio.Queue[_Item | object] = asyncio.Queue()
        self._pending: asyncio.Future[VehicleResponse] | None = None  # truck is waiting on it
        self._current: asyncio.Future[VehicleResponse] | None = None  # charger answers it
        self._closed = False
        self._close_reason = ""
        self.charger = ChargerEnd(self)
        self.truck = TruckEnd(self)

    @property
    def charger_end(self) -> ChargerEnd:
        """Alias of ``charger``: the object to hand to the controller as its VehicleLink."""
        return self.charger

    @property
    def truck_end(self) -> TruckEnd:
        return self.truck

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str:
        return self._close_reason

    # --- truck end ----------------------------------------------------------------------

    async def request(self, req: VehicleRequest, timeout_s: float) -> VehicleResponse:
        """Send ``req`` and wait at most ``timeout_s`` for the charger's answer."""
        if isinstance(req, LinkLost):
            raise TypeError("LinkLost is not a wire message; use close()")
        if self._closed:
            raise LinkClosed(self._close_reason)
        if self._pending is not None and not self._pending.done():
            # ISO 15118-2 is strictly request/response: one message in flight at a time.
            raise RuntimeError("a request is already outstanding on this channel")
        fut: asyncio.Future[VehicleResponse] = asyncio.get_running_loop().create_future()
        self._pending = fut
        self.stats.requests += 1
        self.stats.trace.append(type(req).__name__)
        self._queue.put_nowait((req, fut))
        try:
            # wait_for cancels fut on timeout, which marks it done: a late answer is dropped.
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            self.stats.timeouts += 1
            raise VehicleTimeout(
                f"{type(req).__name__} not answered within {timeout_s * 1000:.0f} ms"
            ) from None

    # --- charger end --------------------------------------------------------------------

    async def receive(self) -> VehicleRequest:
        """Next request from the truck; ``LinkLost`` once the channel is closed."""
        if self._closed:
            return LinkLost(self._close_reason)
        item = await self._queue.get()
        if item is _CLOSED or self._closed:
            return LinkLost(self._close_reason)
        req, fut = cast(_Item, item)
        # A request the truck already gave up on is still delivered: on a real wire it was
        # sent; the charger cannot know, and its answer will be dropped as late.
        self._current = fut
        return req

    def answer(self, response: VehicleResponse) -> None:
        """Answer the request last received; dropped (and counted) if nobody waits for it."""
        fut, self._current = self._current, None
        if fut is None or fut.done() or self._closed:
            self.stats.late_answers += 1
            return
        self.stats.answered += 1
        fut.set_result(response)

    # --- both -----------------------------------------------------------------------------

    def close(self, reason: str) -> None:
        """Drop the link (unplug). Idempotent; the first reason wins."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        # Bytes still on an unplugged wire are lost: discard unread requests.
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)
        if self._pending is not None and not self._pending.done():
            self._pending.set_exception(LinkClosed(reason))
            # The truck may already be gone (cancelled); don't warn about an unread exception.
            self._pending.exception()


# --- meeting by name -------------------------------------------------------------------

OnLink = Callable[[int, VehicleLink], None]
_LISTENING: dict[str, tuple[int, OnLink]] = {}  # name -> (connector, callback)


def connect(name: str) -> VehicleChannel:
    """The vehicle's side: plug into the connector listening on ``name``."""
    try:
        connector, on_link = _LISTENING[name]
    except KeyError:
        raise ConnectionRefusedError(f"no charger listens on virtual link {name!r}") from None
    channel = VehicleChannel(name)
    on_link(connector, channel.charger_end)
    return channel


class VirtualVehicleLinks:
    """Driver: listens on ``{prefix}/{connector}`` for every connector."""

    def __init__(self, prefix: str, connectors: tuple[int, ...]) -> None:
        self.names = {c: f"{prefix}/{c}" for c in connectors}

    async def start(self, on_link: OnLink) -> None:
        for name in self.names.values():
            if name in _LISTENING:
                raise OSError(f"virtual vehicle link {name!r} is already in use")
        for connector, name in self.names.items():
            _LISTENING[name] = (connector, on_link)

    async def close(self) -> None:
        for name in self.names.values():
            _LISTENING.pop(name, None)
