"""Grouped connections on the Activity tab of the real app, against real staged sessions:
``a`` cycles the groupings, Enter lists exactly one group's sessions."""

from __future__ import annotations

from typing import Any

from conftest import Sessions, StagedGroups
from helpers import screen_text, shows, wait_for

from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.panes.activity import ActivityPane
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (160, 40)


def table(app: PgTopApp) -> KeyedTable:
    return app.screen.query_one("#activity-table", KeyedTable)


def keys(app: PgTopApp) -> list[Any]:
    return [row.key for row in table(app).visible_rows]


def header(app: PgTopApp) -> str:
    return " ".join(column.label for column in table(app).columns)


def pids_of(sessions: Sessions, application_name: str) -> set[int]:
    rows = sessions.admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name]
    ).fetchall()
    return {pid for (pid,) in rows}


async def test_a_cycles_the_groupings_and_enter_lists_one_group(
    dsn: str, sessions: Sessions, staged_groups: StagedGroups
) -> None:
    busy, idle = ("group", staged_groups.busy), ("group", staged_groups.idle)
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.activity is not None, "the first refresh")
        await pilot.press("a")
        await wait_for(pilot, lambda: busy in keys(app) and idle in keys(app), "the groups")
        assert header(app).startswith("APPLICATION SESSIONS ACTIVE IDLE IDLE TX WAITING")
        row = table(app).get_row(busy)
        assert row is not None
        # sessions, active, idle, idle in transaction, waiting
        assert row.cells[1:6] == ("3", "2", "0", "1", "1")
        assert row.cells[7], "the age of its oldest transaction"
        row = table(app).get_row(idle)
        assert row is not None
        assert row.cells[1:6] == ("3", "0", "3", "0", "0")
        assert row.cells[6], "how long its longest-idle session has been idle"
        assert row.cells[8] == "1.5%", "3 of max_connections 200"
        totals = [row.sort_values[1] for row in table(app).visible_rows]
        assert totals == sorted(totals, reverse=True), "the largest group first"
        await shows(pilot, "grouped by application (a: by user", "SESSIONS ▼")

        # Again: by user, by client address, by database, then one row per session.
        await pilot.press("a")
        await wait_for(pilot, lambda: ("group", "postgres") in keys(app), "by user")
        assert header(app).startswith("USER ")
        await pilot.press("a")
        await wait_for(pilot, lambda: ("group", "127.0.0.1") in keys(app), "by client")
        assert header(app).startswith("CLIENT ")
        await shows(pilot, "grouped by client address")
        await pilot.press("a")
        await wait_for(pilot, lambda: header(app).startswith("DATABASE "), "by database")
        await wait_for(pilot, lambda: ("group", "postgres") in keys(app), "by database")
        await pilot.press("a")
        await wait_for(pilot, lambda: header(app).startswith("PID "), "sessions again")
        await shows(pilot, "idle hidden (i)")
        assert all(isinstance(key, int) for key in keys(app))

        # Enter on a group lists exactly its sessions, idle ones included.
        await pilot.press("a")
        await wait_for(pilot, lambda: idle in keys(app), "the groups again")
        assert table(app).move_cursor_to_key(idle)
        await pilot.press("enter")
        expected = pids_of(sessions, staged_groups.idle)
        assert len(expected) == 3
        await wait_for(pilot, lambda: set(keys(app)) == expected, "the group's sessions")
        text = await shows(pilot, f"only application '{staged_groups.idle}' (Escape: all)")
        assert "idle shown (i)" in text
        pane = app.screen.query_one(ActivityPane)
        selected = pane.selected_backend()
        assert selected is not None
        assert selected.pid in expected, "what acts on the rows acts on this group"

        # Escape: every session again.
        await pilot.press("escape")
        await wait_for(pilot, lambda: set(keys(app)) > expected, "every session")
        assert "only application" not in screen_text(app)
        assert pids_of(sessions, staged_groups.busy) <= set(keys(app))
