"""The Health tab and the header's health line in the real app, against real staged problems:
each row leads, with Enter, to where the user acts on it."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import psycopg
from helpers import screen_text, shows, wait_for
from psycopg.conninfo import conninfo_to_dict
from textual.widgets import TabbedContent

from pgtop.app import PgTopApp
from pgtop.config import Settings, Thresholds
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (140, 36)


def active_tab(app: PgTopApp) -> str:
    return str(app.screen.query_one(TabbedContent).active)


def cursor(app: PgTopApp, tab: str) -> object:
    return app.screen.query_one(f"#{tab}-table", KeyedTable).cursor_key


def make_app(conninfo: str, **thresholds: tuple[float, float]) -> PgTopApp:
    limits = Thresholds(**thresholds)
    return PgTopApp(Settings(conninfo=conninfo, refresh=0.5, health=limits))


async def test_an_idle_transaction_is_named_on_every_tab_and_enter_leads_to_it(
    fresh_db: str, sessions: Any
) -> None:
    idle = sessions.open("health-app-idle", dbname=str(conninfo_to_dict(fresh_db)["dbname"]))
    idle.execute("BEGIN")
    idle.execute("SELECT 1")
    pid = idle.info.backend_pid
    app = make_app(fresh_db, idle_in_transaction=(0.5, 600.0))
    async with app.run_test(size=(80, 24)) as pilot:
        # On the Activity tab, without opening Health: the header's third line names it.
        text = await shows(pilot, "WARN idle in tx", f"(pid {pid})")
        header = text.splitlines()[:3]
        assert any("conns" in line and "waiting" in line for line in header), header
        await pilot.press("7")
        await shows(pilot, "WARN     idle_in_transaction")
        table = app.screen.query_one("#health-table", KeyedTable)
        await wait_for(pilot, lambda: table.cursor_key == "idle_in_transaction", "worst first")
        await pilot.press("enter")
        await wait_for(pilot, lambda: active_tab(app) == "activity", "the Activity tab")
        await wait_for(pilot, lambda: cursor(app, "activity") == pid, "the cursor on the session")


async def test_a_lock_wait_leads_to_the_root_blocker_on_the_locks_tab(
    dsn: str, sessions: Any
) -> None:
    name = f"health_app_{uuid.uuid4().hex[:8]}"
    sessions.admin.execute(f"CREATE TABLE {name} (id int)")
    holder: psycopg.Connection[Any] = sessions.open("health-app-holder")
    holder.execute("BEGIN")
    holder.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
    waiter = sessions.open("health-app-waiter")
    sessions.run_in_background(waiter, f"SELECT count(*) FROM {name}")
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock')",
        (waiter.info.backend_pid,),
    )
    app = make_app(dsn, lock_wait=(0.2, 600.0))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("7")
            await shows(pilot, "WARN     lock_wait", f"pid {waiter.info.backend_pid}")
            table = app.screen.query_one("#health-table", KeyedTable)
            table.move_cursor_to_key("lock_wait")
            await pilot.press("enter")
            await wait_for(pilot, lambda: active_tab(app) == "locks", "the Locks tab")
            root = (holder.info.backend_pid,)
            await wait_for(pilot, lambda: cursor(app, "locks") == root, "the root blocker")
            assert str(holder.info.backend_pid) in screen_text(app)
    finally:
        holder.rollback()
        sessions.admin.execute(f"DROP TABLE {name}")


async def test_an_invalid_index_leads_to_the_indexes_tab(fresh_db: str, sessions: Any) -> None:
    db = sessions.open("health-app-stage", dbname=str(conninfo_to_dict(fresh_db)["dbname"]))
    db.execute("CREATE TABLE dup (v int)")
    db.execute("INSERT INTO dup VALUES (1), (1)")
    with contextlib.suppress(psycopg.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY dup_v_key ON dup (v)")
    row = db.execute("SELECT 'dup_v_key'::regclass::oid::bigint").fetchone()
    assert row is not None
    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        await shows(pilot, "WARN     invalid_indexes", "public.dup_v_key")
        app.screen.query_one("#health-table", KeyedTable).move_cursor_to_key("invalid_indexes")
        await pilot.press("enter")
        await wait_for(pilot, lambda: active_tab(app) == "indexes", "the Indexes tab")
        await wait_for(pilot, lambda: cursor(app, "indexes") == row[0], "the cursor on the index")
