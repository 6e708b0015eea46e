"""Configuration: the examples load; every bad file names the key and the reason."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from firmware import config as cfg

EXAMPLES = Path(__file__).parent.parent / "examples"


def sim_data() -> dict[str, Any]:
    return tomllib.loads((EXAMPLES / "sim.toml").read_text())


def test_examples_load() -> None:
    sim = cfg.load(EXAMPLES / "sim.toml")
    real = cfg.load(EXAMPLES / "cabinet-400kw.toml")
    assert sim.power_stage.can_interface == "virtual"
    assert real.power_stage.can_channel == "can0" and real.io_board.driver == "serial"
    assert [c.evse_id for c in sim.connectors] == [1, 2]
    assert sim.control.ramp_a_per_s == 25


@pytest.mark.parametrize("mutate,key,reason", [
    (lambda d: d["charger"].pop("id"), "charger.id", "is required"),
    (lambda d: d["connector"][1].update(type="CHAdeMO"), "connector[1].type",
     "'CCS2' or 'MCS'"),
    (lambda d: d["connector"][0].update(cable_max_current_a=-5),
     "connector[0].cable_max_current_a", "greater than 0"),
    (lambda d: d["connector"][0].update(cable_max_current_a="500"),
     "connector[0].cable_max_current_a", "valid number"),
    (lambda d: d["connector"][1].update(evse_id=1), "connector[1].evse_id", "used twice"),
    (lambda d: d["connector"][0].update(output=7), "connector[0].output", "not in"),
    (lambda d: d["power_stage"].update(module_count=3, module_addresses=[1, 1, 2]),
     "power_stage.module_addresses",
     "distinct"),
    (lambda d: d["power_stage"].update(can_interface="pcan"), "power_stage.can_interface",
     "'socketcan' or 'virtual'"),
    (lambda d: d["power_stage"].update(modul_count=3), "power_stage.modul_count", "unknown"),
    (lambda d: d["io_board"].pop("port"), "io_board.port", "required"),
    (lambda d: d["control"].update(ramp_a_per_s=0), "control.ramp_a_per_s", "greater"),
    (lambda d: d.update(connector=[]), "connector", "at least 1 item"),
])
def test_bad_config_names_key(mutate: Any, key: str, reason: str) -> None:
    data = sim_data()
    mutate(data)
    with pytest.raises(cfg.ConfigError) as err:
        cfg.parse(data)
    assert err.value.key == key
    assert reason in err.value.reason


@pytest.mark.parametrize("mutate,key,reason", [
    (lambda d: d["power_stage"].update(driver="delta"), "power_stage.driver",
     "no power_stage driver 'delta' (known: infypower)"),
    (lambda d: d["io_board"].update(driver="inprocess"), "io_board.driver",
     "no io_board driver 'inprocess' (known: serial)"),
    (lambda d: d["vehicle_link"].update(driver="chademo"), "vehicle_link.driver",
     "no vehicle_link driver 'chademo'"),
    (lambda d: d["vehicle_link"].update(driver="iso15118"), "iso15118",
     "is required with vehicle_link.driver"),
    (lambda d: (d["vehicle_link"].update(driver="iso15118"), d.update(iso15118={
        "connector": [{"evse_id": 1, "interface": "plc1", "tcp_port": 8080}]})),
     "iso15118.connector[0].tcp_port", "49152-65535"),
    (lambda d: (d["vehicle_link"].update(driver="iso15118"), d.update(iso15118={
        "protocols": ["din", "din"], "connector": [{"evse_id": 1, "interface": "plc1"}]})),
     "iso15118.protocols", "twice"),
    (lambda d: (d["vehicle_link"].update(driver="iso15118"), d.update(iso15118={
        "connector": [{"evse_id": 9, "interface": "plc1"}]})),
     "iso15118.connector[0].evse_id", "not a [[connector]]"),
    (lambda d: (d["vehicle_link"].update(driver="iso15118"), d.update(iso15118={
        "tls": "required", "connector": [{"evse_id": 1, "interface": "plc1"}]})),
     "iso15118.certificate", "needs certificate"),
    (lambda d: d.update(screen={"driver": "hdmi"}), "screen.driver", "known: web"),
    (lambda d: d.update(meter={"driver": "modbus"}), "meter.driver", "known: none yet"),
    (lambda d: d["ocpp"].update(security_profile=4), "ocpp.security_profile",
     "less than or equal to 3"),
    (lambda d: d["simulator"].update(speeed=3), "simulator.speeed", "unknown key"),
])
def test_whole_config_check_names_key(mutate: Any, key: str, reason: str) -> None:
    """What the composition root would refuse, found by check-config before a start:
    driver names against the registry, and the sections other parts own."""
    from firmware.service import check

    data = sim_data()
    mutate(data)
    with pytest.raises(cfg.ConfigError) as err:
        check(cfg.parse(data))
    assert err.value.key == key
    assert reason in err.value.reason


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[charger\nid = 1")
    with pytest.raises(cfg.ConfigError, match="not valid TOML"):
        cfg.load(bad)
    with pytest.raises(cfg.ConfigError, match="cannot read"):
        cfg.load(tmp_path / "missing.toml")
