"""Several servers from the command line and the config file's profiles, on real clusters:
``--once servers`` (JSON and text), ``--once TAB -S NAME``, and the light figures' query."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
from commands import run_pgtop

from pgtop.cluster import Cluster
from pgtop.collectors.servers import FiguresReader
from pgtop.pg import EXIT_UNREACHABLE, EXIT_USAGE, connect


def run(tmp_path: Path, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``pgtop ARGS`` with ``config`` as its config file."""
    path = tmp_path / "config.toml"
    path.write_text(config)
    return run_pgtop(tmp_path, *args, timeout=120, config=path)


def profiles(**servers: str) -> str:
    return "".join(
        f"[servers.{name}]\nconninfo = {json.dumps(conninfo)}\n"
        for name, conninfo in servers.items()
    )


def test_once_servers_json_and_text(
    tmp_path: Path, pg_cluster: Cluster, new_cluster: Callable[..., Cluster]
) -> None:
    other = new_cluster()
    stopped = new_cluster()
    stopped.stop()
    config = (
        profiles(alpha=pg_cluster.conninfo(), beta=other.conninfo(), down=stopped.conninfo())
        + "[servers.ro]\nconninfo = "
        + json.dumps(other.conninfo())
        + "\nread_only = true\n"
    )
    proc = run(tmp_path, config, "--all-servers", "--once", "servers", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["tab"] == "servers"
    rows = {row["name"]: row for row in document["rows"]}
    assert list(rows) == ["alpha", "beta", "down", "ro"]
    for name in ("alpha", "beta"):
        row = rows[name]
        assert {
            "name",
            "host",
            "port",
            "role",
            "version",
            "connections",
            "max_connections",
            "active",
            "waiting",
            "status",
        } <= set(row)
        assert row["status"] == "ok"
        assert row["role"] == "primary"
        assert row["connections"] >= 1
        assert row["max_connections"] > row["connections"]
        assert row["version"].split(".")[0] == str(pg_cluster.version_num // 10000)
    assert rows["alpha"]["port"] == pg_cluster.port
    assert rows["beta"]["port"] == other.port
    assert rows["down"]["status"].startswith("refused: ")
    assert rows["down"]["connections"] is None
    assert rows["ro"]["read_only"] is True

    proc = run(tmp_path, config, "-S", "alpha", "-S", "down", "--once", "servers")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "HOST", "PORT", "ROLE"]
    assert lines[1].startswith("alpha ")
    assert " primary " in lines[1]
    assert lines[1].endswith("ok")
    assert lines[2].startswith("down ")
    assert "refused: " in lines[2]

    # Nothing answers: the documented exit code.
    proc = run(tmp_path, config, "-S", "down", "--once", "servers")
    assert proc.returncode == EXIT_UNREACHABLE
    assert "refused: " in proc.stdout


def test_once_a_tab_of_one_chosen_server(
    tmp_path: Path, pg_cluster: Cluster, new_cluster: Callable[..., Cluster]
) -> None:
    other = new_cluster()
    with psycopg.connect(other.conninfo(application_name="only_on_beta"), autocommit=True):
        config = profiles(alpha=pg_cluster.conninfo(), beta=other.conninfo())
        proc = run(tmp_path, config, "--once", "activity", "-S", "beta", "--format", "json")
        assert proc.returncode == 0, proc.stderr
        names = {row["application_name"] for row in json.loads(proc.stdout)["rows"]}
        assert "only_on_beta" in names
        proc = run(tmp_path, config, "--once", "activity", "-S", "alpha", "--format", "json")
        names = {row["application_name"] for row in json.loads(proc.stdout)["rows"]}
        assert "only_on_beta" not in names

    # One server chosen: its row has its profile's name.
    proc = run(tmp_path, config, "-S", "beta", "--once", "servers", "--format", "json")
    assert [row["name"] for row in json.loads(proc.stdout)["rows"]] == ["beta"]

    # Several servers and a tab of one: which one must be said.
    proc = run(tmp_path, config, "--once", "activity", "--all-servers")
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.startswith("pgtop: --once activity reads one server: choose it with -S")
    proc = run(tmp_path, config, "--once", "servers", "-S", "nosuch")
    assert proc.returncode == EXIT_USAGE
    assert "no [servers.nosuch] in the config file (it has alpha, beta)" in proc.stderr
    # Two connection strings on the command line are two servers.
    proc = run(
        tmp_path,
        "",
        pg_cluster.conninfo(),
        other.conninfo(),
        "--once",
        "servers",
        "--format",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    ports = [row["port"] for row in json.loads(proc.stdout)["rows"]]
    assert ports == [pg_cluster.port, other.port]


async def test_the_figures_count_what_the_server_runs(pg_cluster: Cluster) -> None:
    """Figures read twice: the transactions between them make a rate; a lock wait counts."""
    conn = await connect(pg_cluster.conninfo())
    try:
        reader = FiguresReader()
        first = await reader.read(conn)
        assert first.tps is None
        assert not first.standby
        assert first.lag_s is None
        with psycopg.connect(pg_cluster.conninfo(), autocommit=True) as busy:
            for _ in range(20):
                busy.execute("SELECT 1")
        # Backends report their counters within a second or so of going idle.
        second = await reader.read(conn)
        for _ in range(100):
            if second.xacts >= first.xacts + 20:
                break
            await asyncio.sleep(0.1)
            second = await reader.read(conn)
        assert second.xacts >= first.xacts + 20
        assert second.tps is not None
        assert second.tps > 0
        assert second.max_connections == int(
            (await (await conn.execute("SHOW max_connections")).fetchone() or {})["max_connections"]
        )
    finally:
        await conn.close()
