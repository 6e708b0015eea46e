"""The bay screen in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright taps through a card-paid session on the simulated hub, checks the page at
each step in English and German, and saves a screenshot of each into the test's output
folder (``tmp_path``).

Skips only when Chromium is absent on a developer's machine; with CI=true a missing
browser is a failure (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from firmware import config as cfg
from firmware.service import running
from hal.clock import Clock
from sim.world import SimWorld

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SPEED = 2.0  # simulated seconds per wall second
# Chromium shares the (loaded) CPU with the simulator: the IO board's heartbeat rule is
# given 2 s of simulated time (1 s of wall time) so a stall is not a lost link.
HEARTBEAT_MS = 2000
CONFIG = cfg.load(Path(__file__).parent.parent / "examples" / "sim-bay.toml")


def _browser_or_skip() -> Any:
    missing = []
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing.append(f"chromium ({CHROMIUM}; apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing.append("playwright (pip install -e '.[dev]')")
        async_playwright = None
    if missing:
        why = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why + " (CI must run it: .ci/run installs them)")
        pytest.skip(why)
    return async_playwright


def test_card_paid_session_in_the_browser(tmp_path: Path) -> None:
    async_playwright = _browser_or_skip()
    config = replace(CONFIG, extra={**CONFIG.extra,
                                    "screen": {**CONFIG.extra["screen"], "port": 0}},
                     io_board=replace(CONFIG.io_board, heartbeat_timeout_ms=HEARTBEAT_MS))
    shots: list[str] = []

    async def main() -> None:
        clock = Clock(SPEED)
        world = SimWorld(config, clock)
        async with running(config, clock, world) as charger:
            assert await world.until_online(30)
            bay = charger.slots["screen"]
            async with async_playwright() as pw:
                # a fresh profile (--user-data-dir) for every run
                browser = await pw.chromium.launch_persistent_context(
                    str(tmp_path / "profile"), headless=True, args=ARGS,
                    executable_path=CHROMIUM if os.path.exists(CHROMIUM)
                    else shutil.which("chromium"),
                    viewport={"width": 1280, "height": 800})
                try:
                    page = await browser.new_page()
                    await session(page, bay, world, tmp_path, shots)
                finally:
                    await browser.close()

    asyncio.run(main())
    assert len(shots) >= 8 and all((tmp_path / s).stat().st_size > 1000 for s in shots)


async def session(page: Any, bay: Any, world: SimWorld, out: Path, shots: list[str]
                  ) -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=45_000)  # a loaded CI machine: the page follows the sim

    async def shot(name: str) -> None:
        await page.screenshot(path=str(out / f"{len(shots):02d}-{name}.png"))
        shots.append(f"{len(shots):02d}-{name}.png")

    title = page.get_by_test_id("title")
    await page.goto(bay.url)
    await expect(title).to_have_text("Choose your connector")
    await expect(page.get_by_test_id("btn-select-1")).to_have_text("Connector 1: Available")
    await shot("home-en")

    world.plug(1, "eactros600", 20.0)
    await expect(page.get_by_test_id("btn-select-1")).to_have_text(
        "Connector 1: Cable connected")
    await page.get_by_test_id("btn-select-1").click()
    await expect(title).to_have_text("Price at connector 1")
    lines = page.get_by_test_id("lines")
    await expect(lines).to_contain_text("€0.399 per kWh")
    await expect(lines).to_contain_text("€1.99 per session")
    await expect(lines).to_contain_text("€199.00 will be reserved on your card")
    await shot("tariff-en")

    # German: the same page, words, numbers and money per language
    await page.get_by_test_id("lang-de").click()
    await expect(title).to_have_text("Preis an Ladepunkt 1")
    await expect(lines).to_contain_text("0,399\u00a0€ pro kWh")
    await expect(lines).to_contain_text("1,99\u00a0€ pro Ladevorgang")
    await shot("tariff-de")

    # a declined card first: the page says why and offers another card
    assert world.terminal is not None
    world.terminal.mode = "decline"
    await page.get_by_test_id("btn-pay_card-1").click()
    await expect(title).to_have_text("Zahlung nicht akzeptiert")
    await expect(lines).to_contain_text("Bitte versuchen Sie eine andere Karte.")
    await shot("declined-de")

    world.terminal.mode = "approve"
    await page.get_by_test_id("lang-en").click()
    await page.get_by_test_id("btn-pay_card-1").click()
    await expect(title).to_have_text("Connector 1: Charging")
    figures = page.get_by_test_id("figures")
    await expect(figures).to_contain_text("Cost so far")
    await expect(figures).to_contain_text("kWh")
    await expect(figures).to_contain_text("Range added")
    await shot("charging-en")

    await page.get_by_test_id("lang-de").click()
    await expect(title).to_have_text("Ladepunkt 1: Lädt")
    await expect(figures).to_contain_text("Bisherige Kosten")
    await shot("charging-de")

    await page.wait_for_timeout(5000)  # ~10 simulated seconds of charging
    await page.get_by_test_id("btn-stop-1").click()
    await expect(title).to_have_text("Laden an Ladepunkt 1 beenden?")
    await shot("confirm-de")
    await page.get_by_test_id("btn-confirm-1").click()
    await expect(title).to_have_text("Ladepunkt 1: Beendet")
    receipt = page.get_by_test_id("receipt")
    await expect(receipt).to_contain_text("Gesamt inkl. MwSt.")
    await expect(lines).to_contain_text("Bitte fahren Sie Ihren Lkw weg")
    await shot("finished-de")

    # the receipt on the page is the bay's price and what the terminal booked
    await page.get_by_test_id("lang-en").click()
    await expect(receipt).to_contain_text("Total incl. VAT")
    await shot("finished-en")
    for _ in range(50):
        if bay.shell.payments.reports and bay.shell.payments.reports[-1].state == "settled":
            break
        await asyncio.sleep(0.1)
    cost = bay.shell.finished[-1]["cost"]
    total = f"€{cost.total}"
    await expect(receipt).to_contain_text(total)
    booked = [h.booked_minor for h in world.terminal.journal.values() if h.state == "booked"]
    assert booked == [int(cost.total * 100)] and cost.total > Decimal("1.99")
    await expect(page.get_by_test_id("footer")).to_contain_text("+49 800 000 0000")
