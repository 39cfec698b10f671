"""Recording files without a server: written, appended to, replayed, refused when damaged."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import zlib
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from canned import NOW, backend
from recorded import at, canned_recording, write

from pgtop.cli import main
from pgtop.collectors.activity import SessionDetail
from pgtop.collectors.catalog import DatabaseList
from pgtop.collectors.locks import LocksData
from pgtop.collectors.plans import StatementPlan
from pgtop.model import ActivitySnapshot
from pgtop.recording import (
    Memory,
    Recording,
    RecordingError,
    ReplaySource,
    parse_when,
    store,
)
from pgtop.recording.store import create_private, open_for_append
from pgtop.source import PollError


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    return canned_recording(tmp_path / "r.pgtop")


def test_a_recording_file_is_private_and_reads_back(recorded: Path) -> None:
    assert stat.S_IMODE(recorded.stat().st_mode) == 0o600
    recording = Recording.open(recorded)
    assert len(recording) == 40
    assert recording.meta["server"] == "app@db:5432/shop"
    assert recording.tab_counts() == {"activity": 40, "locks": 20}
    assert [entry.segment for entry in recording.entries[::10]] == [0, 1, 2, 3]
    assert recording.activity(25) == at(25, (5000,))
    assert recording.when(39) == NOW + timedelta(seconds=39)
    # Locks was last read at 19: a keyframe carries it, and says when it was read.
    index, data = recording.latest(35, "locks") or (None, None)
    assert index == 19
    assert data == LocksData(at(19, (5000,)), ())
    assert recording.latest(5, "queries") is None
    gap = recording.gaps[0]
    assert (gap.after, gap.until, gap.reason) == (29, 30, "connection lost: the server restarted")


def test_only_what_changed_is_stored(tmp_path: Path) -> None:
    idle: list[tuple[ActivitySnapshot, dict[str, object]]] = [(at(n), {}) for n in range(60)]
    one = write(tmp_path / "idle.pgtop", idle[:1]).written.bytes
    sixty = write(tmp_path / "idle60.pgtop", idle).written.bytes
    assert sixty - one < 59 * 300, "an unchanged reading costs a few hundred bytes at most"


def test_appending_continues_after_a_gap(recorded: Path) -> None:
    write(recorded, [(at(100), {}), (at(101), {})])
    recording = Recording.open(recorded)
    assert len(recording) == 42
    assert recording.gaps[-1].reason == "pgtop was not recording"
    assert (recording.gaps[-1].after, recording.gaps[-1].until) == (39, 40)
    assert recording.activity(41) == at(101)


def test_appending_to_an_older_format_makes_the_file_this_format(recorded: Path) -> None:
    damaged(recorded, "UPDATE meta SET value = '1' WHERE key = 'version'")
    many = at(100, tuple(range(6000, 6400)))  # a list long enough to be written in pieces
    write(recorded, [(many, {})])
    recording = Recording.open(recorded)
    assert recording.meta["version"] == str(store.VERSION)
    assert recording.activity(40) == many


def test_a_file_that_is_not_a_recording_is_never_written_to(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE precious (x)")
    db.commit()
    db.close()
    before = other.read_bytes()
    with pytest.raises(RecordingError, match="not a pgtop recording"):
        open_for_append(other).close()
    text = tmp_path / "notes.txt"
    text.write_text("my notes")
    with pytest.raises(RecordingError, match="not a pgtop recording"):
        open_for_append(text)
    assert other.read_bytes() == before
    assert text.read_text() == "my notes"


# -- files that cannot be replayed -------------------------------------------------------------


def damaged(recorded: Path, sql: str) -> Path:
    db = sqlite3.connect(recorded)
    db.execute(sql)
    db.commit()
    db.close()
    return recorded


def refused(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """``pgtop --replay PATH ARGS`` fails with exit 2 and one line; the line."""
    assert main(["--replay", str(path), *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("pgtop: ")
    assert "Traceback" not in err
    return err


def test_a_foreign_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, content in (("empty", b""), ("text", b"hello\n"), ("png", b"\x89PNG\r\n" * 40)):
        path = tmp_path / name
        path.write_bytes(content)
        assert "is not a pgtop recording" in refused(path, capsys, "--info")
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('format', 'something else')")
    db.commit()
    db.close()
    assert "is not a pgtop recording" in refused(other, capsys, "--once", "activity")
    assert "no such file" in refused(tmp_path / "missing", capsys, "--info")
    assert "is a directory" in refused(tmp_path, capsys, "--info")


def test_a_newer_format_is_refused_with_what_to_do(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged(recorded, "UPDATE meta SET value = '9' WHERE key = 'version'")
    line = refused(recorded, capsys, "--info")
    assert "format 9" in line
    assert "upgrade pgtop" in line


def test_a_truncated_file_is_refused(recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = recorded.read_bytes()
    recorded.write_bytes(data[: len(data) // 2])
    assert "is truncated" in refused(recorded, capsys, "--once", "activity")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE readings SET data = x'0011223344'", "is damaged"),
        ("UPDATE readings SET data = 'text'", "is damaged"),
        ("DROP TABLE readings", "lacks the tables"),
        ("UPDATE kinds SET name = 'os:system'", "does not know"),
        ("UPDATE kinds SET fields = '{'", "damaged"),
    ],
)
def test_a_damaged_file_is_refused(
    recorded: Path, capsys: pytest.CaptureFixture[str], sql: str, message: str
) -> None:
    damaged(recorded, sql)
    assert message in refused(recorded, capsys, "--once", "activity")


def test_a_reading_that_inflates_beyond_reason_is_refused(
    recorded: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = zlib.compress(b'{"c":[],"t":{}}' + b" " * 100_000)
    db = sqlite3.connect(recorded)
    db.execute("UPDATE readings SET data = ?", (bomb,))
    db.commit()
    db.close()
    monkeypatch.setattr(store, "MAX_READING_BYTES", 50_000)
    assert "inflates beyond" in refused(recorded, capsys, "--once", "activity")


def test_a_file_with_its_own_sql_runs_none_of_it(tmp_path: Path, recorded: Path) -> None:
    """A view or a trigger in a file someone else made does not run with our rights."""
    db = sqlite3.connect(recorded)
    db.execute("CREATE TABLE evidence (x)")
    db.execute("CREATE TRIGGER t AFTER UPDATE ON meta BEGIN INSERT INTO evidence VALUES (1); END")
    db.commit()
    db.close()
    recording = Recording.open(recorded)
    assert len(recording) == 40
    recording.close()
    db = sqlite3.connect(recorded)
    assert db.execute("SELECT count(*) FROM evidence").fetchone() == (0,)


# -- the replay source --------------------------------------------------------------------------


def test_the_replay_source_moves_in_time_and_answers_from_the_recording(recorded: Path) -> None:
    source = ReplaySource(Recording.open(recorded))
    assert source.actions is None
    assert source.other_databases is False
    assert source.describe() == "app@db:5432/shop"

    async def check() -> None:
        assert (await source.poll()).collected_at == NOW
        assert source.step(12)
        assert 5000 in {b.pid for b in (await source.poll()).backends}
        assert source.jump(-60)
        assert source.index == 0
        assert not source.step(-1)
        assert source.jump(25)
        assert source.index == 25
        # Locks: the latest read at or before the reading on screen.
        locks = await source.collect("locks", await source.poll(), None)
        assert isinstance(locks, LocksData)
        assert locks.activity.collected_at == NOW + timedelta(seconds=19)
        with pytest.raises(PollError, match="not recorded: no queries data"):
            await source.collect("queries", await source.poll(), None)
        for request in (SessionDetail(backend(5000)), StatementPlan("SELECT 1", 150000, "x")):
            with pytest.raises(PollError, match="not recorded"):
                await source.fetch(request)
        with pytest.raises(PollError, match="not recorded"):
            await source.fetch(DatabaseList())
        with pytest.raises(PollError, match="runs no statement"):
            await source.run(lambda conn: asyncio.sleep(0))
        source.seek(NOW + timedelta(seconds=33.5))
        assert source.index == 33
        assert source.gap_after(29) is not None
        assert source.gap_after() is None
        assert source.seconds_to_next() == 1.0
        with pytest.raises(ValueError, match="starts at"):
            source.seek(NOW - timedelta(seconds=1))

    asyncio.run(check())


def test_times_are_typed_as_on_the_screen(recorded: Path) -> None:
    recording = Recording.open(recorded)
    assert parse_when("09:30:05", recording) == NOW + timedelta(seconds=5)
    assert parse_when("9:30", recording) == NOW
    assert parse_when("2026-11-26T09:30:07Z", recording) == NOW + timedelta(seconds=7)
    assert parse_when("2026-11-26 10:30:07+01:00", recording) == NOW + timedelta(seconds=7)
    assert parse_when("2026-11-26T09:30:08", recording) == NOW + timedelta(seconds=8)
    assert parse_when("2026-11-27", recording) == datetime(2026, 11, 27, tzinfo=timezone.utc)
    for bad in ("25:00:00", "yesterday", "", "09:61"):
        with pytest.raises(ValueError, match="not a time"):
            parse_when(bad, recording)


def test_a_time_of_day_falls_on_the_day_the_recording_holds_it(tmp_path: Path) -> None:
    """A recording from 23:59:50 to 00:00:10: 00:00:05 is the next day's."""
    start = datetime(2026, 11, 26, 23, 59, 50, tzinfo=timezone.utc)
    path = tmp_path / "midnight.pgtop"
    readings: list[tuple[ActivitySnapshot, dict[str, object]]] = []
    for n in range(21):
        snapshot = at(0)
        counters = replace(snapshot.counters, collected_at=start + timedelta(seconds=n))
        readings.append((replace(snapshot, counters=counters), {}))
    write(path, readings)
    recording = Recording.open(path)
    assert parse_when("00:00:05", recording) == start + timedelta(seconds=15)
    assert parse_when("23:59:55", recording) == start + timedelta(seconds=5)


# -- the flight recorder's memory ---------------------------------------------------------------


def test_memory_keeps_the_last_minutes_within_its_bound(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    memory = Memory(
        "app@db:5432/shop", minutes=2, megabytes=64, refresh=1, on_failure=failures.append
    )
    for second in range(0, 600, 2):
        memory.activity(at(second))
        memory.tab("locks", LocksData(at(second), ()))
    saved = asyncio.run(memory.write(tmp_path / "recordings"))
    assert saved is not None
    assert failures == []
    recording = Recording.open(saved.path)
    first = recording.when(0)
    assert NOW + timedelta(seconds=600 - 2 * 60 - 60) <= first <= NOW + timedelta(seconds=480)
    assert recording.when(len(recording) - 1) == NOW + timedelta(seconds=598)
    assert recording.tab_counts()["locks"] == len(recording)
    assert stat.S_IMODE(saved.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.path.parent.stat().st_mode) == 0o700
    assert saved.path.name.startswith("pgtop-app@db_5432_shop-")
    assert saved.path.suffix == ".pgtop"
    assert list(saved.path.parent.iterdir()) == [saved.path], "no partial file left behind"


def test_memory_is_bounded_in_size(tmp_path: Path) -> None:
    memory = Memory("db", minutes=600, megabytes=1, refresh=1, on_failure=print)
    for second in range(300):
        # Every session runs a new statement on every reading: nothing repeats.
        sessions = tuple(backend(n, query=os.urandom(160).hex()) for n in range(30))
        memory.activity(replace(at(second), backends=sessions))
    assert memory._writer.written.bytes <= 1024 * 1024
    saved = asyncio.run(memory.write(tmp_path))
    assert saved is not None
    recording = Recording.open(saved.path)
    assert recording.when(0) > NOW + timedelta(seconds=60), "the oldest were dropped"
    assert recording.when(len(recording) - 1) == NOW + timedelta(seconds=299)


def test_memory_says_once_what_it_cannot_keep_and_keeps_the_rest(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    memory = Memory("db", minutes=30, megabytes=64, refresh=1, on_failure=failures.append)
    for second in range(3):
        memory.activity(at(second))
        memory.tab("odd", object())
        memory.tab("locks", LocksData(at(second), ()))
    memory.activity(at(3))
    assert len(failures) == 1
    assert "odd" in str(failures[0])
    saved = asyncio.run(memory.write(tmp_path))
    assert saved is not None
    assert Recording.open(saved.path).tab_counts() == {"activity": 4, "locks": 3}


def test_memory_with_nothing_read_writes_nothing(tmp_path: Path) -> None:
    memory = Memory("db", minutes=30, megabytes=64, refresh=1, on_failure=print)
    assert asyncio.run(memory.write(tmp_path)) is None
    assert list(tmp_path.iterdir()) == []


def test_create_private_never_replaces_a_file(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_text("keep")
    with pytest.raises(FileExistsError):
        create_private(path)
    assert path.read_text() == "keep"
