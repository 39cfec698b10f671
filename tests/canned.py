"""Canned data for layout tests: no server, a fixed clock, deterministic screens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from pgtop.actions import ActionRunner
from pgtop.collectors.activity import SessionDetail
from pgtop.collectors.session import Figures, SessionFigures
from pgtop.collectors.statements import Counters, Statement
from pgtop.model import (
    HIDDEN_QUERY,
    ActivitySnapshot,
    Backend,
    Capabilities,
    PoolsSnapshot,
    ServerCounters,
    Snapshot,
)
from pgtop.source import PollError, SourceKind

NOW = datetime(2026, 11, 26, 9, 30, 0, tzinfo=timezone.utc)

CAPS = Capabilities(
    server_version="15.18 (Debian 15.18-0+deb12u1)",
    server_version_num=150018,
    is_standby=False,
    user="postgres",
    database="shop",
    is_superuser=True,
    read_all_stats=True,
    monitor=True,
    signal_backend=True,
    pgss_preloaded=True,
    pgss_version="1.10",
    max_connections=100,
    reserved_connections=3,
    started_at=NOW - timedelta(days=3, hours=4),
)

HOSTILE = (
    "SELECT '[bold]x[/]' , '[@click=app.quit]q[/]', '[unbalanced', "
    "'\x1b[2J\x07bell\r\u202eevil', '日本語 😀 e\u0301'"
)


def backend(pid: int, **fields: Any) -> Backend:
    base = Backend(
        pid=pid,
        database="shop",
        user="app",
        application_name="web",
        client_addr="10.0.0.7",
        client_hostname=None,
        client_port=50000 + pid % 1000,
        backend_type="client backend",
        state="idle",
        wait_event_type="Client",
        wait_event="ClientRead",
        backend_start=NOW - timedelta(hours=2),
        xact_start=None,
        query_start=NOW - timedelta(minutes=5),
        state_change=NOW - timedelta(minutes=5),
        backend_xid=None,
        backend_xmin=None,
        leader_pid=None,
        query_id=None,
        blocked_by=(),
        query="SELECT 1",
    )
    return replace(base, **fields)


def incident_backends() -> tuple[Backend, ...]:
    """A blocking chain, a hostile query, a hidden one, and ordinary work."""
    return (
        backend(
            4101,
            application_name="admin-console",
            user="dba",
            state="idle in transaction",
            xact_start=NOW - timedelta(minutes=12, seconds=3),
            query_start=NOW - timedelta(minutes=12),
            query="UPDATE accounts SET balance = balance - 5 WHERE id = 1",
        ),
        backend(
            4102,
            application_name="checkout-api",
            state="active",
            wait_event_type="Lock",
            wait_event="transactionid",
            xact_start=NOW - timedelta(minutes=3),
            query_start=NOW - timedelta(minutes=3),
            blocked_by=(4101,),
            query="UPDATE accounts SET balance = balance + 1\n  WHERE id = 1",
        ),
        backend(
            4103,
            application_name="checkout-api",
            state="active",
            wait_event_type="Lock",
            wait_event="transactionid",
            xact_start=NOW - timedelta(seconds=40),
            query_start=NOW - timedelta(seconds=40),
            blocked_by=(4102,),
            query="UPDATE accounts SET balance = balance + 2 WHERE id = 2",
        ),
        backend(
            4104,
            application_name="[red]evil\x1b]0;owned\x07",
            state="active",
            wait_event_type=None,
            wait_event=None,
            xact_start=NOW - timedelta(seconds=2.5),
            query_start=NOW - timedelta(seconds=2.5),
            query=HOSTILE,
        ),
        backend(
            4105,
            user="other_team",
            application_name="",
            state=None,
            wait_event_type=None,
            wait_event=None,
            query=HIDDEN_QUERY,
            query_start=None,
            state_change=None,
            client_addr=None,
        ),
        backend(
            4106,
            application_name="nightly-report",
            state="active",
            wait_event_type="Timeout",
            wait_event="PgSleep",
            xact_start=NOW - timedelta(hours=1, minutes=2),
            query_start=NOW - timedelta(hours=1, minutes=2),
            query="SELECT status, count(*) FROM orders GROUP BY status",
        ),
        backend(4107),
        backend(4108),
        backend(
            90,
            backend_type="autovacuum launcher",
            user=None,
            database=None,
            application_name="",
            state=None,
            wait_event_type="Activity",
            wait_event="AutoVacuumMain",
            client_addr=None,
            query="",
        ),
    )


def incident_snapshot() -> ActivitySnapshot:
    return ActivitySnapshot(
        capabilities=CAPS,
        counters=ServerCounters(NOW, 123456, 99000, 1000, own_alive=1),
        backends=incident_backends(),
        own_pids=frozenset({4200}),
        tps=412.5,
        cache_hit=0.9912,
    )


class CannedSource:
    """A source (``pgtop.source.Source``) that returns the same data on every poll: the
    snapshot (a PostgreSQL server's, or a PgBouncer's pools), and for each tab in ``tabs``
    its data (no server)."""

    def __init__(self, snapshot: Snapshot, tabs: Mapping[str, object] | None = None) -> None:
        self.snapshot = snapshot
        self.tabs = dict(tabs or {})
        self.kind: SourceKind = "postgresql"
        self.capabilities: Capabilities | None = None
        # Offered, as on a live server (nothing connects unless an action runs); none on
        # a PgBouncer.
        self.actions: ActionRunner | None = None
        if isinstance(snapshot, PoolsSnapshot):
            self.kind = "pgbouncer"
        else:
            self.capabilities = snapshot.capabilities
            self.actions = ActionRunner("", None, 3.0)
        self.lost_since: datetime | None = None
        self.attempts = 0
        self.other_databases = False
        """Its catalog data is of one database."""
        self.needs: dict[str, object] = {}
        """What each tab's pane last said it needs."""

    def describe(self) -> str:
        return "app@db.example:5432/shop"

    async def poll(self) -> Snapshot:
        return self.snapshot

    async def collect(
        self, tab: str, activity: Snapshot, needs: object, *, now: bool = False
    ) -> object | None:
        self.needs[tab] = needs
        return self.tabs.get(tab)

    async def fetch(self, request: Any) -> Any:
        if isinstance(request, SessionDetail):
            return await self.session_detail(request.backend)
        if isinstance(request, SessionFigures):
            return self.session_figures(request.backend)
        raise PollError("not in the canned data", connection_lost=False)

    def session_figures(self, backend: Backend) -> Figures:
        """No progress; an entry in pg_stat_statements for every statement."""
        counters = Counters(*([0] * len(Counters._fields)))
        counters = counters._replace(calls=1234, exec_ms=1234 * 40.0, rows=2468)
        entry = Statement(
            userid=10,
            dbid=5,
            toplevel=True,
            queryid=backend.query_id or 42,
            user=backend.user,
            database=backend.database,
            counters=counters,
            mean_exec_ms=40.0,
            max_exec_ms=2100.0,
        )
        return Figures((), entry, "")

    async def session_detail(self, backend: Backend) -> tuple[str | None, list[dict[str, Any]]]:
        return backend.query, [
            {
                "locktype": "transactionid",
                "mode": "ShareLock",
                "granted": False,
                "relation": None,
                "transactionid": "7781",
                "virtualxid": None,
                "classid": None,
                "objid": None,
                "waitstart": NOW - timedelta(seconds=30),
            },
            {
                "locktype": "relation",
                "mode": "RowExclusiveLock",
                "granted": True,
                "relation": "accounts",
                "transactionid": None,
                "virtualxid": None,
                "classid": None,
                "objid": None,
                "waitstart": None,
            },
        ]

    async def run(self, work: Any) -> Any:
        raise PollError("no server behind canned data", connection_lost=False)

    async def close(self) -> None:
        return None


async def settle(pilot: Any) -> None:
    """Wait for the first snapshot to be on screen."""
    app = pilot.app
    for _ in range(200):
        if app.snapshot is not None:
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)
