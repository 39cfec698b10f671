"""Integration tests for the throwaway cluster used by the demo and the tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pgtop.cluster import Cluster, ClusterError, start_cluster


def test_cluster_is_running(pg_cluster: Cluster, dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.info.port == pg_cluster.port
    assert pg_cluster.postmaster_pid is not None


def test_pg_stat_statements_is_preloaded(pg_cluster: Cluster) -> None:
    assert "pg_stat_statements" in pg_cluster.psql("SHOW shared_preload_libraries")
    assert pg_cluster.psql("SHOW track_io_timing") == "on"


def test_fresh_db_has_pg_stat_statements(fresh_db: str) -> None:
    with psycopg.connect(fresh_db) as conn:
        conn.execute("SELECT 42")
        (count,) = conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone() or (0,)
        assert count > 0


def test_version_num_matches_server(pg_cluster: Cluster) -> None:
    assert pg_cluster.version_num == int(pg_cluster.psql("SHOW server_version_num"))
    assert pg_cluster.version_num >= 150000


def test_psql_returns_text_of_first_column(pg_cluster: Cluster) -> None:
    out = pg_cluster.psql("SELECT true, 1; SELECT x FROM (VALUES ('a'), (NULL)) AS v(x)")
    assert out == "t\na\n"


def test_restart_keeps_port_and_data(pg_cluster: Cluster) -> None:
    pg_cluster.psql("CREATE TABLE IF NOT EXISTS restart_probe (x int)")
    old_pid = pg_cluster.postmaster_pid
    pg_cluster.restart()
    assert pg_cluster.postmaster_pid not in (None, old_pid)
    assert pg_cluster.psql("SELECT to_regclass('restart_probe') IS NOT NULL") == "t"
    pg_cluster.psql("DROP TABLE restart_probe")


def test_stop_twice_and_start(new_cluster: Callable[..., Cluster]) -> None:
    cluster = new_cluster()
    cluster.stop()
    cluster.stop()
    assert cluster.postmaster_pid is None
    cluster.start()
    assert cluster.psql("SELECT 1") == "1"


def test_settings_override_defaults(new_cluster: Callable[..., Cluster]) -> None:
    cluster = new_cluster(settings={"max_connections": "42", "application_name": "it's"})
    assert cluster.psql("SHOW max_connections") == "42"
    assert cluster.psql("SHOW application_name") == "it's"


def test_destroy_removes_everything(pg_cluster: Cluster) -> None:
    cluster = start_cluster(pg_cluster.bindir, name="pgtop-test")
    workdir, dsn, pid = cluster.workdir, cluster.conninfo(), cluster.postmaster_pid
    assert workdir is not None
    assert workdir.is_dir()
    assert pid is not None
    cluster.destroy()
    cluster.destroy()  # idempotent
    assert not workdir.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)
    _assert_process_gone(pid)


def test_context_manager_destroys(pg_cluster: Cluster) -> None:
    with start_cluster(pg_cluster.bindir, name="pgtop-test") as cluster:
        workdir = cluster.workdir
        assert cluster.psql("SELECT 1") == "1"
    assert workdir is not None
    assert not workdir.exists()


def test_bad_setting_is_reported_and_cleaned_up(pg_cluster: Cluster) -> None:
    before = set(_temp_dirs("pgtop-bad-"))
    with pytest.raises(ClusterError, match="shared_buffers"):
        start_cluster(pg_cluster.bindir, settings={"shared_buffers": "bogus"}, name="pgtop-bad")
    assert set(_temp_dirs("pgtop-bad-")) == before


def test_staged_session_is_visible(pg_cluster: Cluster, sessions: Any) -> None:
    conn = sessions.open(application_name="stage-sleep")
    job = sessions.run_in_background(conn, "SELECT pg_sleep(60)")
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity"
        " WHERE application_name = %s AND state = 'active' AND query LIKE %s)",
        ["stage-sleep", "%pg_sleep%"],
    )
    assert not job.done
    assert conn.info.backend_pid in {
        int(pid)
        for pid in pg_cluster.psql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'stage-sleep'"
        ).split()
    }


def test_staged_lock_wait(sessions: Any) -> None:
    holder = sessions.open(application_name="stage-holder", autocommit=False)
    holder.execute("CREATE TABLE IF NOT EXISTS lock_probe (x int)")
    holder.commit()
    holder.execute("LOCK TABLE lock_probe IN ACCESS EXCLUSIVE MODE")
    waiter = sessions.open(application_name="stage-waiter")
    job = sessions.run_in_background(waiter, "SELECT count(*) FROM lock_probe")
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity"
        " WHERE application_name = %s AND wait_event_type = 'Lock')",
        ["stage-waiter"],
    )
    holder.rollback()
    assert job.wait(10)
    assert job.error is None
    assert job.rows == [(0,)]
    sessions.admin.execute("DROP TABLE lock_probe")


def _temp_dirs(prefix: str) -> list[str]:
    tmp = tempfile.gettempdir()
    return [name for name in os.listdir(tmp) if name.startswith(prefix)]


def _assert_process_gone(pid: int) -> None:
    """The postmaster has exited (a zombie awaiting its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return
    assert state in ("Z", "X"), f"postmaster {pid} still running (state {state})"
