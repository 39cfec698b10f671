"""The confirm dialog in the real app, against a real server."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import psycopg.sql
from helpers import notified, screen_text, shows, wait_for
from textual import events
from textual.widgets import Button

from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.screens.confirm import ConfirmDialog
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (140, 40)


def stage(sessions: Any, count: int = 1) -> dict[str, int]:
    """Sessions sleeping in pg_sleep; application name -> pid."""
    names = [f"victim-{uuid.uuid4().hex[:6]}" for _ in range(count)]
    for name in names:
        sessions.run_in_background(sessions.open(application_name=name), "SELECT pg_sleep(60)")
    sessions.wait_until(
        "SELECT count(*) = %s FROM pg_stat_activity "
        "WHERE application_name = ANY(%s) AND wait_event = 'PgSleep'",
        (count, names),
    )
    rows = sessions.admin.execute(
        "SELECT application_name, pid FROM pg_stat_activity WHERE application_name = ANY(%s)",
        (names,),
    ).fetchall()
    return dict(rows)


def alive(sessions: Any, pid: int) -> bool:
    row = sessions.admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
    return bool(row.fetchone()[0])


def table(app: PgTopApp) -> KeyedTable:
    return app.screen.query_one("#activity-table", KeyedTable)


async def select(pilot: Any, app: PgTopApp, pid: int) -> None:
    await wait_for(pilot, lambda: pid in [r.key for r in table(app).visible_rows], "the row")
    assert table(app).move_cursor_to_key(pid)


async def test_no_is_focused_and_escape_cancels(dsn: str, sessions: Any) -> None:
    (pid,) = stage(sessions).values()
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, pid)
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the dialog")
        assert app.screen.focused is not None
        assert isinstance(app.screen.focused, Button)
        assert app.screen.focused.id == "no"
        text = await shows(pilot, "Terminate this session?", f"pid  {pid}", "pg_terminate_backend")
        assert "rolled back" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmDialog), "closed")
        await pilot.pause(0.5)
        assert alive(sessions, pid)
        # Enter on the focused "No" does not terminate either.
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the dialog")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmDialog), "closed")
        assert alive(sessions, pid)


async def test_keys_typed_before_the_dialog_are_not_an_answer(dsn: str, sessions: Any) -> None:
    (pid,) = stage(sessions).values()
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, pid)
        # Typed ahead, all three before the dialog could be read: the keys are queued at
        # once (pilot.press would wait for each key to be handled before typing the next).
        for key in ("K", "y", "y"):
            event = events.Key(key, key)
            event.set_sender(app)
            app.post_message(event)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the dialog")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmDialog), "still asking"
        assert alive(sessions, pid)
        await pilot.pause(0.5)
        await pilot.press("y")
        await notified(pilot, f"session {pid} is gone")
        assert not alive(sessions, pid)


async def test_the_captured_target_survives_refreshes(dsn: str, sessions: Any) -> None:
    """Rows move under the dialog; the action still hits the session it was opened on."""
    staged = stage(sessions, 2)
    target, other = staged.values()
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, target)
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the dialog")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert dialog.plan.target.pid == target  # type: ignore[union-attr]
        snapshot = app.snapshot
        stage(sessions, 3)  # newcomers reorder the table behind the dialog
        await wait_for(pilot, lambda: app.snapshot is not snapshot, "a refresh")
        await wait_for(pilot, lambda: app.snapshot is not snapshot, "another refresh")
        assert dialog.plan.target.pid == target  # type: ignore[union-attr]
        await pilot.pause(0.5)
        await pilot.press("y")
        await notified(pilot, f"session {target} is gone")
    assert not alive(sessions, target)
    assert alive(sessions, other)


async def test_read_only_mode_offers_nothing(dsn: str, sessions: Any) -> None:
    (pid,) = stage(sessions).values()
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5, read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, pid)
        assert app.actions is None
        text = await shows(pilot, "Filter")
        assert "Terminate" not in text
        assert "Cancel query" not in text
        await pilot.press("K", "C")
        await pilot.pause(0.5)
        assert not isinstance(app.screen, ConfirmDialog)
        assert alive(sessions, pid)


async def test_the_dialog_survives_resizing(dsn: str, sessions: Any) -> None:
    (pid,) = stage(sessions).values()
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, pid)
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the dialog")
        for size in ((80, 24), (40, 12), SIZE):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.2)
            assert str(pid) in screen_text(app), f"the target is named at {size}"
        await pilot.press("escape")
    assert alive(sessions, pid)


async def test_analyze_from_the_tables_tab_hits_the_hostile_table(
    fresh_db: str, sessions: Any
) -> None:
    """A on a table named like an injection: the dialog quotes it, and only it is analyzed."""
    dbname = psycopg.conninfo.conninfo_to_dict(fresh_db)["dbname"]
    db = sessions.open(application_name="stage-tables", dbname=dbname)
    name = "x; DROP TABLE bystander; --"
    for table in (name, "bystander"):
        db.execute(
            psycopg.sql.SQL("CREATE TABLE {} (id int PRIMARY KEY)").format(
                psycopg.sql.Identifier(table)
            )
        )
    app = PgTopApp(Settings(conninfo=fresh_db, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        tables = app.screen.query_one("#tables-table", KeyedTable)
        await wait_for(pilot, lambda: bool(tables.visible_rows), "the tables")
        await pilot.press("slash", *"DROP", "enter")
        await wait_for(pilot, lambda: len(tables.visible_rows) == 1, "the hostile table")
        await pilot.press("A")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the dialog")
        await shows(
            pilot, 'ANALYZE "public"."x; DROP TABLE bystander; --"', "SHARE UPDATE EXCLUSIVE"
        )
        await pilot.pause(0.5)
        await pilot.press("y")
        await notified(pilot, "done in")
    analyzed = dict(
        db.execute("SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables").fetchall()
    )
    assert analyzed == {name: True, "bystander": False}
