"""The station's state directory opened as one step (issue 16): locked against a second
controller process, every file opened checked (a StateDirError names the file and what
to do), and queue.db matched to station.db by a generation id, so an emptied or replaced
queue is refused instead of becoming a silent fresh start."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from firmware.ocpp.queue import MessageQueue
from firmware.ocpp.settings import OcppSettings
from firmware.ocpp.storage import GENERATION_KEY, KeyValue, StateDir, open_db
from firmware.ocpp.v201.auth import AuthStore
from firmware.ocpp.v201.device_model import DeviceModel


@dataclass
class StationFiles:
    state: StateDir
    model: DeviceModel
    db: sqlite3.Connection
    kv: KeyValue
    auth: AuthStore
    queue: MessageQueue


def open_state(settings: OcppSettings, station_id: str,
               queue_notice: Callable[[str, str], None]) -> StationFiles:
    state = StateDir(settings.state_dir)
    state.lock()
    try:
        model = state.opened("device_model.db", lambda p: DeviceModel(p, settings.variables))
        model.set_internal("SecurityCtrlr", "SecurityProfile", str(settings.security_profile))
        model.set_internal("SecurityCtrlr", "Identity", station_id)
        db = state.opened("station.db", open_db)
        kv = state.opened("station.db", lambda _: KeyValue(db))
        auth = state.opened("station.db", lambda _: AuthStore(db))
        queue_path = state.path / "queue.db"
        if kv.stored(GENERATION_KEY) is not None and (
                not queue_path.exists() or queue_path.stat().st_size == 0):
            # refused before SQLite makes an empty file a fresh queue
            state.check_generation(None, kv, queue_path)
        queue = state.opened("queue.db", lambda p: MessageQueue(p, notice=queue_notice))
        known = queue.get_state("generation")
        generation = state.check_generation(str(known["id"]) if known else None, kv,
                                            queue.path)
        if known is None:
            queue.set_state("generation", {"id": generation})
    except BaseException:
        state.unlock()
        raise
    return StationFiles(state, model, db, kv, auth, queue)
