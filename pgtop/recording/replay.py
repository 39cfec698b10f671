"""A recording played back as a source: the tabs, ``--once`` and every request read from it,
and nothing from a server.

``ReplaySource`` stands at one reading (``index``): its Activity snapshot is what a poll
returns, and each tab's data the latest read at that reading or before. Requests answer from
that reading too, or say that a recording does not hold what they ask (a plan, the locks a
session held). It offers no action and no other database.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar

from pgtop.collectors.activity import WHOLE_TEXT_LIMIT, SessionDetail
from pgtop.collectors.base import Connection
from pgtop.collectors.statements import StatementsSnapshot, StatementText
from pgtop.model import ActivitySnapshot, Capabilities, Snapshot
from pgtop.recording.store import ACTIVITY, Gap, Recording, RecordingError
from pgtop.source import PollError, Request, SourceKind

if TYPE_CHECKING:
    from pgtop.actions import ActionRunner

T = TypeVar("T")

NOT_HELD = (
    "not recorded: a recording keeps the lock each session waited for (Locks tab), not the "
    "locks it held"
)


class ReplaySource:
    """A recording, at one of its readings (see the module's docstring).

    Raises:
        RecordingError: the recording holds no reading.
    """

    def __init__(self, recording: Recording, index: int = 0) -> None:
        if not len(recording):
            raise RecordingError(f"{recording.name} holds no reading")
        self.recording = recording
        self.index = max(0, min(index, len(recording) - 1))
        self.lost_since: datetime | None = None
        self.attempts = 0
        self.actions: ActionRunner | None = None
        self.other_databases = False
        self.kind: SourceKind = "postgresql"
        self.capabilities: Capabilities | None = recording.activity(self.index).capabilities

    # -- where it stands ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.recording)

    @property
    def when(self) -> datetime:
        """The recorded time of the current reading."""
        return self.recording.when(self.index)

    def move(self, index: int) -> bool:
        """Stand at reading ``index`` (kept within the recording); whether it moved."""
        index = max(0, min(index, len(self.recording) - 1))
        moved = index != self.index
        self.index = index
        return moved

    def step(self, readings: int) -> bool:
        """Move by a number of readings (negative: back)."""
        return self.move(self.index + readings)

    def jump(self, seconds: float) -> bool:
        """Move by recorded time: to the last reading at or before the time ``seconds``
        away (forward: the first one after the current, at least)."""
        entries = self.recording.entries
        target = entries[self.index].at + seconds
        found = self.recording.index_at(target)
        if seconds > 0:
            found = max(self.index + 1, found if found is not None else 0)
        return self.move(0 if found is None else found)

    def seek(self, when: datetime) -> bool:
        """Stand at the last reading at or before ``when``.

        Raises:
            ValueError: the recording starts after ``when``.
        """
        found = self.recording.index_at(when.timestamp())
        if found is None:
            raise ValueError(
                f"the recording starts at {self.recording.when(0):%Y-%m-%d %H:%M:%S}, after "
                f"{when:%Y-%m-%d %H:%M:%S}"
            )
        return self.move(found)

    def seconds_to_next(self) -> float | None:
        """Recorded seconds from this reading to the next (None: this is the last)."""
        entries = self.recording.entries
        if self.index + 1 >= len(entries):
            return None
        return max(0.0, entries[self.index + 1].at - entries[self.index].at)

    def gap_after(self, index: int | None = None) -> Gap | None:
        """The gap between reading ``index`` (the current one) and the next, if any."""
        index = self.index if index is None else index
        return next((gap for gap in self.recording.gaps if gap.after == index), None)

    # -- the contract ------------------------------------------------------------------------

    def describe(self) -> str:
        return self.recording.meta.get("server", "a recording")

    async def poll(self) -> ActivitySnapshot:
        try:
            snapshot = self.recording.activity(self.index)
        except RecordingError as exc:
            raise PollError(str(exc), connection_lost=False) from None
        self.capabilities = snapshot.capabilities
        return snapshot

    async def collect(
        self, tab: str, activity: Snapshot, needs: object, *, now: bool = False
    ) -> object | None:
        if tab == ACTIVITY:  # what ``poll`` returns; no collector of its own
            return None
        try:
            found = self.recording.latest(self.index, tab)
        except RecordingError as exc:
            raise PollError(str(exc), connection_lost=False) from None
        if found is None:
            raise PollError(
                f"not recorded: no {tab} data was read until {self.when:%H:%M:%S}",
                connection_lost=False,
            )
        return found[1]

    async def fetch(self, request: Request[T]) -> T:
        answer: Any = await self._answer(request)
        result: T = answer
        return result

    async def _answer(self, request: object) -> object:
        if isinstance(request, SessionDetail):
            raise PollError(NOT_HELD, connection_lost=False)
        if isinstance(request, StatementText):
            data = await self.collect("queries", await self.poll(), None)
            text = data.texts.get(request.queryid) if isinstance(data, StatementsSnapshot) else None
            if text is None:
                raise PollError(
                    "not recorded: this statement's text was not read while recording",
                    connection_lost=False,
                )
            return text[:WHOLE_TEXT_LIMIT], len(text) > WHOLE_TEXT_LIMIT
        raise PollError(
            "not recorded: a recording answers from what was read then (no plan, no other "
            "database)",
            connection_lost=False,
        )

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        raise PollError("a recording runs no statement on any server", connection_lost=False)

    async def close(self) -> None:
        self.recording.close()


# -- times typed by the user -----------------------------------------------------------------

_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$")


def parse_when(text: str, recording: Recording) -> datetime:
    """A time in the recording, as typed: ``HH:MM[:SS]`` (on the recording's day, in its
    time zone) or ISO 8601 (``2026-11-26T09:30:00``, ``...+02:00``, ``...Z``).

    Raises:
        ValueError: it is not a time; the message says what is.
    """
    text = text.strip()
    first = recording.when(0)
    zone = first.tzinfo
    match = _TIME_OF_DAY.match(text)
    if match:
        hour, minute, second = (int(match.group(i) or 0) for i in (1, 2, 3))
        micro = int((match.group(4) or "0").ljust(6, "0"))
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"not a time of day: {text[:40]!r}")
        return _on_recorded_day(recording, zone, hour, minute, second, micro)
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        try:
            when = datetime.combine(date.fromisoformat(iso), datetime.min.time())
        except ValueError:
            raise ValueError(
                f"not a time: {text[:40]!r} (HH:MM:SS of the recording's day, or ISO 8601 "
                "such as 2026-11-26T09:30:00)"
            ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)


def _on_recorded_day(
    recording: Recording, zone: tzinfo | None, hour: int, minute: int, second: int, micro: int
) -> datetime:
    """That time of day on the first day of the recording it falls within (the first day's
    when it falls within none)."""
    first, last = recording.when(0), recording.when(len(recording) - 1)
    day = first.date()
    candidates = []
    while day <= last.date():
        candidates.append(
            datetime.combine(day, datetime.min.time()).replace(
                hour=hour, minute=minute, second=second, microsecond=micro, tzinfo=zone
            )
        )
        day += timedelta(days=1)
    start, end = first.timestamp(), last.timestamp()
    return next((c for c in candidates if start <= c.timestamp() <= end), candidates[0])
