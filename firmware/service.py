"""The controller on real hardware: builds the drivers the config names and runs the loop.

Partial: the vehicle link over ISO 15118 (optional ``iso15118`` stack) is not in this
foundation; ``run`` builds the power stage and the serial IO board but refuses to start
without a vehicle link driver instead of pretending.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import can

from firmware.clock import Clock
from firmware.config import ChargerConfig
from firmware.loop import Controller
from hal.io_board_serial import SerialIoBoard
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


def build_io_board(config: ChargerConfig, clock: Clock) -> SerialIoBoard:
    board = config.io_board
    return SerialIoBoard(tuple(c.evse_id for c in config.connectors), board.port, clock,
                         board.baudrate, board.heartbeat_timeout_ms)


def run_service(config: ChargerConfig) -> int:
    if config.io_board.driver != "serial":
        log.error("io_board.driver %r is a simulator; use 'chargebay sim' instead",
                  config.io_board.driver)
        return 2
    if config.vehicle_link_driver == "sim":
        # The IO board and power stage drivers exist (build_io_board, build_power_stage);
        # a bay without an ISO 15118 link could only ever time out, so do not pretend.
        log.error("no ISO 15118 vehicle link driver yet (vehicle_link.driver = 'sim' is "
                  "the simulator's); not starting")
        return 2
    clock = Clock()
    controller = Controller(config, clock, build_power_stage(config),
                            build_io_board(config, clock))
    asyncio.run(_serve(controller))
    return 0


async def _serve(controller: Controller) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await controller.start()
    await stop.wait()
    await controller.stop()


__all__ = ["build_io_board", "build_power_stage", "run_service", "Clock"]
