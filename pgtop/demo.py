"""``pgtop --demo``: a throwaway server with a synthetic incident that fills every tab.

The incident: an admin console left a transaction open holding a row lock, two checkout
workers queue behind it (a chain of three), reports run long, a worker churns a table
whose autovacuum is off (dead tuples), and some idle web sessions hold connections.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from pgtop.cluster import Cluster, ClusterError, find_bindir, start_cluster

DemoError = ClusterError
DEMO_DB = "shop"

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE accounts (
    id int PRIMARY KEY,
    owner text NOT NULL,
    balance numeric(12, 2) NOT NULL DEFAULT 0
);
INSERT INTO accounts SELECT g, 'customer ' || g, 100 FROM generate_series(1, 20000) g;
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    account_id int NOT NULL REFERENCES accounts,
    amount numeric(12, 2) NOT NULL,
    status text NOT NULL DEFAULT 'new',
    note text,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO orders (account_id, amount, status, note, created_at)
SELECT 1 + g % 20000, (g % 997) / 3.0, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3],
       md5(g::text), now() - (g || ' seconds')::interval
FROM generate_series(1, 200000) g;
CREATE INDEX orders_account_idx ON orders (account_id);
-- Nothing filters on note: this index is never used.
CREATE INDEX orders_note_idx ON orders (note);
-- Same key as orders_account_idx: a duplicate.
CREATE INDEX orders_account_dup_idx ON orders (account_id);
CREATE TABLE sessions_log (
    id int PRIMARY KEY,
    hits bigint NOT NULL DEFAULT 0,
    payload text
) WITH (autovacuum_enabled = false);
INSERT INTO sessions_log SELECT g, 0, repeat('x', 200) FROM generate_series(1, 5000) g;
CREATE TABLE "Audit Log; DROP TABLE accounts; --" (id serial PRIMARY KEY, what text);
INSERT INTO "Audit Log; DROP TABLE accounts; --" (what)
SELECT 'event ' || g FROM generate_series(1, 1000) g;
ANALYZE;
"""

LEFTOVERS = (
    # A standby that was retired without dropping its slot: the slot keeps WAL.
    "SELECT pg_create_physical_replication_slot('reporting_replica', true)",
    # A unique index built CONCURRENTLY over duplicates fails and stays, invalid.
    "CREATE UNIQUE INDEX CONCURRENTLY orders_status_key ON orders (status)",
)
"""What earlier incidents left behind, for the Health tab to find."""


@dataclass
class Demo:
    """A running demo: the cluster and the threads that play the incident."""

    cluster: Cluster
    conninfo: str
    """Where the demo's database is (no password: see ``password``)."""
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls) -> Demo:
        """Start the server, load the schema and the workload. Prints progress to stderr."""
        bindir = find_bindir()
        print("pgtop: starting a throwaway PostgreSQL for the demo…", file=sys.stderr)
        # Private: only this account can reach it (no TCP, a random password), since its
        # superuser could run programs on this machine.
        cluster = start_cluster(
            bindir, name="pgtop-demo", settings={"max_connections": "60"}, private=True
        )
        try:
            cluster.psql(f"CREATE DATABASE {DEMO_DB}")
            with psycopg.connect(
                cluster.conninfo(DEMO_DB), password=cluster.password, autocommit=True
            ) as conn:
                conn.execute(SCHEMA)
                for statement in LEFTOVERS:
                    with contextlib.suppress(psycopg.errors.UniqueViolation):
                        conn.execute(statement)
            demo = cls(cluster, cluster.conninfo(DEMO_DB))
            demo._start_workload()
            demo._wait_for_incident()
        except BaseException:
            cluster.destroy()
            raise
        return demo

    @property
    def password(self) -> str | None:
        """The demo superuser's password, in memory only."""
        return self.cluster.password

    def stop(self) -> None:
        """Stop the workload, then the server, and delete its data."""
        self.stop_event.set()
        self.cluster.destroy()
        for thread in self.threads:
            thread.join(timeout=2)

    # -- workload ----------------------------------------------------------------------------

    def _spawn(self, name: str, body: Callable[[psycopg.Connection[object]], None]) -> None:
        def run() -> None:
            while not self.stop_event.is_set():
                try:
                    with psycopg.connect(
                        self.conninfo,
                        password=self.password,
                        autocommit=True,
                        application_name=name,
                    ) as conn:
                        body(conn)
                except psycopg.Error:
                    # Expected, not hidden: the operator terminating a staged session from
                    # pgtop, or the server stopping at exit. The session comes back a second
                    # later, so the incident stays on screen to practise on.
                    pass
                if self.stop_event.wait(1.0):
                    return

        thread = threading.Thread(target=run, name=f"demo-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _until_stopped(self, seconds: float) -> bool:
        """Sleep; True when the demo is stopping."""
        return self.stop_event.wait(seconds)

    def _start_workload(self) -> None:
        self._spawn("admin-console", self._open_transaction)
        self._spawn("checkout-api", self._first_in_chain)
        self._spawn("checkout-api", self._second_in_chain)
        for _ in range(3):
            self._spawn("billing-worker", self._billing)
        self._spawn("nightly-report", self._long_report)
        self._spawn("session-sweeper", self._churn)
        for _ in range(6):
            self._spawn("webapp", self._idle)

    def _open_transaction(self, conn: psycopg.Connection[object]) -> None:
        # The culprit: a transaction left open after touching account 1.
        conn.execute("BEGIN")
        conn.execute("UPDATE accounts SET balance = balance - 5 WHERE id = 1")
        while not self._until_stopped(1):
            pass

    def _first_in_chain(self, conn: psycopg.Connection[object]) -> None:
        self._until_stopped(0.5)
        conn.execute("BEGIN")
        conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 2")
        conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 1")  # waits
        conn.execute("COMMIT")

    def _second_in_chain(self, conn: psycopg.Connection[object]) -> None:
        self._until_stopped(1.0)
        conn.execute("UPDATE accounts SET balance = balance + 2 WHERE id = 2")  # waits

    def _billing(self, conn: psycopg.Connection[object]) -> None:
        rng = random.Random()
        while not self.stop_event.is_set():
            account = rng.randint(3, 20000)
            conn.execute(
                "SELECT a.owner, sum(o.amount) FROM orders o JOIN accounts a "
                "ON a.id = o.account_id WHERE o.status = %s AND o.amount > %s "
                "GROUP BY a.owner ORDER BY 2 DESC LIMIT 10",
                (rng.choice(["new", "paid", "shipped"]), rng.random() * 100),
            )
            conn.execute(
                "INSERT INTO orders (account_id, amount) VALUES (%s, %s)",
                (account, rng.randint(1, 500)),
            )
            conn.execute("SELECT pg_sleep(%s)", (rng.random() * 0.5,))

    def _long_report(self, conn: psycopg.Connection[object]) -> None:
        while not self.stop_event.is_set():
            conn.execute(
                "SELECT status, count(*), pg_sleep(120) FROM orders "
                "WHERE created_at > now() - interval '1 day' GROUP BY status"
            )

    def _churn(self, conn: psycopg.Connection[object]) -> None:
        while not self._until_stopped(0.2):
            conn.execute(
                "UPDATE sessions_log SET hits = hits + 1 WHERE id %% 10 = %s",
                (random.randint(0, 9),),
            )

    def _idle(self, conn: psycopg.Connection[object]) -> None:
        conn.execute("SELECT 1")
        while not self._until_stopped(5):
            pass

    def _wait_for_incident(self, timeout: float = 10.0) -> None:
        """Return once the blocking chain has formed, so the first screen shows it."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.conninfo, password=self.password, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                ).fetchone()
                if row and row[0] >= 2:
                    return
                time.sleep(0.1)
        with contextlib.suppress(Exception):
            print("pgtop: the demo's blocking chain is still forming", file=sys.stderr)
