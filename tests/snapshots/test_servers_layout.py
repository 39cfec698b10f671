"""The Servers tab from canned figures, at 80x24 and wider: a primary in view, its standby
behind, a read-only server, and one that stopped answering."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from canned import NOW, CannedSource, incident_snapshot, settle

from pgtop.app import PgTopApp
from pgtop.collectors.servers import ServerFigures
from pgtop.config import ServerProfile, Settings
from pgtop.servers import Server, ServerSet
from pgtop.widgets.keyed_table import KeyedTable

PRIMARY = ServerFigures(
    collected_at=NOW,
    version="16.4",
    standby=False,
    max_connections=200,
    connections=182,
    active=23,
    waiting=4,
    xacts=0,
    lag_s=None,
    upstream=None,
    standbys=1,
    tps=1843.0,
)


class NamedSource(CannedSource):
    def __init__(self, name: str) -> None:
        super().__init__(incident_snapshot())
        self.name = name

    def describe(self) -> str:
        return f"{self.name} · app@db.example:5432/shop"


class CannedServer(Server):
    """A server whose figures are given, never read."""

    def __init__(
        self, name: str, host: str, figures: ServerFigures | None, status: str, *,
        read_only: bool = False,
    ) -> None:  # fmt: skip
        self.profile = ServerProfile(name, f"host={host}", read_only)
        self.settings = Settings(read_only=read_only)
        self.source = NamedSource(name)  # type: ignore[assignment]
        self.host, self.port = host, "5432"
        self.figures = figures
        self.status = status
        self.ok = status == "ok"

    async def read(self) -> None:
        return None


def make_app() -> PgTopApp:
    settings = Settings(refresh=60, recorder_minutes=0)
    servers = ServerSet((), settings, {})
    standby = replace(
        PRIMARY, standby=True, connections=41, active=3, waiting=0, tps=210.0, lag_s=95.0,
        upstream="db1.example:5432", standbys=0,
    )  # fmt: skip
    reporting = replace(PRIMARY, version="15.8", connections=12, active=1, waiting=0, tps=3.5)
    servers.servers = [
        CannedServer("prod", "db1.example", PRIMARY, "ok"),
        CannedServer("prod/replica_a", "10.0.0.7", standby, "ok"),
        CannedServer("reporting", "db3.example", reporting, "ok", read_only=True),
        CannedServer(
            "billing",
            "db4.example",
            replace(PRIMARY, connections=7, active=0, waiting=0),
            "reconnecting since 09:41:07: no answer from the server in 10s; connection dropped",
        ),
    ]
    return PgTopApp(settings, servers=servers)


async def show_servers(pilot: Any) -> None:
    await settle(pilot)
    table = pilot.app.screen.query_one("#servers-table", KeyedTable)
    for _ in range(200):
        if len(table.rows) == 4:
            break
        await pilot.pause(0.02)
    table.move_cursor_to_key("billing")
    await pilot.pause(0.1)


def test_servers_tab_at_80x24(snap_compare: Any) -> None:
    """Key 0, first tab: the tab bar gives only keys but for "0 Servers"; the header names
    "prod ·"; rows prod (● in view, 182/200, 23 active, 4 waiting), prod/replica_a standby,
    reporting with "ok · read-only", billing in the error colour "reconnecting since 09:41:07";
    the cursor on billing: the status line says "1 not answering" and billing's whole reason."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=show_servers)


def test_servers_tab_at_160x30(snap_compare: Any) -> None:
    """Wider: host:port, the standby's upstream db1.example:5432, versions, tps, its lag
    1m35s, and the worst light finding: prod WARN 91% of connections, the standby's lag."""
    assert snap_compare(make_app(), terminal_size=(160, 30), run_before=show_servers)
