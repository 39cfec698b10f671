"""The Pools view of the real app on a real PgBouncer's admin console: clients waiting for a
server, a pool's detail, and PgBouncer stopped and started again under pgtop."""

from __future__ import annotations

from typing import Any

from conftest import POOL_SIZE, Pooled
from helpers import screen_text, shows, wait_for
from textual.widgets import TabbedContent

from pgtop.app import PgTopApp
from pgtop.cluster import Bouncer
from pgtop.config import Settings
from pgtop.model import PoolsSnapshot
from pgtop.screens.pool import PoolScreen
from pgtop.source import PoolerSource
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (120, 30)


def table(app: PgTopApp) -> KeyedTable:
    return app.screen.query_one("#pools-table", KeyedTable)


def keys(app: PgTopApp) -> list[Any]:
    return [row.key for row in table(app).visible_rows]


async def test_the_pools_view_shows_waiting_clients_and_survives_a_restart(
    bouncer: Bouncer, pooled: Pooled
) -> None:
    pooled.hold(POOL_SIZE, "holder")
    pooled.wait(2, "waiter")
    settings = Settings(conninfo=bouncer.conninfo(), refresh=0.5)
    app = PgTopApp(settings, source=PoolerSource(settings))
    async with app.run_test(size=SIZE) as pilot:
        text = await shows(pilot, "2 clients waiting for a server, longest", "waiting 2 longest")
        assert "PgBouncer " in text
        # The Pools view instead of the PostgreSQL tabs, and no action offered.
        tabs = app.screen.query_one(TabbedContent)
        assert tabs.active == "pools"
        assert [pane.id for pane in tabs.query("TabPane")] == ["pools", "health"]
        # The health line names the waiting clients (longer than 1 s: warn).
        await shows(pilot, "WARN 2 clients wait ", timeout=30)
        assert "Activity" not in text
        assert app.actions is None
        row = table(app).get_row(("postgres", "postgres"))
        assert row is not None
        assert row.cells[2:4] == (str(POOL_SIZE), "2")
        assert row.cells[4], "how long the oldest client has waited"
        assert keys(app)[0] == ("postgres", "postgres"), "the waiting pool first"

        # The filter, as on every list.
        await pilot.press("slash", *"pgbouncer", "enter")
        await wait_for(pilot, lambda: keys(app) == [("pgbouncer", "pgbouncer")], "filtered")
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(keys(app)) == 2, "every pool again")

        # Enter: the pool's clients, the waiting ones first, and its servers.
        assert table(app).move_cursor_to_key(("postgres", "postgres"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PoolScreen), "the detail")
        detail = await shows(pilot, "Clients (4)", "Servers (2)", "waiting ")
        clients = detail[detail.index("Clients (4)") : detail.index("Servers (2)")]
        lines = [line.strip() for line in clients.splitlines()[1:] if line.strip()]
        assert [line.split()[0] for line in lines[:4]] == ["waiting"] * 2 + ["active"] * 2
        assert "waiter" in lines[0]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PoolScreen), "back")

        # PgBouncer stops: the view says it lost the connection and keeps the last data.
        bouncer.stop()
        await shows(pilot, "disconnected since", "STALE")
        assert table(app).get_row(("postgres", "postgres")) is not None
        # It comes back: so does the view, with fresh data (a restart dropped every client).
        bouncer.start()
        await wait_for(pilot, lambda: app.lost_since is None and not app.problem, "back")
        await shows(pilot, "no client waiting for a server")
        assert "disconnected since" not in screen_text(app)
        assert isinstance(app.snapshot, PoolsSnapshot)
