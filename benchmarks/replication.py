"""Server cost of a Replication tab refresh on a primary with a standby, slots and WAL kept.

Run it from the repository root::

    python benchmarks/replication.py                 # best server found
    python benchmarks/replication.py --segments 500  # more WAL kept by an inactive slot

It starts a throwaway primary (``wal_level=logical``, an archiver that always fails) and a
streaming standby on a physical slot, adds an inactive physical slot and a logical slot, and
writes WAL until the inactive slot keeps about ``--segments`` segments in ``pg_wal``. It then
measures, with ``pg_stat_statements``, the server time (sum of ``total_exec_time``) of one
refresh of the tab as pgtop runs it (``ReplicationCollector``), of both kinds: with the
listing of the WAL directory and the database sizes (every ``DISK_INTERVAL`` seconds at
most) and without them; the median of ``--runs`` each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys

from catalog import server_ms

from pgtop import pg
from pgtop.cluster import Cluster, find_bindir, start_cluster, start_standby
from pgtop.collectors.base import CollectorContext, Connection
from pgtop.collectors.replication import DISK_INTERVAL, ReplicationCollector


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--bindir", default=None)
    return parser.parse_args(argv)


def build(primary: Cluster, segments: int) -> None:
    primary.psql("CREATE DATABASE bench")
    primary.psql(
        "SELECT pg_create_physical_replication_slot('bench_inactive', true);"
        "SELECT pg_create_logical_replication_slot('bench_logical', 'test_decoding')",
        dbname="bench",
    )
    primary.psql("CREATE EXTENSION pg_stat_statements", dbname="bench")
    for _ in range(segments):
        primary.psql("SELECT pg_switch_wal(); CREATE TABLE IF NOT EXISTS w (v int)", "bench")
        primary.psql("INSERT INTO w VALUES (1)", dbname="bench")


async def measure(primary: Cluster, runs: int) -> list[tuple[str, float, float]]:
    conn = await pg.connect(primary.conninfo("bench"))
    admin = await pg.connect(primary.conninfo("bench"), statement_timeout_ms=None)
    caps = await pg.probe(conn)

    async def nowhere(database: str) -> Connection:
        raise AssertionError(f"no other database is read here ({database})")

    kept = ReplicationCollector(CollectorContext(caps, nowhere))
    await kept.collect(conn)

    async def with_listing() -> None:
        await ReplicationCollector(CollectorContext(caps, nowhere)).collect(conn)

    async def without_listing() -> None:
        await kept.collect(conn)

    results = []
    try:
        for label, work in (("with pg_wal and sizes", with_listing), ("without", without_listing)):
            samples = [await server_ms(admin, work) for _ in range(runs)]
            results.append(
                (
                    label,
                    statistics.median(s for s, _ in samples),
                    statistics.median(w for _, w in samples),
                )
            )
        data = await kept.collect(conn)
        assert data is not None
        print(f"pg_wal: {data.wal.segments} segments, {len(data.slots)} slots")
    finally:
        await conn.close()
        await admin.close()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    bindir = args.bindir or find_bindir()
    settings = {
        "wal_level": "logical",
        "archive_mode": "on",
        "archive_command": "false",
        "max_wal_size": "64MB",
    }
    primary = start_cluster(bindir, settings=settings, name="pgtop-bench")
    try:
        standby = start_standby(primary, slot="bench_standby", name="pgtop-bench")
        try:
            print(f"writing about {args.segments} segments of WAL")
            build(primary, args.segments)
            version = primary.psql("SHOW server_version")
            results = asyncio.run(measure(primary, args.runs))
        finally:
            standby.destroy()
    finally:
        primary.destroy()
    print(f"\nPostgreSQL {version}, one Replication refresh, median of {args.runs}\n")
    print(f"{'refresh':24} {'server ms':>10} {'wall ms':>10}")
    for label, server, wall in results:
        print(f"{label:24} {server:10.2f} {wall:10.2f}")
    print(f"(pg_wal and the database sizes are read every {DISK_INTERVAL:g}s at most)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
