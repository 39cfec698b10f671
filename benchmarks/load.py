"""The load that ``benchmarks/compare.py`` puts on a throwaway server: real sessions.

Two subcommands, each run as its own process so that its work never shares an
interpreter (or a GIL) with the terminal reader that times the monitors:

``python benchmarks/load.py setup --dsn DSN --tables N``
    Creates ``N`` tables ``bench_tables.t1 … tN`` (``id bigint PRIMARY KEY, v int``: two
    relations each, so 50,000 tables are 100,000 relations), one in a hundred holding 300
    analyzed rows so that the catalog views have some sizes and statistics to show, and
    the one-row table ``bench_lock`` that the blocking chain fights over. Tables are made
    by ``DO`` blocks of 500 ``CREATE TABLE`` each, on two connections.

``python benchmarks/load.py hold --dsn DSN --idle N --active N --chain N --idle-in-tx N``
(``--think MS``)
    Opens the sessions and holds them until its standard input is closed (or SIGTERM):

    - ``bench-idle``: connections that ran ``SELECT 1`` once and stay idle;
    - ``bench-active``: sessions that run ``pg_sleep``-punctuated queries back to back
      (half of them short, 0.2-2 s, half long, 2-15 s), so they are almost always active
      and their rows change on every refresh. With ``--think MS`` they run short
      statements instead (20-200 ms) and stay idle ``MS`` milliseconds between two, so
      sessions come and go from the list of those not idle on every refresh;
    - ``bench-blocker``: one session idle in a transaction holding the row lock on
      ``bench_lock`` (only when ``--chain`` > 0), and ``bench-waiter``: ``--chain``
      sessions queued behind it, each waiting on the one before (A <- B <- C);
    - ``bench-idle-tx``: sessions idle in a transaction that holds no lock.

    When every session is in place it prints one line, ``ready {json counts}``, and flushes.
    The sessions cost the client almost nothing: idle ones are open sockets, the others
    block in the server.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql

CHUNK = 500
"""Tables created by one DO block (one transaction: its locks must fit the lock table)."""

LOCK_TABLE = "bench_lock"


def _create_chunk(dsn: str, first: int, last: int) -> None:
    block = sql.SQL(
        """
        DO $$
        BEGIN
          FOR i IN {first}..{last} LOOP
            EXECUTE format(
              'CREATE TABLE IF NOT EXISTS bench_tables.t%s (id bigint PRIMARY KEY, v int)', i);
            IF i % 100 = 0 THEN
              EXECUTE format(
                'INSERT INTO bench_tables.t%s SELECT g, g FROM generate_series(1, 300) g', i);
              EXECUTE format('ANALYZE bench_tables.t%s', i);
            END IF;
          END LOOP;
        END $$
        """
    ).format(first=sql.Literal(first), last=sql.Literal(last))
    with psycopg.connect(dsn, autocommit=True, application_name="bench-setup") as conn:
        conn.execute(block)


def setup(dsn: str, tables: int) -> None:
    """Create the tables and the lock table (idempotent)."""
    with psycopg.connect(dsn, autocommit=True, application_name="bench-setup") as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench_tables")
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, v int)").format(
                sql.Identifier(LOCK_TABLE)
            )
        )
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING").format(
                sql.Identifier(LOCK_TABLE)
            )
        )
    ranges = [(lo, min(lo + CHUNK - 1, tables)) for lo in range(1, tables + 1, CHUNK)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done, _ in enumerate(pool.map(lambda r: _create_chunk(dsn, *r), ranges), 1):
            if done % 20 == 0:
                print(
                    f"  {done * CHUNK:,} tables in {time.monotonic() - started:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )


def _connect(dsn: str, application_name: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(dsn, autocommit=True, application_name=application_name)


def _active_loop(dsn: str, number: int, think: float, stop: threading.Event) -> None:
    rng = random.Random(number)
    short = number % 2 == 0
    statements = (
        "SELECT pg_sleep(%s) /* nightly report */",
        f"SELECT v FROM {LOCK_TABLE}, pg_sleep(%s) WHERE id = 2",
        "SELECT count(*) FROM generate_series(1, 100) g, pg_sleep(%s)",
    )
    with _connect(dsn, "bench-active") as conn:
        while not stop.is_set():
            if think:
                seconds = rng.uniform(0.02, 0.2)
            else:
                seconds = rng.uniform(0.2, 2.0) if short else rng.uniform(2.0, 15.0)
            conn.execute(rng.choice(statements), (round(seconds, 3),))
            if think:
                stop.wait(think)


def _wait_until_waiting(dsn: str, count: int) -> None:
    """Wait until ``count`` bench-waiter sessions wait on a lock (so the chain is ordered)."""
    deadline = time.monotonic() + 30
    with _connect(dsn, "bench-setup") as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'bench-waiter' AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] >= count:
                return
            time.sleep(0.05)
    raise RuntimeError(f"the blocking chain did not form ({count} waiters expected)")


def hold(dsn: str, idle: int, active: int, chain: int, idle_in_tx: int, think_ms: int = 0) -> None:
    """Open the sessions, print ``ready``, hold them until stdin closes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    keep: list[psycopg.Connection[tuple[object, ...]]] = []

    def open_idle(_: int) -> psycopg.Connection[tuple[object, ...]]:
        conn = _connect(dsn, "bench-idle")
        conn.execute("SELECT 1")
        return conn

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        for number, conn in enumerate(pool.map(open_idle, range(idle)), 1):
            keep.append(conn)
            if number % 1000 == 0:
                print(
                    f"  {number:,} idle sessions in {time.monotonic() - started:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )

    stop = threading.Event()
    threads = [
        threading.Thread(target=_active_loop, args=(dsn, n, think_ms / 1000, stop), daemon=True)
        for n in range(active)
    ]
    if chain > 0:
        blocker = _connect(dsn, "bench-blocker")
        blocker.autocommit = False
        blocker.execute(f"UPDATE {LOCK_TABLE} SET v = v + 1 WHERE id = 1")
        keep.append(blocker)

        def wait_in_chain() -> None:
            with _connect(dsn, "bench-waiter") as conn:
                conn.execute(f"UPDATE {LOCK_TABLE} SET v = v + 1 WHERE id = 1")

        for number in range(chain):
            waiter = threading.Thread(target=wait_in_chain, daemon=True)
            waiter.start()
            _wait_until_waiting(dsn, number + 1)
    for _ in range(idle_in_tx):
        conn = _connect(dsn, "bench-idle-tx")
        conn.autocommit = False
        conn.execute("SELECT now() /* checkout basket */")
        keep.append(conn)
    for thread in threads:
        thread.start()
    counts = {
        "idle": idle,
        "active": active,
        "chain": chain,
        "idle_in_tx": idle_in_tx,
        "think_ms": think_ms,
    }
    print("ready " + json.dumps(counts), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        sys.stdin.read()  # until the benchmark closes our stdin
    finally:
        stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("setup", help="create the tables")
    make.add_argument("--dsn", required=True)
    make.add_argument("--tables", type=int, default=20000)
    keep = commands.add_parser("hold", help="open the sessions and hold them")
    keep.add_argument("--dsn", required=True)
    keep.add_argument("--idle", type=int, default=500)
    keep.add_argument("--active", type=int, default=8)
    keep.add_argument("--chain", type=int, default=3)
    keep.add_argument("--idle-in-tx", type=int, default=1)
    keep.add_argument("--think", type=int, default=0, metavar="MS")
    args = parser.parse_args(argv)
    if args.command == "setup":
        setup(args.dsn, args.tables)
    else:
        hold(args.dsn, args.idle, args.active, args.chain, args.idle_in_tx, args.think)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
