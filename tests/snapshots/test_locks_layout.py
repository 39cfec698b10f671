"""The Locks tab from canned data: the blocking forest as an operator sees it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from canned import NOW, CannedSource, backend, incident_snapshot, settle

from pgtop.app import PgTopApp
from pgtop.collectors.locks import LocksData, LockWait
from pgtop.config import Settings
from pgtop.model import ActivitySnapshot
from pgtop.widgets.keyed_table import KeyedTable


def wait(pid: int, locktype: str, mode: str, seconds: float, **fields: Any) -> LockWait:
    values: dict[str, Any] = {
        "relation": None,
        "page": None,
        "tuple": None,
        "transactionid": None,
        "virtualxid": None,
        "classid": None,
        "objid": None,
        "objsubid": None,
    }
    values.update(fields)
    return LockWait(
        pid=pid,
        locktype=locktype,
        mode=mode,
        waitstart=NOW - timedelta(seconds=seconds),
        **values,
    )


WAITS = (
    wait(4102, "transactionid", "ShareLock", 170, transactionid="7781"),
    wait(4103, "transactionid", "ShareLock", 38, transactionid="7790"),
    wait(4110, "relation", "AccessExclusiveLock", 61, relation="orders"),
    wait(4113, "relation", "AccessShareLock", 20, relation="orders"),
)


def locks_snapshot() -> ActivitySnapshot:
    """The incident's chain 4101 <- 4102 <- 4103, plus a migration stuck behind two reports
    with a reader queued behind it."""
    base = incident_snapshot()

    def report(pid: int) -> Any:
        return backend(
            pid,
            application_name="bi-report",
            state="active",
            wait_event_type="IO",
            wait_event="DataFileRead",
            xact_start=NOW - timedelta(minutes=5, seconds=pid % 10),
            query_start=NOW - timedelta(minutes=5, seconds=pid % 10),
            query="SELECT customer_id, sum(total) FROM orders GROUP BY 1",
        )

    extra = (
        report(4111),
        report(4112),
        backend(
            4110,
            application_name="migrate",
            user="deploy",
            state="active",
            wait_event_type="Lock",
            wait_event="relation",
            xact_start=NOW - timedelta(seconds=61),
            query_start=NOW - timedelta(seconds=61),
            blocked_by=(4111, 4112),
            query="ALTER TABLE orders ADD COLUMN note text",
        ),
        backend(
            4113,
            application_name="checkout-api",
            state="active",
            wait_event_type="Lock",
            wait_event="relation",
            xact_start=NOW - timedelta(seconds=20),
            query_start=NOW - timedelta(seconds=20),
            blocked_by=(4110,),
            query="SELECT * FROM orders WHERE id = $1",
        ),
    )
    return replace(base, backends=base.backends + extra)


async def show_locks(pilot: Any) -> None:
    await settle(pilot)
    await pilot.press("2")
    table = pilot.app.screen.query_one("#locks-table", KeyedTable)
    for _ in range(200):
        if len(table.rows) == 8 and pilot.app.tab_data.get("locks") is not None:
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)


def test_locks_at_120x35(snap_compare: Any) -> None:
    """Key 2: status line with 4 sessions waiting and the longest wait (2m50s, pid 4102).
    Roots first: 4101 "!! idle in tx" blocking 1 directly and 2 in all, then the two
    reports (older first) each above the ALTER TABLE waiting for both; under the first the
    ALTER has the queued SELECT below it, under the second it is marked "↑" (listed above).
    Tree lines ├─ └─ │; each waiter's lock (ShareLock xid 7781, AccessExclusiveLock orders)
    and how long it has waited; the cursor "▶" on the first root."""
    app = PgTopApp(
        Settings(refresh=60),
        source=CannedSource(locks_snapshot(), {"locks": LocksData(locks_snapshot(), WAITS)}),
    )
    assert snap_compare(app, terminal_size=(120, 35), run_before=show_locks)


def test_locks_at_80x24(snap_compare: Any) -> None:
    """80 columns: the tree of sessions, and for each waiter what it waits for (lock mode and
    object) and for how long; the query gives way first."""
    app = PgTopApp(
        Settings(refresh=60),
        source=CannedSource(locks_snapshot(), {"locks": LocksData(locks_snapshot(), WAITS)}),
    )
    assert snap_compare(app, terminal_size=(80, 24), run_before=show_locks)
