from datetime import UTC, datetime, timedelta

from firmware.security_log import SecurityLog


def test_records_reach_listeners_in_order_and_stay_bounded():
    t = [datetime(2026, 1, 1, tzinfo=UTC)]
    log = SecurityLog(lambda: t[0], keep=3)
    seen = []
    unsubscribe = log.subscribe(seen.append)
    for i in range(5):
        t[0] += timedelta(seconds=1)
        log.record("ConsoleLogin", f"user {i}", critical=i == 4)
    assert [e.tech_info for e in seen] == [f"user {i}" for i in range(5)]
    assert [e.tech_info for e in log.recent()] == ["user 2", "user 3", "user 4"]
    assert log.recent(1)[0].critical and log.recent(1)[0].at == t[0]
    unsubscribe()
    log.record("ResetOrReboot")
    assert len(seen) == 5
