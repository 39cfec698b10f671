"""Who holds the connection slots: real sessions staged in groups, grouped from the Activity
snapshot a real server gave."""

from __future__ import annotations

import time

from collecting import once_source
from conftest import StagedGroups

from pgtop.collectors.connections import session_groups
from pgtop.model import ActivitySnapshot
from pgtop.reports import connections


async def test_groups_count_each_state_and_the_oldest_ages(
    dsn: str, staged_groups: StagedGroups
) -> None:
    time.sleep(1.1)  # the idle sessions have been idle for longer than that
    async with once_source(dsn) as source:
        snapshot = await source.poll()
    assert isinstance(snapshot, ActivitySnapshot)
    groups = {g.key: g for g in session_groups(snapshot, ("application_name",))}

    idle = groups[(staged_groups.idle,)]
    assert (idle.total, idle.active, idle.idle, idle.idle_in_transaction, idle.waiting) == (
        3,
        0,
        3,
        0,
        0,
    )
    assert idle.oldest_idle_s is not None
    assert idle.oldest_idle_s >= 1.0
    assert idle.oldest_xact_s is None
    assert idle.share == 3 / snapshot.capabilities.max_connections

    busy = groups[(staged_groups.busy,)]
    assert (busy.total, busy.active, busy.idle, busy.idle_in_transaction, busy.waiting) == (
        3,
        2,
        0,
        1,
        1,
    )
    assert busy.oldest_idle_s is None
    assert busy.oldest_xact_s is not None
    assert busy.oldest_xact_s >= 1.0, "the holder's transaction began before the sleep"

    # Largest first; every client session is in exactly one group, pgtop's own in none.
    ordered = session_groups(snapshot, ("application_name",))
    assert [g.total for g in ordered] == sorted((g.total for g in ordered), reverse=True)
    clients = [b for b in snapshot.backends if b.is_client]
    assert sum(g.total for g in ordered) == len(clients)
    assert all(b.pid not in snapshot.own_pids for b in clients)


async def test_the_report_has_one_row_per_database_user_application_and_client(
    dsn: str, staged_groups: StagedGroups
) -> None:
    async with once_source(dsn) as source:
        report = await connections.report(source)
    staged = [r for r in report.rows if r["application_name"] == staged_groups.busy]
    assert staged == [
        {
            "database": "postgres",
            "user": "postgres",
            "application_name": staged_groups.busy,
            "client_addr": "127.0.0.1",
            "total": 3,
            "active": 2,
            "idle": 0,
            "idle_in_transaction": 1,
            "waiting": 1,
            "oldest_idle_s": None,
            "oldest_xact_s": staged[0]["oldest_xact_s"],
        }
    ]
    assert staged[0]["oldest_xact_s"] > 0
    assert report.extra["max_connections"] == 200
    assert report.extra["reserved_connections"] >= 3
