"""The state directory failing (issue 16): a disk that fills up or turns read-only
mid-session, an empty / corrupt / unopenable database at start, a second controller
process on the same directory. Real station, simulated hardware, virtual time."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ocpp_rig import OcppRig, run_rig

from firmware.core.transitions import Phase
from firmware.drivers import HardwareMissing

ROOT = Path(__file__).resolve().parent.parent
SESSION = "plug 1 eactros600 soc=20\nauthorize 1 rfid 04A1B2C3D4E5F6\nwait 1 Charging timeout=2m\n"


def _disk(r: OcppRig, writable: bool) -> None:
    """The queue's disk read-only (SQLite's own refusal, as a remounted filesystem
    gives) or writable again."""
    r.station.queue.db.execute(f"PRAGMA query_only = {0 if writable else 1}")


def _fill_disk(r: OcppRig) -> None:
    """No free page left in queue.db (SQLITE_FULL, as a full filesystem gives)."""
    db = r.station.queue.db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def _on_disk(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [str(row[0]) for row in db.execute("SELECT payload FROM message ORDER BY id")]
    finally:
        db.close()


def test_read_only_disk_mid_session_with_continue(tmp_path: Path) -> None:
    """on_storage_loss = "continue": samples go on (from memory), the stop's Ended is
    made and kept in memory while the CSMS is away too, written to queue.db once the
    disk is back, then delivered; the log and the security log say so."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        _disk(r, writable=False)
        mark = r.mark()
        await r.sleep(120)
        q = r.station.queue
        assert not q.storage_ok and r.phase() is Phase.CHARGING
        periodic = [x for x in r.csms.received[mark:] if x.action == "TransactionEvent"
                    and x.payload["triggerReason"] == "MeterValuePeriodic"]
        assert len(periodic) >= 3  # samples did not stop
        await r.world.csms_switch(False)
        await r.play("stop 1 Local\nwait 1 Finished timeout=1m\n")
        await r.sleep(5)
        ended = [m for m in q.pending() if m.payload.get("eventType") == "Ended"]
        assert ended and ended[0].id < 0  # in memory: the disk is still read-only
        _disk(r, writable=True)
        await r.sleep(3)
        assert q.storage_ok
        assert any('"Ended"' in p for p in _on_disk(tmp_path / "queue.db"))
        await r.world.csms_switch(True)
        await r.world.settle()
        assert r.csms.messages("TransactionEvent")[-1]["eventType"] == "Ended"
        kinds = [e.kind for e in r.world.charger.security.recent()]
        assert kinds.count("MemoryExhaustion") == 2  # lost, and back
        await r.play("unplug 1\nwait 1 Available timeout=30s\n")
    run_rig(body, state_dir=tmp_path, ocpp={"on_storage_loss": "continue"})


def test_full_disk_mid_session_stops_charging_by_default(tmp_path: Path) -> None:
    """The default, on_storage_loss = "stop": the running session ends (its Ended is made
    and, once the CSMS is back, delivered), no new session starts until the disk takes
    writes again. The CSMS is away so the queue grows into the full disk."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        await r.world.csms_switch(False)
        _fill_disk(r)
        for _ in range(600):
            if not r.station.queue.storage_ok:
                break
            await r.sleep(1)
        assert not r.station.queue.storage_ok
        await r.play("wait 1 Finished timeout=1m\nunplug 1\n")
        await r.sleep(5)
        assert r.phase() is Phase.UNAVAILABLE
        await r.world.csms_switch(True)
        ended = await r.expect("TransactionEvent", {"eventType": "Ended"}, within=300)
        assert ended["transactionInfo"]["stoppedReason"] == "Other"
        r.station.queue.db.execute("PRAGMA max_page_count = 1073741823")
        await r.sleep(3)
        assert r.station.queue.storage_ok and r.phase() is Phase.AVAILABLE
        await r.play(SESSION + "stop 1 Local\nwait 1 Finished timeout=1m\nunplug 1\n")


def _open_transaction(state: Path) -> None:
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
    run_rig(body, state_dir=state, power_cut=True)


def test_empty_queue_file_is_refused_not_a_silent_fresh_start(tmp_path: Path) -> None:
    _open_transaction(tmp_path)
    for name in ("queue.db-wal", "queue.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    (tmp_path / "queue.db").write_bytes(b"")
    with pytest.raises(HardwareMissing) as info:
        run_rig(lambda r: r.sleep(1), state_dir=tmp_path)
    text = str(info.value)
    assert "queue.db" in text and "restore it from a backup" in text
    assert info.value.key == "ocpp.state_dir"
    assert (tmp_path / "queue.db").stat().st_size == 0  # nothing was started on it


@pytest.mark.parametrize("name", ["queue.db", "station.db", "device_model.db"])
def test_corrupt_database_names_the_file_and_what_to_do(tmp_path: Path, name: str) -> None:
    _open_transaction(tmp_path)
    for suffix in ("-wal", "-shm"):
        (tmp_path / (name + suffix)).unlink(missing_ok=True)
    (tmp_path / name).write_bytes(b"this is no database, it was overwritten" * 100)
    with pytest.raises(HardwareMissing) as info:
        run_rig(lambda r: r.sleep(1), state_dir=tmp_path)
    assert name in str(info.value) and "not a readable SQLite database" in str(info.value)


def test_unopenable_state_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(HardwareMissing) as info:
        run_rig(lambda r: r.sleep(1), state_dir=tmp_path / "file" / "state")
    assert "cannot create the state directory" in str(info.value)


def test_a_second_controller_on_the_same_state_directory_refuses(tmp_path: Path) -> None:
    async def body(r: OcppRig) -> None:
        code = ("import sys; from firmware.ocpp.storage import StateDir, StateDirError\n"
                "try:\n    StateDir(sys.argv[1]).lock()\n"
                "except StateDirError as e:\n    print(e); sys.exit(2)\n")
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                               capture_output=True, text=True, cwd=ROOT, timeout=60,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert other.returncode == 2, other
        assert f"in use by another controller process (pid {os.getpid()})" in other.stdout
    run_rig(body, state_dir=tmp_path)
    run_rig(lambda r: r.sleep(1), state_dir=tmp_path)  # released by the stop
