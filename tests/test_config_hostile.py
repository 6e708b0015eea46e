"""The config file from a careless installer (issue 16): every value ``chargebay
check-config`` used to call OK is refused with the key and the reason, and the loader
never crashes or hangs on a file that is not a config file."""

from __future__ import annotations

import os
import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest

from firmware import config as cfg
from firmware.service import check

EXAMPLES = Path(__file__).parent.parent / "examples"


def sim_data() -> dict[str, Any]:
    return tomllib.loads((EXAMPLES / "sim.toml").read_text())


def refused(mutate: Any, whole: bool = False) -> cfg.ConfigError:
    data = sim_data()
    mutate(data)
    with pytest.raises(cfg.ConfigError) as err:
        parsed = cfg.parse(data)
        if whole:
            check(parsed)
    return err.value


def conn(**kw: Any) -> Any:
    return lambda d: d["connector"][0].update(**kw)


def stage(**kw: Any) -> Any:
    return lambda d: d["power_stage"].update(**kw)


@pytest.mark.parametrize("mutate,key", [
    (conn(cable_max_current_a=float("inf")), "connector[0].cable_max_current_a"),
    (conn(cable_max_current_a=1e308), "connector[0].cable_max_current_a"),
    (conn(cable_max_voltage_v=float("nan")), "connector[0].cable_max_voltage_v"),
    (conn(cable_max_voltage_v=1e308), "connector[0].cable_max_voltage_v"),
    (stage(module_max_current_a=float("inf")), "power_stage.module_max_current_a"),
    (stage(module_rating_kw=1e308), "power_stage.module_rating_kw"),
    # CCS2 DC is rated to 500 A, 1000 V (IEC 62196-3); MCS to 3000 A, 1250 V (IEC 63379)
    (conn(cable_max_current_a=3000), "connector[0].cable_max_current_a"),
    (conn(cable_max_current_a=501), "connector[0].cable_max_current_a"),
    (conn(type="MCS", cable_max_current_a=3001), "connector[0].cable_max_current_a"),
    (conn(cable_max_voltage_v=5000), "connector[0].cable_max_voltage_v"),
    (conn(cable_max_voltage_v=1001), "connector[0].cable_max_voltage_v"),
    (conn(type="MCS", cable_max_voltage_v=1251), "connector[0].cable_max_voltage_v"),
    (conn(cable_max_voltage_v=10), "connector[0].cable_max_voltage_v"),
    (conn(evse_id=256), "connector[0].evse_id"),
    (conn(evse_id=10**30), "connector[0].evse_id"),
    (conn(evse_id=0), "connector[0].evse_id"),
    (conn(evse_id=True), "connector[0].evse_id"),
    (stage(outputs=[1, 1, 2]), "power_stage.outputs"),
    (stage(outputs=[True, 2]), "power_stage.outputs[0]"),
    (stage(module_count=2, module_addresses=[True, 1]), "power_stage.module_addresses[0]"),
    (stage(module_count=10**10), "power_stage.module_count"),
    (stage(bitrate=1), "power_stage.bitrate"),
    (stage(bitrate=10**9), "power_stage.bitrate"),
    (lambda d: d["io_board"].update(baudrate=7), "io_board.baudrate"),
    (lambda d: d["io_board"].update(baudrate=True), "io_board.baudrate"),
    # the board refuses a host heartbeat timeout above 1 s (hal/mcu): so does the file
    (lambda d: d["io_board"].update(heartbeat_timeout_ms=60000), "io_board.heartbeat_timeout_ms"),
    (lambda d: d["io_board"].update(heartbeat_timeout_ms=1001),
     "io_board.heartbeat_timeout_ms"),
    (lambda d: d["io_board"].update(heartbeat_timeout_ms=0), "io_board.heartbeat_timeout_ms"),
    (lambda d: d["control"].update(loop_hz=1e9), "control.loop_hz"),
    (lambda d: d["control"].update(loop_hz=0.01), "control.loop_hz"),
    (lambda d: d["control"].update(ramp_a_per_s=1e9), "control.ramp_a_per_s"),
    (lambda d: d["control"].update(cable_check_settle_s=1e6), "control.cable_check_settle_s"),
    (lambda d: d["control"].update(cable_check_settle_s=30), "control.cable_check_settle_s"),
    (lambda d: d["charger"].update(id="x" * 10_000), "charger.id"),
    (lambda d: d["charger"].update(id="CB 0001"), "charger.id"),
    (lambda d: d["charger"].update(id="../../etc/passwd"), "charger.id"),
    (lambda d: d["charger"].update(id="CB:1"), "charger.id"),
    (lambda d: d["charger"].update(id="x" * 49), "charger.id"),
    (lambda d: d["charger"].update(model="m" * 21), "charger.model"),
    (lambda d: d["charger"].update(colour="red"), "charger.colour"),
    (lambda d: d.update(chargr={}), "chargr"),
    (lambda d: d.update(ocpp=[1]), "ocpp"),
])
def test_the_file_is_refused_naming_the_key(mutate: Any, key: str) -> None:
    assert refused(mutate).key == key


def test_the_limits_themselves_are_accepted() -> None:
    """The bounds are the standards' and the board's, not tighter: 500 A CCS2 and
    3000 A / 1250 V MCS cables, a 1000 ms heartbeat timeout, a 48-character id."""
    data = sim_data()
    data["connector"][0].update(cable_max_current_a=500, cable_max_voltage_v=1000)
    data["connector"][1].update(type="MCS", cable_max_current_a=3000, cable_max_voltage_v=1250)
    data["io_board"]["heartbeat_timeout_ms"] = 1000
    data["charger"]["id"] = "A" * 47 + "."
    parsed = cfg.parse(data)
    assert parsed.connectors[1].cable_max_current_a == 3000
    assert parsed.io_board.heartbeat_timeout_ms == 1000


@pytest.mark.parametrize("url", ["ws://", "ws:///ocpp", "ws://host:0/ocpp",
                                 "ws://host:99999/ocpp", "ws://host:http/ocpp",
                                 "ws://ho st/ocpp", "http://host/ocpp",
                                 "ws://host/ocpp?x=1", "ws://" + "h" * 600])
def test_an_ocpp_url_without_a_host_or_with_a_bad_port_is_refused(url: str) -> None:
    err = refused(lambda d: d["ocpp"].update(csms_url=url), whole=True)
    assert err.key == "ocpp.csms_url"


def test_unknown_ocpp_keys_and_device_model_variables_are_errors() -> None:
    err = refused(lambda d: d["ocpp"].update(csms_ulr="ws://h/o"), whole=True)
    assert err.key == "ocpp.csms_ulr" and "unknown" in err.reason
    err = refused(lambda d: d["ocpp"].update(
        variables={"SampledDataCtrlr.TxUpdatedIntervall": "30"}), whole=True)
    assert err.key == "ocpp.variables.SampledDataCtrlr.TxUpdatedIntervall"
    assert "unknown device-model variable" in err.reason
    data = sim_data()
    data["ocpp"]["variables"] = {"SampledDataCtrlr.TxUpdatedInterval": "30"}
    check(cfg.parse(data))  # a known one is fine


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    result: list[BaseException | None] = []

    def load() -> None:
        try:
            cfg.load(fifo)
            result.append(None)
        except cfg.ConfigError as exc:
            result.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=30)  # generous: a hang is the failure, not slowness
    if worker.is_alive():  # unblock the hung open so the test process can end
        with open(fifo, "wb"):
            pass
        pytest.fail("loading a FIFO hangs")
    assert isinstance(result[0], cfg.ConfigError) and "not a regular file" in str(result[0])


def test_a_directory_and_a_huge_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="not a regular file"):
        cfg.load(tmp_path)
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * (cfg.MAX_FILE_BYTES + 10))
    with pytest.raises(cfg.ConfigError, match="at most"):
        cfg.load(big)


def test_deep_nesting_is_an_error_not_a_recursion_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text((EXAMPLES / "sim.toml").read_text()
                    + "\n[tariff]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(cfg.ConfigError):
        cfg.load(deep)
    inline = tmp_path / "inline.toml"
    inline.write_text("x = " + "{a = " * 50_000 + "1" + "}" * 50_000 + "\n")
    with pytest.raises(cfg.ConfigError):
        cfg.load(inline)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + (EXAMPLES / "sim.toml").read_bytes())
    assert cfg.load(path).identity.charge_point_id == "CB-SIM-0001"
