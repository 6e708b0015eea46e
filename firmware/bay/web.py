"""The bay screen as a web page, served by the controller on 127.0.0.1 for the kiosk
browser on the bay display: GET / the page, GET /state the view as JSON, /ws a
WebSocket that pushes every new view and takes the taps ({"button", "evse", "value"}).
One process, the ``websockets`` package already in the dependencies, no framework.

Taps are checked before they reach the screen machine: an unknown button or a bad
field is logged and dropped, the connection stays.
"""

from __future__ import annotations

import asyncio
import json
import logging
from importlib import resources
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from firmware.bay.shell import BayShell

log = logging.getLogger("chargebay.bay.web")

BUTTONS = frozenset({"select", "back", "home", "pay_card", "rfid", "app", "stop",
                     "confirm", "cancel", "language"})
MAX_TAP_BYTES = 512


def parse_tap(text: str | bytes) -> tuple[str, int | None, str | None] | None:
    """A tap from the page, or None for anything that is not one."""
    if len(text) > MAX_TAP_BYTES:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("button") not in BUTTONS:
        return None
    evse, value = data.get("evse"), data.get("value")
    if evse is not None and (not isinstance(evse, int) or isinstance(evse, bool)):
        return None
    if value is not None and not isinstance(value, str):
        return None
    return str(data["button"]), evse, value


class WebScreen:
    def __init__(self, shell: BayShell, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.shell = shell
        self.host, self.port = host, port
        self._server: Server | None = None
        self._page = resources.files("firmware.bay").joinpath("page.html").read_bytes()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def start(self) -> None:
        self._server = await serve(self._session, self.host, self.port,
                                   process_request=self._http, max_size=MAX_TAP_BYTES * 2)
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        log.info("bay screen at %s", self.url)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            return None  # the WebSocket handshake goes on
        if path in ("/", "/index.html"):
            return _response(200, "text/html; charset=utf-8", self._page)
        if path == "/state":
            return _response(200, "application/json",
                             json.dumps(self.shell.view()).encode())
        return connection.respond(404, "Not found\n")

    async def _session(self, ws: ServerConnection) -> None:
        views: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=8)

        def push(view: dict[str, Any]) -> None:
            if views.full():  # a slow page gets the newest view, not a backlog
                views.get_nowait()
            views.put_nowait(view)

        self.shell.subscribers.append(push)
        sender = asyncio.get_running_loop().create_task(self._send(ws, views))
        try:
            await ws.send(json.dumps(self.shell.view()))
            async for text in ws:
                tap = parse_tap(text)
                if tap is None:
                    log.warning("screen: not a tap, dropped: %.80r", text)
                    continue
                self.shell.tap(*tap)
        except ConnectionClosed:
            pass
        finally:
            self.shell.subscribers.remove(push)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    @staticmethod
    async def _send(ws: ServerConnection, views: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            view = await views.get()
            try:
                await ws.send(json.dumps(view))
            except ConnectionClosed:
                return


def _response(status: int, kind: str, body: bytes) -> Response:
    headers = Headers([("Content-Type", kind), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store")])
    return Response(status, "OK", headers, body)
