"""Server cost of the Tables, Vacuum and Indexes refreshes at 100,000 relations.

Run it from the repository root::

    python benchmarks/catalog.py                      # 100,000 relations, best server found
    python benchmarks/catalog.py --relations 20000    # smaller, quicker
    python benchmarks/catalog.py --bindir /usr/lib/postgresql/15/bin

It starts a throwaway cluster (``pgtop.cluster.start_cluster``: fsync off, deleted at the
end), creates tables until the database holds ``--relations`` relations counting tables,
indexes and TOAST tables (each table has a primary key and a text column: 4 relations), and
puts rows in a few of them. It then measures, with ``pg_stat_statements``, the server time
(sum of ``total_exec_time``) of:

* one refresh of each catalog tab, as pgtop runs it (``TablesCollector``,
  ``VacuumCollector``, ``IndexesCollector``), of both kinds: a read of the whole list
  (every ``LIST_EVERY`` catalog intervals) and a read of the rows on screen (35) and the
  relations created since (the others); the median of ``--runs`` each after one warm-up,
  and the mean over one cycle of ``LIST_EVERY`` refreshes, which is the figure per
  refresh (one refresh in ``SCAN_EVERY`` also reads what the others reuse, the database
  size and which indexes back a constraint);
* the runbook query, ``pg_total_relation_size()`` of every table of ``public``;

and then, with one table held ACCESS EXCLUSIVE by another session, that every tab's
collection still completes within 2 seconds and marks the table, while the runbook query
waits until its statement timeout. Creating 100,000 relations takes a few minutes.

Targets: under 250 ms of server time per refresh of each tab.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg

from pgtop import pg
from pgtop.cluster import Cluster, find_bindir, start_cluster
from pgtop.collectors.activity import ActivityCollector
from pgtop.collectors.base import CollectorContext
from pgtop.collectors.catalog import (
    LIST_EVERY,
    SCAN_EVERY,
    CatalogCollector,
    CatalogNeeds,
    IndexesCollector,
    IndexesData,
    TablesCollector,
    TablesData,
    VacuumCollector,
    VacuumData,
)
from pgtop.collectors.health import HEALTH_INTERVAL, HealthCollector
from pgtop.model import ActivitySnapshot, Capabilities

Connection = psycopg.AsyncConnection[dict[str, Any]]

RUNBOOK = (
    "SELECT tablename, pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) "
    "FROM pg_tables WHERE schemaname='public' "
    "ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC"
)
TARGET_MS = 250.0
LOCKED_BOUND_S = 2.0
ON_SCREEN = 35
"""Rows a catalog tab shows in a 120x35 terminal, about."""
RELATIONS_PER_TABLE = 4
"""Table, primary key index, TOAST table, TOAST index."""
BATCH = 500
"""Tables created per transaction (each holds a few locks until commit)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--relations", type=int, default=100_000, help="relations to create")
    parser.add_argument(
        "--runs", type=int, default=2 * SCAN_EVERY, help="measured refreshes per tab"
    )
    parser.add_argument("--bindir", type=Path, default=None, help="PostgreSQL bin directory")
    return parser.parse_args(argv)


def build(cluster: Cluster, relations: int) -> int:
    """Create the tables; return how many relations the database holds."""
    tables = max(1, relations // RELATIONS_PER_TABLE)
    with psycopg.connect(cluster.conninfo("bench"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        started = time.monotonic()
        for first in range(1, tables + 1, BATCH):
            last = min(tables, first + BATCH - 1)
            conn.execute(
                f"""
                DO $$
                BEGIN
                  FOR i IN {first}..{last} LOOP
                    EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, body text)',
                                   'bench_' || i);
                  END LOOP;
                END $$
                """
            )
            done = last
            rate = done / max(time.monotonic() - started, 0.001)
            print(f"\r  {done:,}/{tables:,} tables ({rate:,.0f}/s)", end="", flush=True)
        print()
        # Rows and statistics in some tables, so that sizes and estimates are not all zero.
        filled = min(tables, 1000)
        conn.execute(
            f"""
            DO $$
            BEGIN
              FOR i IN 1..{filled} LOOP
                EXECUTE format('INSERT INTO %I SELECT g, repeat(md5(g::text), 1 + g %% 80)
                                FROM generate_series(1, %s) g', 'bench_' || i, 1 + i % 400);
              END LOOP;
            END $$
            """
        )
        for i in range(1, filled + 1, 100):
            names = ", ".join(f"bench_{n}" for n in range(i, min(filled, i + 99) + 1))
            conn.execute(f"ANALYZE {names}")
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
        assert row is not None
        return int(row[0])


async def server_ms(admin: Connection, work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Server time (ms, from pg_stat_statements) and wall time (ms) of ``work``."""
    await admin.execute("SELECT public.pg_stat_statements_reset()")
    started = time.perf_counter()
    await work()
    wall = (time.perf_counter() - started) * 1000
    cur = await admin.execute(
        "SELECT coalesce(sum(total_exec_time), 0)::float8 AS ms FROM public.pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench') "
        "AND query NOT ILIKE '%pg_stat_statements_reset%' "
        "AND query NOT ILIKE '%sum(total_exec_time)%'"
    )
    row = await cur.fetchone()
    assert row is not None
    return float(row["ms"]), wall


class Driven:
    """A catalog collector refreshed as the app refreshes it, for a pane's needs."""

    def __init__(
        self, collector: CatalogCollector, conn: Connection, activity: ActivitySnapshot
    ) -> None:
        self.collector, self.conn, self.activity = collector, conn, activity
        self.needs = CatalogNeeds()

    async def refresh(self) -> object:
        return await self.collector.collect(self.conn, self.activity, self.needs, due=True)

    async def whole(self) -> object:
        """A refresh after F5: the whole list."""
        self.needs = replace(self.needs, list_asked=self.needs.list_asked + 1)
        return await self.refresh()


def context(caps: Capabilities) -> CollectorContext:
    """What a source gives a collector; these read the monitoring connection's database."""

    async def connect(database: str) -> Connection:
        raise AssertionError(f"no other database is read here ({database})")

    return CollectorContext(caps, connect)


async def measure(cluster: Cluster, runs: int) -> list[tuple[str, float, float, str]]:
    conn = await pg.connect(cluster.conninfo("bench"))
    admin = await pg.connect(cluster.conninfo("bench"), statement_timeout_ms=None)
    caps = await pg.probe(conn)
    own = frozenset({conn.info.backend_pid})
    activity = await ActivityCollector(caps, own).collect(conn)
    results: list[tuple[str, float, float, str]] = []
    collectors: list[tuple[str, CatalogCollector]] = [
        ("Tables", TablesCollector(context(caps))),
        ("Vacuum", VacuumCollector(context(caps))),
        ("Indexes", IndexesCollector(context(caps))),
    ]
    try:
        for label, collector in collectors:
            # One collector per tab, as in the app: after the first refresh, objects of
            # unchanged rows are reused, so the wall time of later ones is lower.
            tab = Driven(collector, conn, activity)
            first_server, first_wall = await server_ms(admin, tab.refresh)
            tab.needs = replace(tab.needs, on_screen=tuple(oids(await tab.refresh())[:ON_SCREEN]))
            whole, work = tab.whole, tab.refresh
            kinds = {"whole list": whole, "rows on screen": work}
            medians = {}
            for kind, run in kinds.items():
                samples = [await server_ms(admin, run) for _ in range(runs)]
                servers = [s for s, _ in samples]
                medians[kind] = statistics.median(servers)
                wall = statistics.median(w for _, w in samples)
                note = f"max {max(servers):.0f} ms server"
                results.append((f"{label}, {kind}", medians[kind], wall, note))
            cycle = medians["whole list"] + (LIST_EVERY - 1) * medians["rows on screen"]
            cycle /= LIST_EVERY
            verdict = "ok" if cycle < TARGET_MS else f"OVER {TARGET_MS:.0f} ms"
            note = (
                f"{verdict}: 1 whole list, {LIST_EVERY - 1} rows on screen; first refresh "
                f"{first_server:.0f} ms server, {first_wall:.0f} ms wall"
            )
            results.append((f"{label} refresh, mean", cycle, float("nan"), note))

        # The Health checks' slow read (every HEALTH_INTERVAL seconds at most, whatever tab
        # is shown); pg_stat_statements is read by it too, so its cost is counted.
        health = HealthCollector(context(caps))

        async def health_read() -> None:
            await health.read(conn, own)

        samples = [await server_ms(admin, health_read) for _ in range(runs)]
        results.append(
            (
                "Health, slow read",
                statistics.median(s for s, _ in samples),
                statistics.median(w for _, w in samples),
                f"every {HEALTH_INTERVAL:g}s at most, on every tab",
            )
        )

        async def runbook() -> None:
            cur = await admin.execute(RUNBOOK)
            await cur.fetchall()

        runbook_server, runbook_wall = await server_ms(admin, runbook)
        results.append(("runbook query", runbook_server, runbook_wall, "for comparison"))
        results.extend(await under_lock(cluster, conn, admin, caps, own))
    finally:
        await conn.close()
        await admin.close()
    return results


async def under_lock(
    cluster: Cluster,
    conn: Connection,
    admin: Connection,
    caps: Capabilities,
    own: frozenset[int],
) -> list[tuple[str, float, float, str]]:
    """Each tab with the largest table held ACCESS EXCLUSIVE by another session."""
    holder = await psycopg.AsyncConnection.connect(cluster.conninfo("bench"))
    results: list[tuple[str, float, float, str]] = []
    try:
        await holder.execute("LOCK TABLE bench_399 IN ACCESS EXCLUSIVE MODE")
        cur = await admin.execute("SELECT 'public.bench_399'::regclass::oid::bigint AS oid")
        row = await cur.fetchone()
        assert row is not None
        locked_oid = row["oid"]
        works: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("Tables, one table locked", lambda: TablesCollector(context(caps)).read(conn, own)),
            ("Vacuum, one table locked", lambda: VacuumCollector(context(caps)).read(conn, own)),
            ("Indexes, one table locked", lambda: IndexesCollector(context(caps)).read(conn, own)),
        ]
        for label, work in works:
            started = time.perf_counter()
            try:
                data = await asyncio.wait_for(work(), timeout=LOCKED_BOUND_S)
            except asyncio.TimeoutError:
                results.append((label, float("nan"), LOCKED_BOUND_S * 1000, "FAILED: no answer"))
                continue
            wall = (time.perf_counter() - started) * 1000
            results.append((label, float("nan"), wall, f"ok, {marked(data, locked_oid)}"))
        # As psql runs it: no lock_timeout; the statement_timeout bounds the wait here.
        await admin.execute("SET lock_timeout = 0")
        await admin.execute("SET statement_timeout = '3s'")
        started = time.perf_counter()
        try:
            cur = await admin.execute(RUNBOOK)
            await cur.fetchall()
            note = "answered"
        except psycopg.errors.QueryCanceled:
            note = "waited on the lock until statement_timeout (3 s)"
        wall = (time.perf_counter() - started) * 1000
        results.append(("runbook, one table locked", float("nan"), wall, note))
    finally:
        await holder.close()
    return results


def oids(data: object) -> list[int]:
    if isinstance(data, (TablesData, VacuumData)):
        return [t.oid for t in data.tables]
    if isinstance(data, IndexesData):
        return [i.oid for i in data.indexes]
    return []


def marked(data: object, oid: int) -> str:
    if isinstance(data, TablesData):
        table = next(t for t in data.tables if t.oid == oid)
        return "table marked LOCKED" if table.locked else "table NOT marked"
    if isinstance(data, VacuumData):
        vacuum = next(t for t in data.tables if t.oid == oid)
        return "table marked LOCKED" if vacuum.locked else "table NOT marked"
    if isinstance(data, IndexesData):
        return f"{len(data.indexes):,} indexes listed"
    return ""


def report(relations: int, version: str, results: list[tuple[str, float, float, str]]) -> None:
    print(f"\n{relations:,} relations, PostgreSQL {version}\n")
    print(f"{'median of the runs':28} {'server ms':>10} {'wall ms':>10}  note")
    for label, server, wall, note in results:
        server_text = "" if server != server else f"{server:10.1f}"
        wall_text = "" if wall != wall else f"{wall:10.1f}"
        print(f"{label:28} {server_text:>10} {wall_text:>10}  {note}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    bindir = args.bindir or find_bindir()
    print(f"starting a throwaway cluster from {bindir}")
    cluster = start_cluster(
        bindir,
        settings={"max_locks_per_transaction": "256", "autovacuum": "off"},
        name="pgtop-bench",
    )
    try:
        cluster.psql("CREATE DATABASE bench")
        print(f"creating about {args.relations:,} relations")
        relations = build(cluster, args.relations)
        version = cluster.psql("SHOW server_version")
        results = asyncio.run(measure(cluster, args.runs))
        report(relations, version, results)
    finally:
        cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
