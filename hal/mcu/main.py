"""IO board entry point on the MCU (MicroPython runs main.py at boot).

The watchdog resets the MCU if a pass ever hangs; after a reset every output pin is an
input again and the contactor coil drivers' pull-downs open the contactors.
"""

import time

import board
import machine

UART_ID = 0
BAUDRATE = 115200
WATCHDOG_MS = 100


def main() -> None:
    uart = machine.UART(UART_ID, baudrate=BAUDRATE, timeout=0)
    io = board.Board(uart)
    wdt = machine.WDT(timeout=WATCHDOG_MS)
    while True:
        io.step()
        wdt.feed()
        time.sleep_ms(1)


main()
