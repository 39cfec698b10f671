"""``pgtop --record`` and ``--replay`` against real servers, as a user runs them.

A recording is made by a real ``pgtop --record`` process while real sessions form a lock
chain, sit idle in a transaction, or while the server restarts; it is then read back by
``pgtop --replay`` at chosen moments, in exactly the shape of the live ``--once``.
"""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from collecting import once_source
from commands import PGTOP, pgtop_env, run_pgtop
from recorded import round_trip, same

from pgtop.cluster import Cluster
from pgtop.collectors.activity import SCAN_SECONDS
from pgtop.collectors.catalog import CatalogNeeds
from pgtop.collectors.statements import StatementNeeds
from pgtop.recording import Recording, RecordingError
from pgtop.tabs import collectors

PASSWORD = "rec-s3cr3t-pw"
"""Given to ``--record`` in its connection string: it must not reach the file."""


def _ignore_hangups() -> None:
    """As ``nohup`` starts a command."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _default_hangups() -> None:
    """As a shell starts a command, whether or not the tests themselves run under nohup."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


class Recorder:
    """A ``pgtop --record`` process, stopped by a signal at the end."""

    def __init__(
        self, tmp_path: Path, conninfo: str, refresh: str = "0.5", *, nohup: bool = False
    ) -> None:
        self.path = tmp_path / "incident.pgtop"
        self.process = subprocess.Popen(
            [*PGTOP, "--record", str(self.path), "--refresh", refresh, conninfo],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=pgtop_env(tmp_path),
            preexec_fn=_ignore_hangups if nohup else _default_hangups,
        )  # fmt: skip

    def readings(self) -> int:
        try:
            recording = Recording.open(self.path)
        except RecordingError:
            return 0  # not created yet, or caught between two writes
        try:
            return len(recording)
        finally:
            recording.close()

    def last_time(self) -> float:
        recording = Recording.open(self.path)
        try:
            return recording.entries[-1].at
        finally:
            recording.close()

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, self.process.communicate()[1]
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def read_past(self, moment: datetime) -> datetime:
        """Wait until a reading that sees what stood at ``moment`` (server clock) is in the
        file; its time. A session that started since the last scan of Activity is seen by
        the next one, ``SCAN_SECONDS`` later at most."""
        when = moment.timestamp() + SCAN_SECONDS + 0.5
        self.wait_for(lambda: self.readings() > 0 and self.last_time() > when, "a reading")
        recording = Recording.open(self.path)
        try:
            index = next(n for n, entry in enumerate(recording.entries) if entry.at > when)
            return recording.when(index)
        finally:
            recording.close()

    def stop(self, signum: int = signal.SIGINT) -> str:
        """Stop it with ``signum``: exit 0, the file complete; its standard error."""
        self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, err
        assert "Traceback" not in err
        return err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def start(conninfo: str, *, nohup: bool = False) -> Recorder:
        made.append(Recorder(tmp_path, conninfo, nohup=nohup))
        return made[-1]

    yield start
    for one in made:
        one.kill()


def server_now(sessions: Any) -> datetime:
    row = sessions.admin.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    moment: datetime = row[0]
    return moment


def replayed(tmp_path: Path, path: Path, tab: str, when: datetime) -> dict[str, Any]:
    proc = run_pgtop(
        tmp_path, "--replay", str(path), "--once", tab, "--at", when.isoformat(), "--format",
        "json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    document: dict[str, Any] = json.loads(proc.stdout)
    return document


def test_a_lock_chain_is_replayed_at_each_moment(
    dsn: str, sessions: Any, tmp_path: Path, recorder: Callable[..., Recorder]
) -> None:
    """Before the chain, while it stands, after it ended: ``--once locks --at`` shows the
    edges only while it stood, and ``--once activity`` the session idle in a transaction
    throughout, in the live ``--once`` shapes."""
    table = f"rec_{uuid.uuid4().hex[:10]}"
    sessions.admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    sessions.admin.execute(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
    lingering = sessions.open("rec-idle-in-tx", autocommit=False)
    lingering.execute("SELECT 1 /* forgotten transaction */")
    rec = recorder(f"{dsn} password={PASSWORD}")
    rec.wait_for(lambda: rec.readings() >= 2, "the first readings")

    before = rec.read_past(server_now(sessions))
    a = sessions.open("rec-a", autocommit=False)
    a.execute(f"UPDATE {table} SET v = 1 WHERE id = 1")
    b = sessions.open("rec-b", autocommit=False)
    b.execute(f"UPDATE {table} SET v = 2 WHERE id = 2")
    sessions.run_in_background(b, f"UPDATE {table} SET v = 2 WHERE id = 1")
    c = sessions.open("rec-c", autocommit=False)
    sessions.run_in_background(c, f"UPDATE {table} SET v = 3 WHERE id = 2")
    pids = {name: conn.info.backend_pid for name, conn in (("a", a), ("b", b), ("c", c))}
    sessions.wait_until(
        "SELECT count(*) = 2 FROM pg_stat_activity WHERE pid = ANY(%s) "
        "AND wait_event_type = 'Lock'",
        [[pids["b"], pids["c"]]],
    )
    during = rec.read_past(server_now(sessions))
    a.rollback()  # b gets row 1 and goes on holding row 2: c still waits
    sessions.wait_until(
        "SELECT wait_event_type IS DISTINCT FROM 'Lock' FROM pg_stat_activity WHERE pid = %s",
        [pids["b"]],
    )
    sessions.admin.execute("SELECT pg_cancel_backend(%s)", [pids["c"]])
    sessions.wait_until(
        "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ANY(%s) "
        "AND wait_event_type = 'Lock')",
        [list(pids.values())],
    )
    after = rec.read_past(server_now(sessions))
    said = rec.stop(signal.SIGINT)
    assert "recorded" in said
    path = rec.path

    edges = [
        {
            (row["blocked_pid"], row["blocking_pid"])
            for row in replayed(tmp_path, path, "locks", moment)["rows"]
        }
        for moment in (before, during, after)
    ]
    assert edges == [set(), {(pids["b"], pids["a"]), (pids["c"], pids["b"])}, set()]

    # The same shape as live --once locks (its keys, its server block), from the recording.
    shown = replayed(tmp_path, path, "locks", during)
    assert shown["tab"] == "locks"
    assert set(shown["server"]) == {"version", "version_num", "is_standby", "collected_at"}
    assert datetime.fromisoformat(shown["server"]["collected_at"]) == during
    row = next(r for r in shown["rows"] if r["blocked_pid"] == pids["b"])
    assert row["blocking_state"] == "idle in transaction"
    assert row["mode"] == "ShareLock"
    assert row["blocked_query"] == f"UPDATE {table} SET v = 2 WHERE id = 1"

    for moment in (before, during, after):
        rows = {r["pid"]: r for r in replayed(tmp_path, path, "activity", moment)["rows"]}
        assert rows[lingering.info.backend_pid]["state"] == "idle in transaction"
        assert rows[lingering.info.backend_pid]["query"] == "SELECT 1 /* forgotten transaction */"
    text = run_pgtop(
        tmp_path, "--replay", str(path), "--once", "locks", "--at", f"{during:%H:%M:%S.%f}"
    )
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].split()[:2] == ["BLOCKED", "BLOCKING"]

    # Private, and holds no password or connection string.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASSWORD.encode() not in path.read_bytes()
    db = Recording.open(path).db
    for (data,) in db.execute("SELECT data FROM readings"):
        assert PASSWORD.encode() not in zlib.decompress(data)
    assert not any(PASSWORD in str(v) for row in db.execute("SELECT * FROM meta") for v in row)

    info = run_pgtop(tmp_path, "--replay", str(path), "--info")
    assert info.returncode == 0, info.stderr
    assert "gaps      none" in info.stdout
    assert "locks" in info.stdout


def test_a_server_restart_is_a_gap_in_the_recording(
    new_cluster: Callable[..., Cluster], tmp_path: Path, recorder: Callable[..., Recorder]
) -> None:
    cluster = new_cluster()
    rec = recorder(cluster.conninfo())
    rec.wait_for(lambda: rec.readings() >= 3, "the first readings")
    before = rec.readings()
    cluster.stop("fast")
    time.sleep(2)
    cluster.start()
    rec.wait_for(lambda: rec.readings() >= before + 4, "readings after the restart", 60)
    said = rec.stop(signal.SIGTERM)
    assert "connection lost" in said
    assert "connection back" in said

    info = json.loads(
        run_pgtop(tmp_path, "--replay", str(rec.path), "--info", "--format", "json").stdout
    )
    assert len(info["gaps"]) == 1
    gap = info["gaps"][0]
    assert gap["reason"]
    assert gap["seconds"] >= 2
    recording = Recording.open(rec.path)
    first_after = next(
        i
        for i, e in enumerate(recording.entries)
        if e.at > datetime.fromisoformat(gap["from"]).timestamp()
    )
    before_restart = recording.activity(first_after - 1).capabilities.started_at
    after_restart = recording.activity(first_after).capabilities.started_at
    assert after_restart > before_restart, "the server was started again"
    # In the gap, the last reading before it is what there is to see.
    inside = datetime.fromisoformat(gap["from"]).timestamp() + 1
    shown = replayed(tmp_path, rec.path, "activity", datetime.fromtimestamp(inside, timezone.utc))
    assert datetime.fromisoformat(shown["server"]["collected_at"]) == datetime.fromisoformat(
        gap["from"]
    )


def test_a_hangup_stops_the_recording_unless_started_under_nohup(
    dsn: str, recorder: Callable[..., Recorder]
) -> None:
    rec = recorder(dsn, nohup=True)
    rec.wait_for(lambda: rec.readings() >= 2, "the first readings")
    rec.process.send_signal(signal.SIGHUP)
    count = rec.readings()
    rec.wait_for(lambda: rec.readings() >= count + 2, "readings after the hangup")
    assert "recorded" in rec.stop(signal.SIGTERM)

    rec.path.unlink()
    rec = recorder(dsn)
    rec.wait_for(lambda: rec.readings() >= 2, "the first readings")
    assert "recorded" in rec.stop(signal.SIGHUP)


async def test_every_tabs_data_reads_back_exactly(fresh_db: str) -> None:
    """What each collector returns from a real server, with its zoned times, its catalog
    records and their inherited fields, reads back from the codec as it was."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE rec_t (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO rec_t SELECT g, md5(g::text) FROM generate_series(1, 500) g")
        conn.execute("CREATE INDEX rec_t_note ON rec_t (note)")
        conn.execute("ANALYZE rec_t")
        conn.execute("SELECT count(*) FROM rec_t WHERE id < 10")
    needs: dict[str, object] = {
        "queries": StatementNeeds(all_texts=True),
        "tables": CatalogNeeds(),
        "vacuum": CatalogNeeds(),
        "indexes": CatalogNeeds(),
    }
    async with once_source(fresh_db) as source:
        activity = await source.poll()
        values: list[object] = [activity]
        for tab in collectors():
            data = await source.collect(tab, activity, needs.get(tab), now=True)
            assert data is not None, tab
            values.append(data)
    assert {type(v).__name__ for v in values} >= {
        "ActivitySnapshot", "LocksData", "StatementsSnapshot", "TablesData", "VacuumData",
        "IndexesData", "HealthData",
    }  # fmt: skip
    for value in values:
        back, _ = round_trip(value)
        same(value, back, type(value).__name__)
