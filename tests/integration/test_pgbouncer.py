"""A real PgBouncer in front of a real server: pgtop knows its admin console, reads its pools
(clients waiting for a server when the pool is full), a pool's clients and servers, its
traffic as rates, and gets its console back after PgBouncer restarts."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import psycopg
import pytest
from conftest import POOL_SIZE, Pooled

from pgtop import pg
from pgtop.cluster import Bouncer, Cluster
from pgtop.collectors.pgbouncer import PoolDetail
from pgtop.config import Settings
from pgtop.model import Pool, PoolsSnapshot
from pgtop.source import PollError, PoolerSource


@pytest.fixture
async def console(bouncer: Bouncer) -> AsyncIterator[PoolerSource]:
    """A source on the admin console, as pgtop makes it."""
    source = PoolerSource(Settings(conninfo=bouncer.conninfo(), refresh=0.5, read_only=True))
    try:
        yield source
    finally:
        await source.close()


def pool_of(snapshot: PoolsSnapshot, database: str, user: str = "postgres") -> Pool:
    return next(p for p in snapshot.pools if (p.database, p.user) == (database, user))


async def poll_until(source: PoolerSource, waiting: int, timeout: float = 10) -> PoolsSnapshot:
    """Poll until the ``postgres`` pool has ``waiting`` clients waiting."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = await source.poll()
        pools = [p for p in snapshot.pools if p.database == "postgres"]
        if pools and pools[0].cl_waiting == waiting:
            return snapshot
        assert time.monotonic() < deadline, f"never {waiting} waiting: {snapshot.pools}"
        time.sleep(0.05)


async def test_pgtop_knows_the_admin_console_from_what_it_reports(bouncer: Bouncer) -> None:
    # pgtop's startup options are refused: a pooler, whose console it reads without them.
    with pytest.raises(pg.ConnectError) as refused:
        await pg.connect(bouncer.conninfo())
    assert refused.value.pooler
    conn = await pg.connect_console(bouncer.conninfo())
    try:
        version = pg.bouncer_version(conn)
        assert version is not None
        assert version[0].isdigit()
    finally:
        await conn.close()


async def test_a_pooled_database_is_not_taken_for_the_console(bouncer: Bouncer) -> None:
    with pytest.raises(pg.ConnectError) as refused:
        await pg.connect(bouncer.conninfo("postgres"))
    assert refused.value.pooler
    with pytest.raises(pg.ConnectError) as wrong:
        await pg.connect_console(bouncer.conninfo("postgres"))
    assert "dbname=pgbouncer" in str(wrong.value)
    assert wrong.value.exit_code == pg.EXIT_USAGE


async def test_the_pools_show_the_clients_waiting_for_a_server(
    console: PoolerSource, pooled: Pooled, pg_cluster: Cluster
) -> None:
    pooled.hold(POOL_SIZE, "holder")
    pooled.wait(2, "waiter")

    snapshot = await poll_until(console, waiting=2)
    time.sleep(0.3)  # the oldest client waits longer than that
    snapshot = await console.poll()

    pool = pool_of(snapshot, "postgres")
    assert (pool.cl_active, pool.cl_waiting) == (POOL_SIZE, 2)
    assert (pool.sv_active, pool.sv_idle) == (POOL_SIZE, 0)
    assert pool.maxwait_s >= 0.3
    assert (pool.pool_mode, pool.pool_size) == ("session", POOL_SIZE)
    assert snapshot.clients_waiting == 2
    assert snapshot.longest_wait_s == pool.maxwait_s
    assert snapshot.waiting_pools() == (pool,)
    assert snapshot.version[0].isdigit()

    # The detail: waiting clients first, each with its application and how long it waited;
    # the servers are the PostgreSQL backends the holders use.
    peers = await console.fetch(PoolDetail("postgres", "postgres"))
    assert [c.state for c in peers.clients] == ["waiting", "waiting", "active", "active"]
    assert [c.application_name for c in peers.clients[:2]] == ["waiter", "waiter"]
    assert peers.clients[0].wait_s >= peers.clients[1].wait_s >= 0.3
    assert [s.state for s in peers.servers] == ["active"] * POOL_SIZE
    pids = {s.remote_pid for s in peers.servers}
    backends = pg_cluster.psql(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
    ).split()
    assert pids <= {int(pid) for pid in backends}

    pooled.release()
    snapshot = await poll_until(console, waiting=0)
    assert pool_of(snapshot, "postgres").cl_waiting == 0
    assert snapshot.clients_waiting == 0


async def test_the_traffic_is_pgbouncers_own_rates(console: PoolerSource, bouncer: Bouncer) -> None:
    first = await console.poll()
    assert {t.database for t in first.traffic} >= {"pgbouncer"}
    with psycopg.connect(bouncer.conninfo("postgres"), autocommit=True) as conn:
        for _ in range(20):
            conn.execute("SELECT 1")
    # The averages move when PgBouncer's statistics period ends (1 s in the fixture).
    deadline = time.monotonic() + 20
    while True:
        time.sleep(0.3)
        second = await console.poll()
        traffic = {t.database: t for t in second.traffic}
        if "postgres" in traffic and traffic["postgres"].query_per_s > 0:
            break
        assert time.monotonic() < deadline, second.traffic
    rate = traffic["postgres"]
    assert rate.xact_per_s > 0
    assert rate.received_per_s > 0
    assert rate.sent_per_s > 0
    assert rate.query_ms is not None
    assert pool_of(second, "postgres").query_per_s == rate.query_per_s


async def test_the_console_comes_back_after_pgbouncer_restarts(
    console: PoolerSource, bouncer: Bouncer
) -> None:
    await console.poll()
    bouncer.stop()
    with pytest.raises(PollError) as lost:
        await console.poll()
    assert lost.value.connection_lost
    assert console.lost_since is not None
    with pytest.raises(PollError):  # still down: another attempt, counted
        await console.poll()
    assert console.attempts >= 1

    bouncer.start()
    snapshot = await console.poll()
    assert console.lost_since is None
    assert console.attempts == 0
    assert any(p.database == "pgbouncer" for p in snapshot.pools)


async def test_a_stats_user_reads_the_pools(bouncer: Bouncer) -> None:
    source = PoolerSource(Settings(conninfo=bouncer.conninfo(user="monitor"), read_only=True))
    try:
        snapshot = await source.poll()
        assert snapshot.pools
        assert source.actions is None, "read-only: nothing is offered on a PgBouncer"
    finally:
        await source.close()
