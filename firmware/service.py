"""The controller on real hardware: builds the drivers the config names and runs the loop.

Partial: the vehicle link over ISO 15118 (optional ``iso15118`` stack) and the serial IO
board driver are not in this foundation; ``run`` refuses configs that need them instead
of pretending.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import can

from firmware.clock import Clock
from firmware.config import ChargerConfig
from firmware.loop import Controller
from hal.power_stage_can import InfyPowerStage

log = logging.getLogger("chargebay.service")


def build_power_stage(config: ChargerConfig) -> InfyPowerStage:
    stage = config.power_stage
    bus = can.Bus(interface=stage.can_interface, channel=stage.can_channel,
                  bitrate=stage.bitrate)
    return InfyPowerStage(bus, stage.module_addresses, outputs=stage.outputs,
                          rating_w=stage.module_rating_kw * 1000,
                          min_voltage_v=stage.module_min_voltage_v,
                          max_voltage_v=stage.module_max_voltage_v,
                          max_current_a=stage.module_max_current_a)


def run_service(config: ChargerConfig) -> int:
    if config.io_board.driver != "serial":
        log.error("io_board.driver %r is a simulator; use 'chargebay sim' instead",
                  config.io_board.driver)
        return 2
    log.error("the serial IO board driver is not built yet (IO board issue); not starting "
              "with contactors under no safety MCU")
    return 2


async def _serve(controller: Controller) -> None:  # used once the serial board exists
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await controller.start()
    await stop.wait()
    await controller.stop()


__all__ = ["build_power_stage", "run_service", "Clock"]
