"""The real app, driven by keys, against a real server with staged sessions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers import shows, wait_for
from textual.widgets import TabbedContent

from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.messages import SnapshotCollected
from pgtop.screens.session import SessionScreen
from pgtop.source import LiveSource
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (160, 40)


def table(app: PgTopApp) -> KeyedTable:
    return app.screen.query_one("#activity-table", KeyedTable)


def shown_pids(app: PgTopApp) -> list[Any]:
    return [row.key for row in table(app).visible_rows]


@pytest.fixture
def sleepers(sessions: Any) -> dict[str, int]:
    """Three sessions in pg_sleep, with distinct application names; name -> pid."""
    tag = uuid.uuid4().hex[:6]
    names = [f"sleeper-{tag}-{n}" for n in range(3)]
    for name in names:
        conn = sessions.open(application_name=name)
        sessions.run_in_background(conn, f"SELECT pg_sleep(60) /* {name} */")
    sessions.wait_until(
        "SELECT count(*) = 3 FROM pg_stat_activity "
        "WHERE application_name = ANY(%s) AND wait_event = 'PgSleep'",
        (names,),
    )
    rows = sessions.admin.execute(
        "SELECT application_name, pid FROM pg_stat_activity WHERE application_name = ANY(%s)",
        (names,),
    ).fetchall()
    return dict(rows)


def make_app(dsn: str) -> PgTopApp:
    return PgTopApp(Settings(conninfo=dsn, refresh=0.5))


async def test_activity_shows_staged_sessions_end_to_end(
    dsn: str, sleepers: dict[str, int]
) -> None:
    app = make_app(dsn)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(
            pilot, lambda: set(sleepers.values()) <= set(shown_pids(app)), "staged sessions"
        )
        await shows(pilot, "PostgreSQL", "primary", "pg_sleep(60)", "Timeout:PgSleep")
        await shows(pilot, *(name[:10] for name in sleepers), *map(str, sleepers.values()))
        # pgtop's own session is not listed
        # pgtop's own sessions (monitoring and actions) are never listed
        source = app.source
        assert isinstance(source, LiveSource)
        await wait_for(pilot, lambda: len(source.own_pids) == 2, "the action connection")
        await wait_for(
            pilot,
            lambda: app.activity is not None and app.activity.own_pids == source.own_pids,
            "a poll that knows both",
        )
        assert app.activity is not None
        assert not source.own_pids & {b.pid for b in app.activity.backends}
        assert not source.own_pids & set(shown_pids(app))


async def test_sort_filter_detail_and_tabs(dsn: str, sleepers: dict[str, int]) -> None:
    app = make_app(dsn)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: set(sleepers.values()) <= set(shown_pids(app)), "rows")

        # sort: step back from the default column to PID, then reverse it
        for _ in range(12):
            if table(app).sort_column == "pid":
                break
            await pilot.press("less_than_sign")
        assert table(app).sort_column == "pid"
        pids = shown_pids(app)
        assert pids == sorted(pids)
        await pilot.press("r")
        pids = shown_pids(app)
        assert pids == sorted(pids, reverse=True)
        await shows(pilot, "PID ▼")

        # filter by a substring of one application name
        name, pid = next(iter(sleepers.items()))
        await pilot.press("slash")
        await pilot.press(*name)
        await wait_for(pilot, lambda: shown_pids(app) == [pid], "filtered rows")
        await pilot.press("enter")  # keep the filter, back to the table
        assert shown_pids(app) == [pid]
        await shows(pilot, f"matching {name!r}")
        await pilot.press("escape")  # clears it
        await wait_for(pilot, lambda: len(shown_pids(app)) >= 3, "unfiltered rows")

        # detail of the selected backend: every field and the full query
        assert table(app).move_cursor_to_key(pid)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), "detail screen")
        await shows(
            pilot,
            f"Backend {pid}",
            f"SELECT pg_sleep(60) /* {name} */",
            "backend start",
            "Timeout:PgSleep",
            "HOLDS  ExclusiveLock",  # its own virtual transaction id
        )
        await pilot.press("escape")
        assert not isinstance(app.screen, SessionScreen)

        # tab keys
        tabs = app.screen.query_one(TabbedContent)
        await pilot.press("2")
        assert tabs.active == "locks"
        await pilot.press("6")
        assert tabs.active == "indexes"
        await pilot.press("1")
        assert tabs.active == "activity"

        # quit
        await pilot.press("q")
    assert app.return_code == 0


async def test_cursor_keeps_its_backend_across_refreshes(
    dsn: str, sleepers: dict[str, int], sessions: Any
) -> None:
    seen: list[SnapshotCollected] = []
    app = make_app(dsn)

    def hook(message: object) -> None:
        if isinstance(message, SnapshotCollected):
            seen.append(message)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await wait_for(pilot, lambda: set(sleepers.values()) <= set(shown_pids(app)), "rows")
        # Youngest transactions first: sessions started from now on land above the cursor.
        await pilot.press("r")
        assert table(app).sort_column == "xact_age"
        assert not table(app).sort_reverse
        target = max(sleepers.values())
        assert table(app).move_cursor_to_key(target)
        position = shown_pids(app).index(target)

        newcomers = [sessions.open(application_name=f"newcomer-{n}") for n in range(3)]
        for conn in newcomers:
            sessions.run_in_background(conn, "SELECT pg_sleep(60)")
        before = len(seen)

        def newcomers_above() -> bool:
            pids = shown_pids(app)
            return len(seen) > before + 1 and pids.index(target) >= position + 3

        await wait_for(pilot, newcomers_above, "newcomers above the cursor")
        assert table(app).cursor_key == target
        row = table(app).cursor_row
        assert row is not None
        assert row.key == target


async def test_pause_stops_refreshing(dsn: str) -> None:
    seen: list[SnapshotCollected] = []

    def hook(message: object) -> None:
        if isinstance(message, SnapshotCollected):
            seen.append(message)

    app = make_app(dsn)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "first snapshot")
        await pilot.press("space")
        assert app.paused
        await shows(pilot, "PAUSED")
        frozen = app.snapshot
        count = len(seen)
        await pilot.pause(1.6)  # three refresh intervals
        assert app.snapshot is frozen
        assert len(seen) == count
        await pilot.press("space")
        await wait_for(pilot, lambda: app.snapshot is not frozen, "a fresh snapshot")
        # + and - step the interval
        await pilot.press("minus")
        assert app.interval == 1.0
        await pilot.press("plus", "plus")
        assert app.interval == 0.5


async def test_sort_steps_only_through_the_columns_on_screen() -> None:
    """At 80 columns some columns are left out, and the tag marks' column has no header:
    ``>`` never sorts by a column the user cannot see."""
    from canned import CannedSource, incident_snapshot, settle

    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot(), {}))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        grid = table(app)
        on_screen = {column.key for column in grid.shown_columns if column.label}
        assert "tag" not in on_screen
        assert on_screen < {column.key for column in grid.columns}  # some left out
        seen = []
        for _ in range(len(grid.columns) + 1):
            await pilot.press("greater_than_sign")
            seen.append(grid.sort_column)
        assert set(seen) == on_screen
