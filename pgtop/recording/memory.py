"""The flight recorder's memory: what the interface read in the last minutes, kept in memory
and written to a file only when asked (``W``)."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pgtop import __version__
from pgtop.config import data_dir
from pgtop.model import ActivitySnapshot
from pgtop.recording.store import Writer, create_private


@dataclass(frozen=True, slots=True)
class Saved:
    """A recording written from memory."""

    path: Path
    readings: int
    seconds: float
    """Recorded time from its first reading to its last."""


def recording_name(server: str, when: datetime) -> str:
    """A file name for a recording of ``server`` written at ``when``: only characters safe
    in any file system.

    >>> recording_name("postgres@[/tmp/pg x]:5432/shop", datetime(2026, 11, 26, 9, 30))
    'pgtop-postgres@_tmp_pg_x_5432_shop-20261126-093000.pgtop'
    """
    safe = re.sub(r"[^A-Za-z0-9@._-]+", "_", server).strip("_.")[:80] or "server"
    return f"pgtop-{safe}-{when:%Y%m%d-%H%M%S}.pgtop"


def save_private(source: sqlite3.Connection, path: Path) -> None:
    """Copy the database ``source`` to a new file readable by its owner only, atomically
    (a reader never sees half a file); ``source`` is closed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = path.with_name(f".{path.name}.part")
    try:
        target = create_private(part)
        try:
            source.backup(target)
        finally:
            target.close()
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        source.close()


class Memory:
    """The last ``minutes`` of readings (at most ``megabytes``), in an SQLite database in
    memory: a recording like any other, written to a file by copying it.

    Each Activity snapshot starts a reading; the tab data read after it joins it. A
    failure to record never stops monitoring: ``on_failure`` hears of it, once, and the
    memory stops.
    """

    def __init__(
        self,
        server: str,
        *,
        minutes: float,
        megabytes: float,
        refresh: float,
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self.server = server
        self.seconds = minutes * 60
        self.max_bytes = int(megabytes * 1024 * 1024)
        self._on_failure = on_failure
        self._db = sqlite3.connect(":memory:")
        self._writer = Writer(
            self._db,
            {
                "server": server,
                "created": datetime.now().astimezone().isoformat(timespec="seconds"),
                "pgtop": __version__,
                "refresh": f"{refresh:g}",
                "made": "interface",
            },
        )
        # A keyframe starts early rather than let one segment fill the memory.
        self._writer.segment_bytes = max(1, self.max_bytes // 8)
        self._pending: tuple[ActivitySnapshot, dict[str, object]] | None = None
        self.stopped = ""
        """Why the memory stopped ("" while it records)."""
        self._refused: set[str] = set()

    @property
    def readings(self) -> int:
        return self._writer.written.readings + (self._pending is not None)

    def activity(self, snapshot: ActivitySnapshot) -> None:
        """A new Activity snapshot: the reading before it is complete."""
        self._flush()
        if not self.stopped:
            self._pending = (snapshot, {})

    def tab(self, tab: str, data: object) -> None:
        """Data of ``tab`` read after the last Activity snapshot."""
        if self._pending is not None:
            self._pending[1][tab] = data

    def lost(self, reason: str) -> None:
        """The connection is lost: a gap until the next snapshot."""
        self._flush()
        self._guard(lambda: self._writer.lost(reason))

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None or self.stopped:
            return
        snapshot, tabs = pending

        def add() -> None:
            for problem in self._writer.add(snapshot, tabs):
                tab = problem.split(":", 1)[0]
                if tab not in self._refused:
                    self._refused.add(tab)
                    self._on_failure(TypeError(f"the flight recorder cannot keep {problem}"))
            oldest = snapshot.collected_at.timestamp() - self.seconds
            self._writer.drop_before(oldest, self.max_bytes)

        self._guard(add)

    def _guard(self, work: Callable[[], None]) -> None:
        if self.stopped:
            return
        try:
            work()
        except Exception as exc:  # a bug or no memory left: monitoring goes on without it
            self.stopped = f"the flight recorder stopped: {exc}"
            self._on_failure(exc)

    async def write(self, folder: Path | None = None) -> Saved | None:
        """Write what memory holds to a new private file in ``folder`` (the data folder's
        ``recordings``), named after the server and the time; None when it holds nothing.

        Raises:
            OSError: the file cannot be written.
        """
        self._flush()
        written = self._writer.written
        if not written.readings:
            return None
        copy = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.backup(copy)
        folder = folder or data_dir() / "recordings"
        path = folder / recording_name(self.server, datetime.now())
        await asyncio.to_thread(save_private, copy, path)
        span = (written.last or 0.0) - (written.first or 0.0)
        return Saved(path, written.readings, span)
