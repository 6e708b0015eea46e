"""The serial RFID reader driver (hal/card_reader_serial.py) on a simulated reader's pty,
and the page's tap parser (firmware/bay/web.py): bad input dropped, never a crash."""

from __future__ import annotations

import asyncio

import pytest

from firmware.bay.web import parse_tap
from hal.card_reader_serial import SerialCardReader, parse_uid
from hal.clock import Clock
from sim.card_reader import SimCardReader


@pytest.mark.parametrize(("line", "uid"), [
    (b"04A1B2C3D4E5F6", "04A1B2C3D4E5F6"),  # 7 bytes (ISO/IEC 14443-3 double size)
    (b"04:a1:b2:c3:d4:e5:f6\r", "04A1B2C3D4E5F6"),
    (b"DEADBEEF", "DEADBEEF"),  # 4 bytes (single size)
    (b"00112233445566778899", "00112233445566778899"),  # 10 bytes (triple size)
    (b"0011223344", None),  # 5 bytes: no such UID size
    (b"04A1B2C3D4E5F", None),  # odd
    (b"hello world!", None),
    (b"\xff\xfe\x00", None),
    (b"", None),
])
def test_uid_lines(line: bytes, uid: str | None) -> None:
    assert parse_uid(line) == uid


def test_reader_on_a_pty_reads_cards_once_and_drops_noise() -> None:
    async def body() -> None:
        sim = SimCardReader()
        cards: list[str] = []

        async def on_card(uid: str) -> None:
            cards.append(uid)
        reader = SerialCardReader(sim.port_name, Clock(), repeat_s=0.5)
        await reader.start(on_card)
        sim.tap("04A1B2C3D4E5F6")
        sim.tap("04A1B2C3D4E5F6")  # held to the reader: the same presentation
        sim.noise(b"\x00\x13garbage\r\n" + b"x" * 200)
        await asyncio.sleep(0.3)
        sim.noise(b"\n")
        await asyncio.sleep(0.7)
        sim.tap("04:A1:B2:C3:D4:E5:F7")
        await asyncio.sleep(0.3)
        assert cards == ["04A1B2C3D4E5F6", "04A1B2C3D4E5F7"]
        assert reader.rejected >= 2
        await reader.close()
        sim.close()
    asyncio.run(body())


@pytest.mark.parametrize(("text", "tap"), [
    ('{"button": "select", "evse": 1}', ("select", 1, None)),
    ('{"button": "language", "value": "de"}', ("language", None, "de")),
    ('{"button": "format_disk"}', None),
    ('{"button": "select", "evse": "1"}', None),
    ('{"button": "select", "evse": true}', None),
    ('{"button": "language", "value": 3}', None),
    ("[1, 2]", None),
    ("not json", None),
    ('{"button": "select", "pad": "' + "x" * 600 + '"}', None),
])
def test_taps_from_the_page(text: str, tap: tuple | None) -> None:
    assert parse_tap(text) == tap


def test_a_missing_reader_is_one_hardware_missing_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A configured reader that is not there: HardwareMissing naming the key, and the
    parts already started are closed again (no task left)."""
    from dataclasses import replace
    from pathlib import Path

    from firmware import config as cfg
    from firmware.drivers import HardwareMissing
    from firmware.service import running
    from sim.world import SimWorld

    base = cfg.load(Path(__file__).parent.parent / "examples" / "sim-bay.toml")
    extra = {k: v for k, v in base.extra.items() if k != "ocpp"}
    extra["screen"] = {"port": 0}
    config = replace(base, extra=extra)

    class NoReaderWorld(SimWorld):
        async def _bay_devices(self, config: cfg.ChargerConfig) -> cfg.ChargerConfig:
            config = await super()._bay_devices(config)
            return replace(config, extra={**config.extra, "card_reader": {
                "port": str(tmp_path / "no-such-tty")}})

    async def body() -> None:
        clock = Clock()
        with pytest.raises(HardwareMissing) as err:
            async with running(config, clock, NoReaderWorld(config, clock)):
                pass
        assert err.value.key == "card_reader.port"
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()
                and "bay" in t.get_name()]
        assert left == []
    asyncio.run(body())
