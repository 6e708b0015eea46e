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


T = "tests/test_safety_numbers.py::"
M = "tests/test_mcu_trips.py::"
L = "tests/test_mcu_logic.py::"
P = "tests/test_plant_faults.py::"
H = "tests/test_mcu_imd_and_hold.py::"
Q = "tests/test_plausibility.py::"


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


SLAC_18S = "test_with_slac_the_18s_count_from_the_match_not_from_the_pwm"

MUTATIONS = (
    Mutation("pilot_filter_past_100ms", "hal/mcu/rules.py", "PILOT_DEBOUNCE_MS = 20",
             "PILOT_DEBOUNCE_MS = 110",
             (M + "test_pilot_leaving_c_opens_on_the_board_with_the_host_frozen",)),
    Mutation("pilot_rule_removed", "hal/mcu/rules.py", 'ENERGY_STATES = ("C", "D")',
             'ENERGY_STATES = ("B", "C", "D", "F")',
             (M + "test_pilot_leaving_c_opens_on_the_board_with_the_host_frozen",
              M + "test_contactors_never_close_in_state_b")),
    Mutation("ovp_filter_past_9ms", "hal/mcu/rules.py", "OVP_FILTER_MS = 8",
             "OVP_FILTER_MS = 10",
             (M + "test_over_voltage_for_9ms_trips_on_the_board_within_1ms_more",)),
    Mutation("ovp_trip_removed", "hal/mcu/rules.py", "            self.ovp_trip = True\n",
             "            pass\n",
             (M + "test_over_voltage_for_9ms_trips_on_the_board_within_1ms_more",)),
    Mutation("ovp_band_935_moved", "hal/mcu/rules.py", "(850.0, 935.0)", "(850.0, 950.0)",
             (M + "test_over_voltage_band_by_negotiated_range",)),
    Mutation("ovp_band_550_moved", "hal/mcu/rules.py", "(500.0, 550.0)", "(520.0, 550.0)",
             (M + "test_over_voltage_band_by_negotiated_range",)),
    Mutation("ovp_band_825_moved", "hal/mcu/rules.py", "(750.0, 825.0)", "(750.0, 850.0)",
             (M + "test_over_voltage_band_by_negotiated_range",)),
    Mutation("ovp_band_1100_moved", "hal/mcu/rules.py", "(1000.0, 1100.0)",
             "(1000.0, 1150.0)",
             (M + "test_over_voltage_band_by_negotiated_range",)),
    Mutation("ovp_band_1375_moved", "hal/mcu/rules.py", "(1250.0, 1375.0)",
             "(1250.0, 1400.0)",
             (M + "test_over_voltage_band_by_negotiated_range",)),
    Mutation("heartbeat_bound_removed", "hal/mcu/board.py", "HEARTBEAT_MAX_MS = 1000",
             "HEARTBEAT_MAX_MS = 65535",
             (M + "test_hello_with_an_unsafe_heartbeat_timeout_is_refused",)),
    Mutation("pilot_levels_moved", "hal/mcu/rules.py", "elif high_v > 7.5:",
             "elif high_v > 9.5:", (L + "test_classify_pilot_levels",)),
    Mutation("pwm_not_1khz", "hal/mcu/board.py", "pwm.freq(1000)", "pwm.freq(2000)",
             (M + "test_pilot_pwm_is_1khz",)),
    Mutation("pwm_not_5_percent", "firmware/core/session.py",
             "out.append(ev.SetPilot(5.0))", "out.append(ev.SetPilot(10.0))",
             (T + "test_plug_in_starts_5_percent_pwm",)),
    Mutation("pilot_filter_past_50ms", "hal/mcu/rules.py", "PILOT_DEBOUNCE_MS = 20",
             "PILOT_DEBOUNCE_MS = 60", (L + "test_pilot_states_e_and_f_filtered",)),
    Mutation("estop_irq_removed", "hal/mcu/board.py", "            for coil in self.coils:\n",
             "            for coil in []:\n",
             (L + "test_estop_drops_coils_at_once_and_contacts_open_within_10ms",)),
    Mutation("sequence_timeout_64s", "firmware/core/limits.py", "SEQUENCE_TIMEOUT_S = 60.0",
             "SEQUENCE_TIMEOUT_S = 64.0", (T + "test_sequence_timeout_is_60s",)),
    Mutation("comm_setup_20s", "firmware/core/limits.py", "COMM_SETUP_TIMEOUT_S = 18.0",
             "COMM_SETUP_TIMEOUT_S = 20.0", (T + "test_communication_setup_timeout_is_18s",
                                             T + SLAC_18S)),
    Mutation("comm_setup_from_pwm_with_slac", "firmware/core/vehicle.py",
             "and not x.link_pending and (", "and (", (T + SLAC_18S,)),
    Mutation("cable_check_39_5s", "firmware/core/limits.py", "CABLE_CHECK_TIMEOUT_S = 38.0",
             "CABLE_CHECK_TIMEOUT_S = 39.5", (T + "test_cable_check_gives_up_by_38s",)),
    Mutation("precharge_6_5s", "firmware/core/limits.py", "PRECHARGE_TIMEOUT_S = 5.0",
             "PRECHARGE_TIMEOUT_S = 6.5", (T + "test_precharge_gives_up_by_5s",)),
    Mutation("safe_voltage_100v", "firmware/core/limits.py", "SAFE_VOLTAGE_V = 60.0",
             "SAFE_VOLTAGE_V = 100.0", (T + "test_cable_check_starts_only_below_60v",
                                        "tests/test_unlock.py")),
    Mutation("test_voltage_factor", "firmware/core/limits.py",
             "return min(1.1 * ev_max_voltage_v", "return min(1.2 * ev_max_voltage_v",
             ("tests/test_session.py::test_cable_check_voltage_formula",)),
    Mutation("test_voltage_plus_50", "firmware/core/limits.py", "ev_max_voltage_v + 50.0",
             "ev_max_voltage_v + 60.0",
             ("tests/test_session.py::test_cable_check_voltage_formula",)),
    Mutation("test_current_5a", "hal/power_stage.py", "TEST_CURRENT_LIMIT_A = 2.0",
             "TEST_CURRENT_LIMIT_A = 5.0",
             (T + "test_cable_check_at_2a_with_contactors_closed_within_3s_of_c",)),
    Mutation("cable_check_without_contactors", "firmware/core/session.py",
             "                self.close_contactors(now, out, for_cable_check=True)\n",
             "                pass\n",
             (T + "test_cable_check_at_2a_with_contactors_closed_within_3s_of_c",)),
    Mutation("shutdown_opens_at_once", "firmware/core/limits.py", "SHUTDOWN_CURRENT_A = 5.0",
             "SHUTDOWN_CURRENT_A = 1000.0",
             (T + "test_ordered_shutdown_ramps_down_before_opening",)),
    Mutation("ramp_50_a_per_s", "firmware/core/bay.py", "ramp_a_per_s: float = 25.0",
             "ramp_a_per_s: float = 50.0",
             ("tests/test_session.py::test_normal_session_and_ramp",)),
    Mutation("isolation_limit_40k", "sim/plant.py", "ISOLATION_FAULT_OHM = 100e3",
             "ISOLATION_FAULT_OHM = 40e3",
             (P + "test_cable_insulation_found_by_the_cable_check_on_the_cable",)),
    Mutation("earth_limit_950v", "sim/plant.py", "EARTH_LIMIT_V = 550.0",
             "EARTH_LIMIT_V = 950.0",
             (P + "test_earth_voltage_above_the_limit_never_energizes",)),
    Mutation("gate_reads_module_side_only", "firmware/core/session.py",
             "return max(self.voltage_v, self.cable_voltage_v or self.voltage_v)",
             "return self.voltage_v",
             (T + "test_lock_held_while_the_cable_side_is_above_60v",)),
    Mutation("pwm_loss_past_6s", "hal/mcu/rules.py", "PWM_LOSS_OPEN_MS = 5000",
             "PWM_LOSS_OPEN_MS = 7000", (M + "test_pwm_off_in_state_c_powers_off_within_6s",)),
    Mutation("telemetry_poll_2_5s", "hal/power_stage_can.py",
             "poll_interval_s: float = 1.0", "poll_interval_s: float = 2.5",
             ("tests/test_module_supervision_numbers.py",)),
    Mutation("silent_module_lost_past_10s", "hal/power_stage_can.py",
             "module_timeout_s: float = 3.0,", "module_timeout_s: float = 11.0,",
             ("tests/test_module_supervision_numbers.py",)),
    Mutation("derating_not_reread", "hal/power_stage_can.py",
             "            m.capability_at = -1e9  # ask", "            pass  # ask",
             ("tests/test_module_supervision_numbers.py",)),
    Mutation("weld_flag_removed", "hal/mcu/rules.py",
             "            self.welded = True\n", "            pass\n",
             (L + "test_unlock_refused_while_a_contactor_is_welded",)),
    # The insulation monitor's self test before measuring (IEC 61851-23).
    Mutation("imd_board_gate_removed", "hal/mcu/rules.py",
             "and self.pilot.state in ENERGY_STATES and self.imd_passed)",
             "and self.pilot.state in ENERGY_STATES)",
             (H + "test_contactors_close_for_a_vehicle_only_after_a_passed_imd_test_"
              "every_session",)),
    Mutation("imd_not_asked", "firmware/core/energize.py",
             "        out.append(ev.TestInsulationMonitor())\n", "        pass\n",
             (T + "test_imd_self_test_before_the_contactors_and_the_test_voltage_every_session",
              P + "test_broken_insulation_monitor_fails_its_self_test_and_nothing_is_energized")),
    Mutation("imd_core_gate_removed", "firmware/core/session.py",
             " and self.cable_check.imd_passed)", ")",
             (T + "test_imd_self_test_before_the_contactors_and_the_test_voltage_every_session",)),
    # E/F held >= 4 s (IEC 61851-1), and reported so the host does not read a diode fault.
    Mutation("ef_hold_3_9s", "hal/mcu/rules.py", "EF_HOLD_MS = 4000", "EF_HOLD_MS = 3900",
             (H + "test_state_f_is_held_at_least_4s_then_released",)),
    Mutation("held_f_not_reported", "hal/mcu/rules.py",
             "self.holding_f = self.pilot_held_f = True", "self.holding_f = True",
             (H + "test_state_f_is_held_at_least_4s_then_released",
              H + "test_the_host_does_not_take_the_held_f_for_a_diode_fault")),
    Mutation("held_f_ignored_by_host", "firmware/inputs.py",
             "return None if inputs.pilot_held_f else inputs.pilot", "return inputs.pilot",
             (H + "test_the_host_does_not_take_the_held_f_for_a_diode_fault",)),
    # Measured-output plausibility (IEC 61851-23, approx. clause).
    Mutation("plausibility_10v_to_11v", "firmware/core/plausibility.py",
             "VOLTAGE_TOLERANCE_V = 10.0", "VOLTAGE_TOLERANCE_V = 11.0",
             (Q + "test_voltage_tolerance_edges",)),
    Mutation("plausibility_1_5pct_to_1_7pct", "firmware/core/plausibility.py",
             "RELATIVE_TOLERANCE = 0.015", "RELATIVE_TOLERANCE = 0.017",
             (Q + "test_voltage_tolerance_edges", Q + "test_current_tolerance_edges")),
    Mutation("plausibility_0_5a_to_0_6a", "firmware/core/plausibility.py",
             "CURRENT_TOLERANCE_A = 0.5", "CURRENT_TOLERANCE_A = 0.6",
             (Q + "test_current_tolerance_edges",)),
    Mutation("plausibility_debounce_5s", "firmware/core/plausibility.py",
             "DEBOUNCE_S = 3.0", "DEBOUNCE_S = 5.0",
             (Q + "test_a_lasting_disagreement_ends_the_session_in_order_within_3s",)),
    Mutation("plausibility_debounce_1s", "firmware/core/plausibility.py",
             "DEBOUNCE_S = 3.0", "DEBOUNCE_S = 1.0",
             (Q + "test_a_short_disagreement_does_not_trip",)),
    Mutation("plausibility_removed", "firmware/core/supervision.py",
             "    plausibility(bay, sup, now, out)\n", "    pass\n",
             (P + "test_a_drifting_module_voltage_sensor_ends_the_session_in_order",)),
    # PE continuity loss -> emergency shutdown within 5 s (IEC 61851-23): one per holder.
    Mutation("pe_board_filter_past_5s", "hal/mcu/rules.py", "PILOT_DEBOUNCE_MS = 20",
             "PILOT_DEBOUNCE_MS = 5100",
             (M + "test_pe_open_opens_on_the_board_within_5s_with_the_host_passive",)),
    Mutation("pe_host_unplug_removed", "firmware/core/session.py",
             '        if state == "A":\n', '        if state == "Z":\n',
             (T + "test_pe_loss_read_as_the_vehicle_gone_opens_at_once_on_the_host",)),
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
