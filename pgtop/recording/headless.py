"""``pgtop --record FILE``: read every tab at its own cadence, without an interface, into a
recording, until stopped.

Each refresh reads the Activity snapshot, then asks every tab's collector for its data: the
source runs a collector only when it is due (Locks on every refresh, Queries and the catalog
tabs at their slower cadences), so the server sees what an interface showing each tab in
turn would ask of it. A lost connection is a gap in the recording; the source reconnects by
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pgtop.config import write_crash_log
from pgtop.model import ActivitySnapshot
from pgtop.recording.store import Writer, Written
from pgtop.source import PollError, Source
from pgtop.text import redact_text

MAX_RETRY_SECONDS = 15.0
"""Longest wait between two attempts to reconnect."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What to record."""

    tabs: Sequence[str]
    """Every tab with a collector, in order."""
    needs: Mapping[str, object]
    """What each tab's collector is asked for (as its pane would ask), by tab; None for
    the others."""
    refresh: float
    duration: float | None = None
    """Seconds to record; None: until stopped."""


async def record(
    source: Source,
    writer: Writer,
    plan: Plan,
    stop: asyncio.Event,
    say: Callable[[str], None],
    secrets: Iterable[str | None] = (),
) -> Written:
    """Record until ``stop`` is set or ``plan.duration`` has passed; ``say`` tells what
    happens (a lost connection, a tab that cannot be read), one line each."""
    secrets = tuple(secrets)
    deadline = None if plan.duration is None else time.monotonic() + plan.duration
    said: dict[str, str] = {}
    """The last thing said about each tab (or "" for the connection): said once."""

    def tell(topic: str, line: str) -> None:
        if said.get(topic) != line:
            said[topic] = line
            say(line)

    while not stop.is_set():
        started = time.monotonic()
        if deadline is not None and started >= deadline:
            break
        delay = plan.refresh
        try:
            polled = await source.poll()
            assert isinstance(polled, ActivitySnapshot), "a PostgreSQL server is recorded"
            activity = polled
        except PollError as exc:
            if exc.connection_lost:
                if not writer.in_gap:
                    say(f"connection lost: {exc}; recording a gap until it is back")
                    writer.lost(str(exc))
                delay = min(MAX_RETRY_SECONDS, 0.5 * 2 ** min(source.attempts, 5))
            else:
                tell("", f"refresh failed: {exc}")
        else:
            if writer.in_gap:
                say(f"connection back at {activity.collected_at:%H:%M:%S}; recording again")
            said.pop("", None)
            data: dict[str, object] = {}
            for tab in plan.tabs:
                try:
                    value = await source.collect(tab, activity, plan.needs.get(tab))
                except PollError as exc:
                    tell(tab, f"{tab} not recorded this time: {exc}")
                    continue
                except Exception as exc:  # a bug in one tab must not stop the recording
                    path = write_crash_log(exc, secrets)
                    where = f"; details in {path}" if path else ""
                    reason = redact_text(str(exc).split("\n", 1)[0], secrets)
                    tell(tab, f"{tab} not recorded: internal error: {reason}{where}")
                    continue
                if value is not None:
                    said.pop(tab, None)
                    data[tab] = value
            for problem in writer.add(activity, data):
                tell(problem.split(":", 1)[0], f"not recorded: {problem}")
        wait = max(0.0, started + delay - time.monotonic())
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)
    return writer.written
