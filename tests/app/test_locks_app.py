"""The Locks tab of the real app, driven by keys, against real staged lock waits."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from canned import CannedSource, backend, incident_snapshot
from helpers import screen_text, shows, wait_for
from textual.widgets import TabbedContent

from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.messages import TabDataCollected
from pgtop.panes.locks import LocksPane
from pgtop.screens.session import SessionScreen
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (160, 40)


def _table(sessions: Any) -> str:
    name = f"locks_app_{uuid.uuid4().hex[:10]}"
    sessions.admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v int)")
    sessions.admin.execute(f"INSERT INTO {name} SELECT g, 0 FROM generate_series(1, 3) g")
    return name


def _begin(sessions: Any, name: str, *statements: str) -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] = sessions.open(application_name=name)
    conn.execute("BEGIN")
    for sql in statements:
        conn.execute(sql)
    return conn


def _wait_behind(sessions: Any, conn: psycopg.Connection[Any], sql: str, blockers: int) -> int:
    """Run ``sql`` on ``conn`` in the background until it waits on ``blockers`` sessions."""
    sessions.run_in_background(conn, sql)
    pid = conn.info.backend_pid
    sessions.wait_until(
        "SELECT wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(pid)) = %s "
        "FROM pg_stat_activity WHERE pid = %s",
        (blockers, pid),
    )
    return pid


@pytest.fixture
def two_trees(sessions: Any) -> dict[str, int]:
    """a <- b <- c on rows (a idle in transaction); d <- e on a table lock, d older."""
    t1, t2 = _table(sessions), _table(sessions)
    d = _begin(sessions, "tree-d", f"LOCK TABLE {t2} IN SHARE MODE")
    e = _begin(sessions, "tree-e")
    pe = _wait_behind(sessions, e, f"LOCK TABLE {t2} IN EXCLUSIVE MODE", 1)
    a = _begin(sessions, "tree-a", f"UPDATE {t1} SET v = 1 WHERE id = 1")
    b = _begin(sessions, "tree-b", f"UPDATE {t1} SET v = 1 WHERE id = 2")
    pb = _wait_behind(sessions, b, f"UPDATE {t1} SET v = 2 WHERE id = 1", 1)
    c = sessions.open(application_name="tree-c")
    pc = _wait_behind(sessions, c, f"UPDATE {t1} SET v = 2 WHERE id = 2", 1)
    return {
        "a": a.info.backend_pid,
        "b": pb,
        "c": pc,
        "d": d.info.backend_pid,
        "e": pe,
    }


def locks_table(app: PgTopApp) -> KeyedTable:
    return app.screen.query_one("#locks-table", KeyedTable)


def keys(app: PgTopApp) -> list[Any]:
    return [row.key for row in locks_table(app).visible_rows]


async def test_the_tree_roots_first_and_the_cursor_keeps_its_node(
    dsn: str, sessions: Any, two_trees: dict[str, int]
) -> None:
    a, b, c, d, e = (two_trees[k] for k in "abcde")
    collected: list[TabDataCollected] = []

    def hook(message: object) -> None:
        if isinstance(message, TabDataCollected) and message.tab == "locks":
            collected.append(message)

    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await pilot.press("2")
        assert app.screen.query_one(TabbedContent).active == "locks"
        expected = [(a,), (a, b), (a, b, c), (d,), (d, e)]
        await wait_for(pilot, lambda: keys(app) == expected, "the two trees")
        # a blocks two sessions in all: before d, whose transaction is older but blocks one.
        text = await shows(
            pilot,
            f"└─ {b}",
            f"   └─ {c}",
            f"└─ {e}",
            "▲ 1/2",
            "▲ 1/1",
            "!! idle in tx",
            "3 sessions waiting on locks",
            "longest wait",
            "2 root blockers",
            f"!! root {a} idle in transaction",
            "ExclusiveLock",  # e waits for the table lock
        )
        # On screen, a root's line starts with its pid (after the one-cell cursor gutter).
        starts = [line[1:].split(" ", 1)[0] for line in text.splitlines()]
        assert starts.index(str(a)) < starts.index(str(d))
        assert starts.index(str(a)) < starts.index("└─")

        # The cursor goes to b; a bigger tree appears above it; the cursor stays on b.
        await pilot.press("down")
        assert locks_table(app).cursor_key == (a, b)
        t3 = _table(sessions)
        f = _begin(sessions, "tree-f", f"LOCK TABLE {t3} IN SHARE MODE")
        waiters = []
        for n in range(3):
            conn = _begin(sessions, f"tree-f-{n}")
            waiters.append(
                _wait_behind(sessions, conn, f"LOCK TABLE {t3} IN EXCLUSIVE MODE", n + 1)
            )
        pf = f.info.backend_pid
        before = len(collected)
        await wait_for(
            pilot,
            lambda: bool(keys(app)) and keys(app)[0] == (pf,) and len(collected) > before + 1,
            "the new tree on top",
        )
        assert locks_table(app).cursor_key == (a, b)
        assert locks_table(app).cursor_index == keys(app).index((a, b)) > 1
        await shows(pilot, "6 sessions waiting on locks", "3 root blockers")

        pane = app.screen.query_one(LocksPane)
        selected = pane.selected_backend()
        assert selected is not None
        assert selected.pid == b

        # Enter opens the detail of the selected node's session.
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), "detail screen")
        await shows(pilot, f"Backend {b}", "WAITS  ShareLock")
        await pilot.press("escape")
        assert not isinstance(app.screen, SessionScreen)

        # Activity agrees: the same blockers, from the same poll.
        await pilot.press("1")
        activity = app.screen.query_one("#activity-table", KeyedTable)
        await wait_for(pilot, lambda: activity.get_row(b) is not None, "b in Activity")
        row_b = activity.get_row(b)
        row_a = activity.get_row(a)
        assert row_b is not None
        assert row_a is not None
        assert str(a) in row_b.cells
        assert "▲ blocks 1" in row_a.cells


async def test_no_waits_says_so(dsn: str) -> None:
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await shows(pilot, "no session is waiting on a lock")
        assert keys(app) == []
        assert app.screen.query_one(LocksPane).selected_backend() is None
        assert "▲" not in screen_text(app)


async def test_the_cursor_follows_its_session_when_its_place_changes() -> None:
    """Canned polls: 3's blocker 2 moves from under 1 to under 5; the cursor follows 3."""

    def waiting(pid: int, *blockers: int) -> Any:
        return backend(pid, state="active", wait_event_type="Lock", blocked_by=blockers)

    first = replace(
        incident_snapshot(),
        backends=(backend(1), waiting(2, 1), waiting(3, 2), backend(5)),
    )
    # 1 now blocks two others and comes first: 3's new place is not at its old index.
    second = replace(
        first,
        backends=(
            backend(1),
            waiting(2, 5),
            waiting(3, 2),
            backend(5),
            waiting(4, 1),
            waiting(6, 1),
        ),
    )
    source = CannedSource(first)
    app = PgTopApp(Settings(refresh=60), source=source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: keys(app) == [(1,), (1, 2), (1, 2, 3)], "first tree")
        await pilot.press("end")
        assert locks_table(app).cursor_key == (1, 2, 3)
        source.snapshot = second
        app.refresh_now()
        second_tree = [(1,), (1, 4), (1, 6), (5,), (5, 2), (5, 2, 3)]
        await wait_for(pilot, lambda: keys(app) == second_tree, "second tree")
        assert locks_table(app).cursor_key == (5, 2, 3)
        selected = app.screen.query_one(LocksPane).selected_backend()
        assert selected is not None
        assert selected.pid == 3
