"""The flight recorder's commands: ``--record FILE`` (no interface), and ``--replay FILE``
(the interface, ``--once TAB [--at TIME]``, ``--info``). See ``pgtop.recording``."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgtop.text import one_line

if TYPE_CHECKING:
    import psycopg

    from pgtop.app import PgTopApp
    from pgtop.collectors.base import CollectorFactory
    from pgtop.config import Settings
    from pgtop.model import Capabilities
    from pgtop.recording import Recording

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_arg(value: str) -> float:
    """``--duration``: seconds, or a number with a unit (``90s``, ``30m``, ``2h``, ``1d``).

    >>> duration_arg("90"), duration_arg("30m"), duration_arg("1.5h")
    (90.0, 1800.0, 5400.0)
    """
    match = _DURATION.match(value.strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a duration: {value!r} (90s, 30m, 2h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flight recorder's options."""
    group = parser.add_argument_group("flight recorder")
    group.add_argument(
        "--record",
        metavar="FILE",
        help="record every tab into FILE without an interface, until interrupted or "
        "--duration (a recording FILE is added to)",
    )
    group.add_argument(
        "--duration",
        type=duration_arg,
        metavar="DURATION",
        help="with --record: stop after DURATION (90s, 30m, 2h)",
    )
    group.add_argument("--replay", metavar="FILE", help="open a recording (no server is contacted)")
    group.add_argument(
        "--at",
        metavar="TIME",
        help="with --replay: the reading at or before TIME (HH:MM:SS of the recording's "
        "day, or ISO 8601)",
    )
    group.add_argument(
        "--info",
        action="store_true",
        help="with --replay: print the server, the time span, the readings and the gaps",
    )


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with how the flight recorder's options are combined, if anything."""
    connection = args.conninfo or args.host or args.port or args.dbname or args.username
    if args.record and args.replay:
        return "--record writes a recording and --replay reads one: not both"
    if args.replay and (connection or args.demo):
        return "--replay reads a file and contacts no server: give no connection options"
    if args.record and args.once:
        return "--once prints one snapshot and --record records them all: choose one"
    if args.duration is not None and not args.record:
        return "--duration goes with --record"
    if (args.at is not None or args.info) and not args.replay:
        return f"{'--at' if args.at is not None else '--info'} goes with --replay"
    if args.info and (args.once or args.at is not None):
        return "--info describes the whole recording: no --once or --at with it"
    return None


# -- recording --------------------------------------------------------------------------------


def recorded_needs(factories: Mapping[str, CollectorFactory], refresh: float) -> dict[str, object]:
    """What each tab's collector is asked for while recording: every statement text, and
    the catalog tabs' whole lists at their own cadence."""
    from pgtop.collectors.activity import WHOLE_TEXT_LIMIT
    from pgtop.collectors.base import collector_class
    from pgtop.collectors.catalog import CatalogCollector, CatalogNeeds
    from pgtop.collectors.statements import StatementNeeds, StatementsCollector

    needs: dict[str, object] = {}
    for tab, factory in factories.items():
        made_by = collector_class(factory)
        if isinstance(made_by, type) and issubclass(made_by, CatalogCollector):
            needs[tab] = CatalogNeeds(refresh=refresh)
        elif made_by is StatementsCollector:
            needs[tab] = StatementNeeds(all_texts=True, text_limit=WHOLE_TEXT_LIMIT + 1)
    return needs


def say(line: str) -> None:
    """One line on standard error, server text made visible."""
    print(f"pgtop: {one_line(line, 1000)}", file=sys.stderr, flush=True)


async def record(
    settings: Settings,
    conn: psycopg.AsyncConnection[dict[str, Any]],
    capabilities: Capabilities,
    args: argparse.Namespace,
) -> int:
    """``pgtop --record FILE``: until SIGINT, SIGTERM or SIGHUP (unless ignored, as under
    ``nohup``), or ``--duration``.

    Raises:
        RecordingError: FILE cannot be created or written, or is not a recording.
    """
    import sqlite3

    from pgtop import __version__, pg
    from pgtop.collectors.activity import WHOLE_TEXT_LIMIT
    from pgtop.formats import duration, size
    from pgtop.recording import RecordingError, Writer
    from pgtop.recording.headless import Plan
    from pgtop.recording.headless import record as run
    from pgtop.recording.store import open_for_append
    from pgtop.source import LiveSource
    from pgtop.tabs import collectors

    path = Path(args.record)
    factories = collectors()
    # Whole texts, as --once reads them: a replay's detail and --once show them whole.
    source = LiveSource(
        replace(settings, read_only=True),
        conn,
        capabilities,
        collectors=factories,
        query_limit=WHOLE_TEXT_LIMIT + 1,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    try:
        try:
            db = open_for_append(path)
        except OSError as exc:
            raise RecordingError(f"cannot create {path}: {exc.strerror or exc}") from None
        try:
            writer = Writer(
                db,
                {
                    "server": source.describe(),
                    "created": datetime.now().astimezone().isoformat(timespec="seconds"),
                    "pgtop": __version__,
                    "refresh": f"{settings.refresh:g}",
                    "made": "record",
                },
            )
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                if signum == signal.SIGHUP and signal.getsignal(signum) is signal.SIG_IGN:
                    continue  # nohup: a closed terminal does not stop the recording
                try:
                    loop.add_signal_handler(signum, stop.set)
                except (NotImplementedError, RuntimeError):  # no such signal here
                    continue
                installed.append(signum)
            plan = Plan(
                tuple(factories),
                recorded_needs(factories, settings.refresh),
                settings.refresh,
                args.duration,
            )
            until = f" for {duration(args.duration)}" if args.duration else ""
            say(
                f"recording {source.describe()} to {path} every {settings.refresh:g}s{until}; "
                "Ctrl-C or SIGTERM stops"
            )
            written = await run(source, writer, plan, stop, say, (settings.password,))
        except sqlite3.Error as exc:
            raise RecordingError(f"cannot write {path}: {exc}", pg.EXIT_OUTPUT) from None
        finally:
            db.close()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await source.close()
    span = (written.last or 0.0) - (written.first or 0.0)
    say(
        f"recorded {written.readings} readings over {duration(span)} "
        f"({size(written.bytes)}) to {path}"
    )
    return 0


# -- replaying --------------------------------------------------------------------------------


async def replay(
    settings: Settings, args: argparse.Namespace, run_app: Callable[[PgTopApp], Awaitable[int]]
) -> int:
    """``pgtop --replay FILE``: the interface, one ``--once`` report, or ``--info``.

    Raises:
        RecordingError: the file is no recording this pgtop can read, ``--at`` is not in
            it, or the tab was not recorded by then.
    """
    import pgtop.tabs  # noqa: F401  (every tab's data types: a recording is read into them)
    from pgtop.output import write_output
    from pgtop.recording import Recording, RecordingError, ReplaySource, parse_when
    from pgtop.source import PollError

    path = Path(args.replay)
    recording = Recording.open(path)
    try:
        source = ReplaySource(recording)
        if args.info:
            write_output(info(recording, path, settings.output_format))
            return 0
        if args.at is not None:
            try:
                source.seek(parse_when(args.at, recording))
            except ValueError as exc:
                raise RecordingError(f"--at: {exc}") from None
        if settings.once:
            from pgtop.once import print_once

            try:
                return await print_once(source, settings.once, settings.output_format)
            except PollError as exc:
                raise RecordingError(str(exc)) from None
        if not (sys.stdout.isatty() and sys.stdin.isatty()):
            raise RecordingError(
                "the replay's interface needs a terminal; use --once TAB --at TIME or --info"
            )
        from pgtop.player import ReplayApp

        return await run_app(ReplayApp(settings, source, str(path)))
    finally:
        recording.close()


def info(recording: Recording, path: Path, output_format: str) -> str:
    """What ``--info`` prints: the server, the time span, the readings and the gaps."""
    from pgtop.formats import duration, size

    entries = recording.entries
    zone = recording.when(0).tzinfo

    def at(index: int | None) -> datetime | None:
        return None if index is None else datetime.fromtimestamp(entries[index].at, zone)

    first, last = recording.when(0), recording.when(len(entries) - 1)
    caps = recording.activity(0).capabilities
    seconds = entries[-1].at - entries[0].at
    tabs = recording.tab_counts()
    gaps = [
        {
            "from": at(gap.after),
            "to": at(gap.until),
            "seconds": (
                entries[gap.until].at - entries[gap.after].at
                if gap.after is not None and gap.until is not None
                else None
            ),
            "reason": gap.reason,
        }
        for gap in recording.gaps
    ]
    if output_format == "json":
        document = {
            "file": str(path),
            "bytes": path.stat().st_size,
            "format": int(recording.meta.get("version", "0")),
            "made_by": recording.meta.get("made"),
            "server": recording.meta.get("server"),
            "server_version": caps.server_version,
            "first": first,
            "last": last,
            "seconds": seconds,
            "readings": len(entries),
            "tabs": tabs,
            "gaps": gaps,
        }
        return json.dumps(document, default=_iso) + "\n"
    server = one_line(recording.meta.get("server", ""), 200)
    lines = [
        f"file      {path} ({size(path.stat().st_size)})",
        f"server    {server}, PostgreSQL {one_line(caps.server_version.split(' ')[0], 20)}",
        f"from      {first:%Y-%m-%d %H:%M:%S %z}",
        f"to        {last:%Y-%m-%d %H:%M:%S %z} ({duration(seconds)})",
        "readings  " + ", ".join([str(len(entries))] + [f"{t} {n}" for t, n in tabs.items()]),
    ]
    if not recording.gaps:
        lines.append("gaps      none")
    for gap in recording.gaps:
        start, end = at(gap.after), at(gap.until)
        begun = f"{start:%H:%M:%S}" if start else "the start"
        ended = f"{end:%H:%M:%S}" if end else "the end"
        lasted = f" ({duration((end - start).total_seconds())})" if start and end else ""
        lines.append(f"gap       {begun} to {ended}{lasted}: {one_line(gap.reason, 300)}")
    return "\n".join(lines) + "\n"


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
