"""Moves each safety number of docs/safety.md past its limit (or removes the behaviour)
and runs the test that is meant to prove it: the test must fail. One mutation at a time,
in place, always restored.

    .venv/bin/python tests/mutation_check.py            # every row
    .venv/bin/python tests/mutation_check.py ovp_filter  # rows whose name contains this

Prints one line per row (``killed`` = the test failed as it must) and exits 1 if any
mutation survived. Not part of ``make test`` (it runs the suites many times).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation("pilot_filter_past_100ms", "hal/mcu/rules.py", "PILOT_DEBOUNCE_MS = 20",
             "PILOT_DEBOUNCE_MS = 110",
             ("tests/test_mcu_trips.py::test_pilot_leaving_c_opens_on_the_board_with_the_host_frozen",)),
    Mutation("pilot_rule_removed", "hal/mcu/rules.py", 'ENERGY_STATES = ("C", "D")',
             'ENERGY_STATES = ("B", "C", "D", "F")',
             ("tests/test_mcu_trips.py::test_pilot_leaving_c_opens_on_the_board_with_the_host_frozen",
              "tests/test_mcu_trips.py::test_contactors_never_close_in_state_b")),
    Mutation("ovp_filter_past_9ms", "hal/mcu/rules.py", "OVP_FILTER_MS = 8",
             "OVP_FILTER_MS = 10",
             ("tests/test_mcu_trips.py::test_over_voltage_for_9ms_trips_on_the_board_within_1ms_more",)),
    Mutation("ovp_trip_removed", "hal/mcu/rules.py", "            self.ovp_trip = True\n",
             "            pass\n",
             ("tests/test_mcu_trips.py::test_over_voltage_for_9ms_trips_on_the_board_within_1ms_more",)),
    Mutation("ovp_band_935_moved", "hal/mcu/rules.py", "(850.0, 935.0)", "(850.0, 950.0)",
             ("tests/test_mcu_trips.py::test_over_voltage_band_by_negotiated_range",)),
    Mutation("ovp_band_550_moved", "hal/mcu/rules.py", "(500.0, 550.0)", "(520.0, 550.0)",
             ("tests/test_mcu_trips.py::test_over_voltage_band_by_negotiated_range",)),
    Mutation("ovp_band_825_moved", "hal/mcu/rules.py", "(750.0, 825.0)", "(750.0, 850.0)",
             ("tests/test_mcu_trips.py::test_over_voltage_band_by_negotiated_range",)),
    Mutation("ovp_band_1100_moved", "hal/mcu/rules.py", "(1000.0, 1100.0)",
             "(1000.0, 1150.0)",
             ("tests/test_mcu_trips.py::test_over_voltage_band_by_negotiated_range",)),
    Mutation("ovp_band_1375_moved", "hal/mcu/rules.py", "(1250.0, 1375.0)",
             "(1250.0, 1400.0)",
             ("tests/test_mcu_trips.py::test_over_voltage_band_by_negotiated_range",)),
    Mutation("heartbeat_bound_removed", "hal/mcu/board.py", "HEARTBEAT_MAX_MS = 1000",
             "HEARTBEAT_MAX_MS = 65535",
             ("tests/test_mcu_trips.py::test_hello_with_an_unsafe_heartbeat_timeout_is_refused",)),
)


def run(m: Mutation) -> bool:
    """True when the mutation was killed (the tests failed)."""
    path = ROOT / m.path
    original = path.read_text()
    if original.count(m.old) != 1:
        raise SystemExit(f"{m.name}: {m.old!r} must occur once in {m.path}")
    path.write_text(original.replace(m.old, m.new))
    try:
        result = subprocess.run([str(ROOT / ".venv/bin/pytest"), "-x", "-q", "-p",
                                 "no:cacheprovider", *m.tests], cwd=ROOT,
                                capture_output=True, text=True, timeout=900)
    finally:
        path.write_text(original)
    return result.returncode != 0


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not argv or any(a in m.name for a in argv)]
    survived = 0
    for m in chosen:
        killed = run(m)
        survived += not killed
        print(f"{'killed  ' if killed else 'SURVIVED'} {m.name}", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
