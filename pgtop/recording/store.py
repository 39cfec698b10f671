"""A recording: one SQLite file (the standard library's) of readings, each compressed.

A *reading* is what one refresh read: the Activity snapshot, and the data of each tab that
was read with it (``tabs``), written by ``codec`` as chunks of JSON. A reading holds only
the chunks that no earlier reading of its *segment* holds, so an unchanged session costs
nothing after the first reading it appears in; each segment starts with a keyframe (a
reading that holds everything, the latest data of every tab included), every
``KEYFRAME_SECONDS`` and after a gap, so any reading is read from its segment alone. The
chunks of a reading are compressed together (zlib).

The file holds no password and no connection string: the server is named as
``user@host:port/dbname``.

Tables (the ``meta`` table's ``version`` is the format's; a file of a newer format is
refused, never misread):

* ``meta(key, value)``: ``format``, ``version``, ``server``, ``created``, ``pgtop``, ...
* ``kinds(id, name, fields)``: the codec's type table.
* ``readings(id, at, segment, tabs, data)``: ``at`` is the Activity snapshot's time (the
  server's clock) in seconds since the epoch; ``tabs`` the tabs read at that refresh,
  space-separated, ``activity`` first.
* ``gaps(after, until, reason)``: the connection was lost after reading ``after`` and
  came back at reading ``until`` (NULL: not before the recording ended).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import sqlite3
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pgtop.model import ActivitySnapshot
from pgtop.pg import EXIT_USAGE
from pgtop.recording.codec import (
    CodecError,
    Decoder,
    Encoder,
    Kind,
    Node,
    TypeTable,
    dumps,
    loads,
    pgtop_types,
)

FORMAT = "pgtop recording"
VERSION = 2
"""The format's version: a reader refuses a newer one. 2: long lists written in pieces
(``["p", ...]``, see ``codec.PIECES_FROM``)."""
KEYFRAME_SECONDS = 60.0
"""Recorded seconds between two keyframes (a segment's length)."""
MAX_READING_BYTES = 1 << 30
"""A reading that inflates beyond this is taken for a forgery (a decompression bomb)."""
ACTIVITY = "activity"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE kinds (id INTEGER PRIMARY KEY, name TEXT NOT NULL, fields TEXT NOT NULL);
CREATE TABLE readings (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    segment INTEGER NOT NULL,
    tabs TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX readings_segment ON readings (segment, id);
CREATE TABLE gaps (after INTEGER, until INTEGER, reason TEXT NOT NULL);
"""
_TABLES = {"meta", "kinds", "readings", "gaps"}
_SQLITE_MAGIC = b"SQLite format 3\x00"


class RecordingError(Exception):
    """A recording cannot be read or written; ``str()`` is one line for the user."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Entry:
    """One reading, as the index of a recording lists it."""

    id: int
    at: float
    """The Activity snapshot's time, in seconds since the epoch."""
    segment: int
    tabs: tuple[str, ...]
    """The tabs read at this refresh (``activity`` first)."""


@dataclass(frozen=True, slots=True)
class Gap:
    """A time without readings: the connection was lost (or nothing recorded)."""

    after: int | None
    """The index of the last reading before it (None: before the first)."""
    until: int | None
    """The index of the first reading after it (None: the recording ends in it)."""
    reason: str


# -- writing ----------------------------------------------------------------------------------


@dataclass
class _Segment:
    number: int
    start: float
    bytes: int = 0


@dataclass
class Written:
    """What a recording holds so far."""

    readings: int = 0
    first: float | None = None
    last: float | None = None
    bytes: int = 0
    segments: dict[int, int] = field(default_factory=dict)
    """Compressed bytes of each segment."""


class Writer:
    """Appends readings to a recording: a file, or a database in memory.

    Args:
        db: an SQLite connection: a new database (``meta`` is written) or a recording to
            append to (which starts with a gap).
        meta: what the recording says of itself (server, refresh...), for a new one.
        keyframe_seconds: recorded seconds between keyframes.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        meta: Mapping[str, str],
        *,
        keyframe_seconds: float = KEYFRAME_SECONDS,
    ) -> None:
        self.db = db
        self.keyframe_seconds = keyframe_seconds
        self.segment_bytes = 1 << 62
        """A segment holding more than this starts a keyframe early (memory bound)."""
        self.types = TypeTable()
        self.encoder = Encoder(self.types)
        self.latest: dict[str, object] = {}
        """The latest data of each tab: a keyframe holds it."""
        self.written = Written()
        self._segment: _Segment | None = None
        self._last_id: int | None = None
        self._gap: int | None = None
        """The rowid of the open gap (the connection is lost)."""
        with db:
            if _tables(db):
                self._resume()
            else:
                db.executescript(SCHEMA)
                rows = {"format": FORMAT, "version": str(VERSION), **meta}
                db.executemany("INSERT INTO meta VALUES (?, ?)", rows.items())

    def _resume(self) -> None:
        """Continue a recording: after what it holds, with a gap."""
        recording_meta(self.db, "the file")
        # What is added may use all of this version's encodings.
        self.db.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(VERSION),))
        kinds = self.db.execute("SELECT id, name, fields FROM kinds ORDER BY id").fetchall()
        self.types.restore(_kind(row) for row in kinds)
        row = self.db.execute("SELECT max(id), max(segment) FROM readings").fetchone()
        self._last_id = row[0]
        if row[1] is not None:
            self._segment = _Segment(row[1], 0.0)
        if self._last_id is not None:
            self.lost("pgtop was not recording")

    def add(self, activity: ActivitySnapshot, tabs: Mapping[str, object]) -> list[str]:
        """Write one reading: ``activity`` and the data of the tabs read with it.

        Returns:
            Why each tab that could not be written was left out (a value no recording can
            hold), one line each; the rest is written.
        """
        at = activity.collected_at.timestamp()
        segment = self._segment
        keyframe = (
            segment is None
            or self._gap is not None
            or at - segment.start >= self.keyframe_seconds
            or at < segment.start
            or segment.bytes >= self.segment_bytes
        )
        if keyframe:
            self.encoder.reset()
            segment = self._segment = _Segment(0 if segment is None else segment.number + 1, at)
        assert segment is not None
        roots: dict[str, Node] = {ACTIVITY: self.encoder.encode(activity)}
        problems: list[str] = []
        fresh = [ACTIVITY]
        values = {**self.latest, **tabs} if keyframe else dict(tabs)
        for tab, value in values.items():
            try:
                roots[tab] = self.encoder.encode(value)
            except TypeError as exc:
                problems.append(f"{tab}: {exc}")
                self.latest.pop(tab, None)
                continue
            if tab in tabs:
                fresh.append(tab)
                self.latest[tab] = value
        chunks = self.encoder.take_new()
        text = '{"c":[' + ",".join(chunks) + '],"t":' + dumps(roots) + "}"
        data = zlib.compress(text.encode("ascii"), 6)
        with self.db:
            self.db.executemany(
                "INSERT INTO kinds VALUES (?, ?, ?)",
                [(n, k.name, dumps(list(k.fields))) for n, k in self.types.take_new()],
            )
            cur = self.db.execute(
                "INSERT INTO readings (at, segment, tabs, data) VALUES (?, ?, ?, ?)",
                (at, segment.number, " ".join(fresh), data),
            )
            self._last_id = cur.lastrowid
            if self._gap is not None:
                self.db.execute(
                    "UPDATE gaps SET until = ? WHERE rowid = ?", (cur.lastrowid, self._gap)
                )
                self._gap = None
        segment.bytes += len(data)
        written = self.written
        written.readings += 1
        written.first = at if written.first is None else written.first
        written.last = at
        written.bytes += len(data)
        written.segments[segment.number] = segment.bytes
        return problems

    def lost(self, reason: str) -> None:
        """The connection is lost: a gap starts after the last reading (once)."""
        if self._gap is not None:
            return
        with self.db:
            cur = self.db.execute(
                "INSERT INTO gaps (after, until, reason) VALUES (?, NULL, ?)",
                (self._last_id, reason),
            )
        self._gap = cur.lastrowid

    @property
    def in_gap(self) -> bool:
        return self._gap is not None

    def drop_before(self, oldest_kept: float, max_bytes: int) -> None:
        """Forget whole segments: those whose readings are all older than ``oldest_kept``,
        then the oldest while the recording holds more than ``max_bytes`` (never the
        segment being written)."""
        written = self.written
        current = self._segment.number if self._segment is not None else None
        dropped: list[int] = []
        rows = self.db.execute(
            "SELECT segment, max(at) FROM readings GROUP BY segment ORDER BY segment"
        ).fetchall()
        total = written.bytes
        for number, newest in rows:
            if number == current:
                break
            if newest >= oldest_kept and total <= max_bytes:
                break
            dropped.append(number)
            total -= written.segments.pop(number, 0)
        if not dropped:
            return
        with self.db:
            self.db.executemany("DELETE FROM readings WHERE segment = ?", [(n,) for n in dropped])
            first = self.db.execute("SELECT min(id), min(at), count(*) FROM readings").fetchone()
            self.db.execute(
                "DELETE FROM gaps WHERE until IS NOT NULL AND until <= ?", (first[0] or 0,)
            )
            self.db.execute("UPDATE gaps SET after = NULL WHERE after < ?", (first[0] or 0,))
        written.bytes = total
        written.first = first[1]
        written.readings = first[2]


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _meta(db: sqlite3.Connection) -> dict[str, str]:
    return {str(k): str(v) for k, v in db.execute("SELECT key, value FROM meta")}


def _kind(row: tuple[Any, ...]) -> Kind:
    fields = loads(row[2])
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise CodecError("a type table entry that is not one")
    return Kind(str(row[1]), tuple(fields))


def recording_meta(db: sqlite3.Connection, what: str) -> dict[str, str]:
    """What a recording says of itself.

    Raises:
        RecordingError: ``db`` is no recording this pgtop can read.
    """
    if "meta" not in _tables(db):
        raise RecordingError(f"{what} is not a pgtop recording")
    meta = _meta(db)
    check_meta(meta, what)
    return meta


def check_meta(meta: Mapping[str, str], what: str) -> None:
    """Raises RecordingError unless ``meta`` is a recording's this pgtop can read."""
    if meta.get("format") != FORMAT:
        raise RecordingError(f"{what} is not a pgtop recording")
    try:
        version = int(meta.get("version", ""))
    except ValueError:
        raise RecordingError(f"{what} is not a pgtop recording (no format version)") from None
    if version > VERSION:
        made_by = meta.get("pgtop", "a newer pgtop")
        raise RecordingError(
            f"{what} is a recording of format {version}, made by pgtop {made_by[:20]}; this "
            f"pgtop reads format {VERSION} and older: upgrade pgtop to replay it"
        )
    if version < 1:
        raise RecordingError(f"{what} is not a pgtop recording (format version {version})")


# -- files ------------------------------------------------------------------------------------


def create_private(path: Path) -> sqlite3.Connection:
    """A new, empty database file readable by its owner only (0600); never an existing
    file.

    Raises:
        OSError: it exists, or cannot be created.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    return _connect(path)


def _connect(
    path: Path, *, read_only: bool = False, same_thread: bool = True
) -> sqlite3.Connection:
    uri = path.resolve().as_uri() + ("?mode=ro" if read_only else "")
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=same_thread)
    db.isolation_level = "DEFERRED"
    # A file someone else made runs none of its own SQL (views, triggers) with our rights.
    db.execute("PRAGMA trusted_schema = OFF")
    db.execute("PRAGMA cell_size_check = ON")
    return db


def open_for_append(path: Path) -> sqlite3.Connection:
    """A recording to add readings to, or a new one.

    Raises:
        RecordingError: the file exists and is not a recording this pgtop can extend.
        OSError: it cannot be created.
    """
    if not path.exists():
        db = create_private(path)
        db.execute("PRAGMA journal_mode = DELETE")
        db.execute("PRAGMA synchronous = NORMAL")
        return db
    _check_file(path)
    db = _connect(path)
    try:
        recording_meta(db, str(path))
    except sqlite3.DatabaseError as exc:
        db.close()
        raise RecordingError(_damaged(path, exc)) from None
    except RecordingError:
        db.close()
        raise
    return db


def _check_file(path: Path) -> None:
    """Refuse what is plainly not a recording, or cut short, before SQLite reads it."""
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
            size = os.fstat(handle.fileno()).st_size
    except IsADirectoryError:
        raise RecordingError(f"{path} is a directory, not a pgtop recording") from None
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
        raise RecordingError(f"{path} is not a pgtop recording")
    (page_size,) = struct.unpack(">H", header[16:18])
    page_size = 65536 if page_size == 1 else page_size
    (changes, pages, valid_for) = (
        struct.unpack(">I", header[24:28])[0],
        struct.unpack(">I", header[28:32])[0],
        struct.unpack(">I", header[92:96])[0],
    )
    if changes == valid_for and pages and size < pages * page_size:
        raise RecordingError(
            f"{path} is truncated: {size:,} bytes of {pages * page_size:,} (copied before "
            "the end, or a full disk?)"
        )


def _damaged(path: Path, exc: BaseException) -> str:
    return f"{path} is damaged or truncated: {str(exc)[:200]}"


# -- reading ----------------------------------------------------------------------------------


class Recording:
    """A recording opened for reading: its index in memory, readings read on demand.

    Build one with ``Recording.open`` (a file) or ``Recording(db, name)``.

    Raises (from every method that reads): RecordingError, the recording is damaged.
    """

    def __init__(self, db: sqlite3.Connection, name: str) -> None:
        self.db = db
        self.name = name
        try:
            self.meta = recording_meta(db, name)
            if not _tables(db) >= _TABLES:
                raise RecordingError(f"{name} is damaged: it lacks the tables of a recording")
            self.kinds = {
                int(row[0]): _kind(row) for row in db.execute("SELECT id, name, fields FROM kinds")
            }
            self.entries = [
                Entry(int(i), float(at), int(segment), tuple(str(tabs).split()))
                for i, at, segment, tabs in db.execute(
                    "SELECT id, at, segment, tabs FROM readings ORDER BY id"
                )
            ]
            positions = {entry.id: n for n, entry in enumerate(self.entries)}
            self.gaps = [
                Gap(positions.get(after), positions.get(until), str(reason))
                for after, until, reason in db.execute(
                    "SELECT after, until, reason FROM gaps ORDER BY rowid"
                )
            ]
        except (sqlite3.DatabaseError, CodecError, ValueError, TypeError) as exc:
            raise RecordingError(_damaged(Path(name), exc)) from None
        self._times = [entry.at for entry in self.entries]
        self._segment: int | None = None
        self._decoder: Decoder | None = None
        self._roots: dict[int, dict[str, Node]] = {}
        """The roots of each reading of the loaded segment, by index."""
        self._loaded_to = -1

    @classmethod
    def open(cls, path: Path) -> Recording:
        """Open a recording file read-only.

        Raises:
            RecordingError: it is missing, not a recording, of a newer format, truncated
                or damaged; the message is one line.
        """
        _check_file(path)
        try:
            db = _connect(path, read_only=True)
        except sqlite3.DatabaseError as exc:
            raise RecordingError(_damaged(path, exc)) from None
        try:
            return cls(db, str(path))
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def __len__(self) -> int:
        return len(self.entries)

    def index_at(self, when: float) -> int | None:
        """The last reading at or before ``when`` (seconds since the epoch), or None."""
        position = bisect.bisect_right(self._times, when)
        return position - 1 if position else None

    def tab_counts(self) -> dict[str, int]:
        """How many readings read each tab."""
        counts: dict[str, int] = {}
        for entry in self.entries:
            for tab in entry.tabs:
                counts[tab] = counts.get(tab, 0) + 1
        return counts

    def activity(self, index: int) -> ActivitySnapshot:
        """The Activity snapshot of reading ``index``."""
        value = self._value(index, ACTIVITY)
        if not isinstance(value, ActivitySnapshot):
            raise RecordingError(f"{self.name} is damaged: reading {index + 1} has no Activity")
        return value

    def latest(self, index: int, tab: str) -> tuple[int, object] | None:
        """The latest data of ``tab`` at reading ``index`` or before (a keyframe holds the
        latest of every tab), with the index of the reading it was read at; None when
        ``tab`` was not read until then."""
        self._load(index)
        start = self._segment_start(index)
        for position in range(index, start - 1, -1):
            if tab in self._roots[position]:
                if position == start and tab not in self.entries[position].tabs:
                    return self._read_at(position, tab), self._value(position, tab)
                return position, self._value(position, tab)
        return None

    def _read_at(self, keyframe: int, tab: str) -> int:
        """The reading a keyframe's carried data of ``tab`` was read at."""
        for position in range(keyframe - 1, -1, -1):
            if tab in self.entries[position].tabs:
                return position
        return keyframe

    def _segment_start(self, index: int) -> int:
        segment = self.entries[index].segment
        start = index
        while start > 0 and self.entries[start - 1].segment == segment:
            start -= 1
        return start

    def _value(self, index: int, tab: str) -> object:
        self._load(index)
        node = self._roots[index].get(tab)
        if node is None:
            return None
        assert self._decoder is not None
        try:
            return self._decoder.value(node)
        except CodecError as exc:
            raise RecordingError(
                f"{self.name}: reading {index + 1} cannot be read: {exc}"
            ) from None

    def _load(self, index: int) -> None:
        """Read the blobs of ``index``'s segment up to ``index``."""
        if not 0 <= index < len(self.entries):
            raise IndexError(index)
        segment = self.entries[index].segment
        if segment != self._segment:
            self._segment = segment
            self._decoder = Decoder(self.kinds, pgtop_types)
            self._roots = {}
            self._loaded_to = self._segment_start(index) - 1
        if index <= self._loaded_to:
            return
        first = self.entries[self._loaded_to + 1].id
        last = self.entries[index].id
        assert self._decoder is not None
        try:
            rows = self.db.execute(
                "SELECT id, data FROM readings WHERE id BETWEEN ? AND ? ORDER BY id",
                (first, last),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise RecordingError(_damaged(Path(self.name), exc)) from None
        for (row_id, data), position in zip(
            rows, range(self._loaded_to + 1, index + 1), strict=False
        ):
            if row_id != self.entries[position].id:
                raise RecordingError(f"{self.name} changed while it was read")
            chunks, roots = self._parse(data, position)
            self._decoder.extend_nodes(chunks)
            self._roots[position] = roots
            self._loaded_to = position
        if self._loaded_to < index:
            raise RecordingError(f"{self.name} changed while it was read")

    def _parse(self, data: object, position: int) -> tuple[list[Node], dict[str, Node]]:
        where = f"{self.name}: reading {position + 1}"
        if not isinstance(data, bytes):
            raise RecordingError(f"{where} is damaged")
        inflate = zlib.decompressobj()
        try:
            text = inflate.decompress(data, MAX_READING_BYTES)
        except zlib.error as exc:
            raise RecordingError(f"{where} is damaged ({exc})") from None
        if inflate.unconsumed_tail:
            raise RecordingError(f"{where} inflates beyond {MAX_READING_BYTES:,} bytes")
        if not inflate.eof:
            raise RecordingError(f"{where} is truncated")
        try:
            document = loads(text)
        except CodecError as exc:
            raise RecordingError(f"{where} is damaged ({exc})") from None
        if (
            not isinstance(document, dict)
            or not isinstance(document.get("c"), list)
            or not isinstance(document.get("t"), dict)
        ):
            raise RecordingError(f"{where} is damaged")
        return document["c"], document["t"]

    def when(self, index: int) -> datetime:
        """The time of reading ``index``, in the time zone its server reported."""
        return self.activity(index).collected_at


@contextlib.contextmanager
def opened(path: Path) -> Iterator[Recording]:
    recording = Recording.open(path)
    try:
        yield recording
    finally:
        recording.close()
