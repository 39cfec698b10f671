"""Server cost of one refresh of a server's row in the Servers tab (a server not in view).

Run it from the repository root::

    python benchmarks/servers.py                   # best server found
    python benchmarks/servers.py --connections 500 # more idle sessions open

It starts a throwaway server, opens ``--connections`` idle sessions (the figures count the
sessions of ``pg_stat_activity``), and measures with ``pg_stat_statements`` the server time of
one read of the row's figures as pgtop runs it (``FiguresReader``, the ``server_figures``
statement): the median of ``--runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys

import psycopg
from catalog import server_ms

from pgtop import pg
from pgtop.cluster import Cluster, find_bindir, start_cluster
from pgtop.collectors.servers import FiguresReader


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--bindir", default=None)
    return parser.parse_args(argv)


async def measure(cluster: Cluster, runs: int) -> tuple[float, float]:
    conn = await pg.connect(cluster.conninfo("bench"))
    admin = await pg.connect(cluster.conninfo("bench"), statement_timeout_ms=None)
    reader = FiguresReader()
    try:
        samples = [await server_ms(admin, lambda: reader.read(conn)) for _ in range(runs)]
    finally:
        await conn.close()
        await admin.close()
    return statistics.median(s for s, _ in samples), statistics.median(w for _, w in samples)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    bindir = args.bindir or find_bindir()
    cluster = start_cluster(
        bindir, settings={"max_connections": str(args.connections + 20)}, name="pgtop-bench"
    )
    idle: list[psycopg.Connection[tuple[object, ...]]] = []
    try:
        cluster.psql("CREATE DATABASE bench")
        cluster.psql("CREATE EXTENSION pg_stat_statements", dbname="bench")
        idle = [psycopg.connect(cluster.conninfo("bench")) for _ in range(args.connections)]
        version = cluster.psql("SHOW server_version")
        server, wall = asyncio.run(measure(cluster, args.runs))
    finally:
        for conn in idle:
            conn.close()
        cluster.destroy()
    print(f"\nPostgreSQL {version}, {args.connections} idle sessions, median of {args.runs}")
    print(f"one row's figures: {server:.3f} ms server time, {wall:.2f} ms wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
