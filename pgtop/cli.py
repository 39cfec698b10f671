"""Command line: parse arguments like psql, connect before the UI starts, run.

Every failure a user can cause ends in one line on stderr and a documented exit code;
an unexpected error restores the terminal, writes a crash log and says where it is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import math
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pgtop import __version__, flight
from pgtop.config import (
    DEFAULT_REFRESH,
    MAX_REFRESH,
    MIN_REFRESH,
    ServerProfile,
    Settings,
    load_file_config,
    write_crash_log,
)
from pgtop.reports import POOLER_REPORTS, REPORTS, SERVER_REPORTS
from pgtop.text import redact_text

if TYPE_CHECKING:
    import psycopg

    from pgtop.app import PgTopApp
    from pgtop.model import Capabilities
    from pgtop.source import Source

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
"""As a program killed by SIGPIPE: the reader of the output went away."""


class UsageError(Exception):
    """Bad arguments; the message is one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse prints usage and exits; we want one line
        raise UsageError(message)


def _refresh(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}")
    if not MIN_REFRESH <= seconds <= MAX_REFRESH:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_REFRESH:g} and {MAX_REFRESH:g} seconds"
        )
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pgtop",
        description="A keyboard-driven terminal UI for PostgreSQL incident triage.",
        add_help=False,  # -h is the host, as in psql
        epilog=(
            "Anything not given is left to libpq: PGHOST, PGPORT, PGUSER, PGDATABASE, "
            "PGSERVICE and the other PG* variables, service files and ~/.pgpass."
        ),
    )
    parser.add_argument(
        "conninfo",
        nargs="*",
        metavar="CONNINFO",
        help="libpq connection string ('host=db dbname=app'), URI (postgresql://...) or "
        "service=NAME; several: the Servers tab (0) shows them all",
    )
    conn = parser.add_argument_group("connection options")
    conn.add_argument("-h", "--host", help="server host or socket directory")
    conn.add_argument("-p", "--port", help="server port")
    conn.add_argument("-U", "--username", help="role to connect as")
    conn.add_argument("-d", "--dbname", help="database to connect to")
    pw = conn.add_mutually_exclusive_group()
    pw.add_argument("-w", "--no-password", action="store_true", help="never prompt for a password")
    pw.add_argument(
        "-W", "--password", action="store_true", help="prompt for a password before connecting"
    )
    servers = parser.add_argument_group("several servers")
    servers.add_argument(
        "-S",
        "--server",
        action="append",
        dest="servers",
        metavar="NAME",
        help="a server of the config file ([servers.NAME]); repeatable",
    )
    servers.add_argument(
        "--all-servers", action="store_true", help="every server of the config file"
    )
    opts = parser.add_argument_group("options")
    opts.add_argument(
        "--refresh",
        type=_refresh,
        metavar="SECONDS",
        help=f"seconds between refreshes (default {DEFAULT_REFRESH:g}, minimum {MIN_REFRESH:g})",
    )
    opts.add_argument(
        "--read-only", action="store_true", help="offer no action that changes the server"
    )
    opts.add_argument(
        "--demo",
        action="store_true",
        help="start a throwaway PostgreSQL with a synthetic incident and monitor it",
    )
    opts.add_argument(
        "--once",
        metavar="TAB",
        help=f"print one snapshot of TAB and exit ({', '.join(REPORTS)})",
    )
    opts.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        dest="output_format",
        help="output format for --once and --info (default text)",
    )
    flight.add_arguments(parser)
    opts.add_argument("--version", action="version", version=f"pgtop {__version__}")
    opts.add_argument("-?", "--help", action="help", help="show this help and exit")
    return parser


def parse_settings(argv: Sequence[str]) -> tuple[Settings, argparse.Namespace, tuple[str, ...]]:
    """Arguments and config file into Settings, plus the config file's warnings."""
    args = build_parser().parse_args(argv)
    file_config = load_file_config()
    values = dict(file_config.values)
    if args.refresh is not None:
        values["refresh"] = args.refresh
    if args.read_only:
        values["read_only"] = True
    chosen = bool(args.servers or args.all_servers)
    if args.demo and (
        args.conninfo or args.host or args.port or args.dbname or args.username or chosen
    ):
        raise UsageError("--demo starts its own server: give no connection options with it")
    problem = flight.usage_problem(args)
    if problem:
        raise UsageError(problem)
    if args.once is not None and args.once not in REPORTS:
        raise UsageError(f"--once: no tab {args.once!r} (choose from {', '.join(REPORTS)})")
    servers = _servers(args, values.get("profiles", ()))
    if len(servers) > 1:
        if args.once not in (None, "servers"):
            raise UsageError(
                f"--once {args.once} reads one server: choose it with -S NAME "
                "(--once servers shows them all)"
            )
        if args.record or args.replay:
            raise UsageError("--record and --replay take one server")
    elif servers:
        values["read_only"] = values.get("read_only", False) or servers[0].read_only
    settings = Settings(
        conninfo=servers[0].conninfo if servers else "",
        once=args.once,
        output_format=args.output_format,
        demo=args.demo,
        servers=servers if len(servers) > 1 or args.once == "servers" else (),
        **values,
    )
    return settings, args, file_config.warnings


def _servers(
    args: argparse.Namespace, profiles: tuple[ServerProfile, ...]
) -> tuple[ServerProfile, ...]:
    """The servers asked for: the config file's chosen with -S (or all of them), then each
    CONNINFO given (-h, -p, -U, -d apply to those), or the one libpq's defaults name."""
    from pgtop.pg import build_conninfo, target

    chosen: list[ServerProfile] = []
    if args.all_servers:
        if not profiles:
            raise UsageError("--all-servers: the config file names no server ([servers.NAME])")
        chosen.extend(profiles)
    by_name = {profile.name: profile for profile in profiles}
    for name in args.servers or ():
        profile = by_name.get(name)
        if profile is None:
            known = ", ".join(by_name) or "none"
            raise UsageError(f"-S {name}: no [servers.{name}] in the config file (it has {known})")
        if profile not in chosen:
            chosen.append(profile)
    # A profile's string is checked as one given on the command line.
    chosen = [replace(profile, conninfo=build_conninfo(profile.conninfo)) for profile in chosen]
    options = (args.host, args.port, args.username, args.dbname)
    if chosen and not args.conninfo:
        if any(options):
            raise UsageError("-h, -p, -U and -d apply to a CONNINFO, not to a server of the config")
        return tuple(chosen)
    given = args.conninfo or [None]
    names = {profile.name for profile in chosen}
    for conninfo in given:
        built = build_conninfo(
            conninfo, host=args.host, port=args.port, user=args.username, dbname=args.dbname
        )
        name = base = target(built)
        number = 1
        while name in names:
            number += 1
            name = f"{base}#{number}"
        names.add(name)
        chosen.append(ServerProfile(name, built))
    return tuple(chosen)


def _prompt_password(conninfo: str) -> str | None:
    """Ask for a password on the terminal, without echo, as psql does."""
    from psycopg.conninfo import conninfo_to_dict

    if not sys.stdin.isatty():
        return None
    user = conninfo_to_dict(conninfo).get("user") or os.environ.get("PGUSER") or getpass.getuser()
    try:
        return getpass.getpass(f"Password for user {user}: ")
    except EOFError:
        return None


Monitor = tuple["psycopg.AsyncConnection[dict[str, Any]]", "Capabilities | None"]
"""The monitoring connection and what its role may do; None: a PgBouncer admin console."""


async def _open(conninfo: str, password: str | None) -> Monitor:
    """A PostgreSQL server's monitoring connection, or a PgBouncer console's."""
    from pgtop import pg

    try:
        conn = await pg.connect(conninfo, password)
    except pg.ConnectError as exc:
        if not exc.pooler:
            raise
        return await pg.connect_console(conninfo, password), None
    try:
        caps = await pg.probe(conn)
    except BaseException:
        await conn.close()
        raise
    return conn, caps


async def open_monitor(
    settings: Settings, args: argparse.Namespace
) -> tuple[psycopg.AsyncConnection[dict[str, Any]], Capabilities | None, Settings]:
    """Open the monitoring connection, prompting for a password when psql would. No
    capabilities: it is to a PgBouncer's admin console."""
    from pgtop import pg

    password = settings.password
    if args.password and password is None:
        password = _prompt_password(settings.conninfo)
    try:
        conn, caps = await _open(settings.conninfo, password)
    except pg.ConnectError as exc:
        if not (exc.password_needed and not args.no_password and password is None):
            raise
        password = _prompt_password(settings.conninfo)
        if password is None:
            raise
        conn, caps = await _open(settings.conninfo, password)
    return conn, caps, replace(settings, password=password)


def _report_refused(once: str, pooler: bool) -> str | None:
    """Why report ``once`` cannot be printed from this kind of server, or None."""
    if pooler and once not in POOLER_REPORTS:
        return (
            f"--once {once}: this is a PgBouncer admin console; it has "
            f"{', '.join(POOLER_REPORTS)} (point pgtop at PostgreSQL itself for {once})"
        )
    if not pooler and once not in SERVER_REPORTS:
        return (
            f"--once {once}: this is PostgreSQL, not a PgBouncer admin console (dbname=pgbouncer)"
        )
    return None


def fail(message: str, code: int) -> int:
    """Print one line to stderr (server text made visible) and return the exit code."""
    from pgtop.text import one_line

    print(f"pgtop: {one_line(message, 1000)}", file=sys.stderr)
    return code


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from pgtop import pg

    if args.replay:
        return await flight.replay(settings, args, run_app)
    if settings.servers:
        return await _run_servers(settings, args)
    demo = None
    try:
        if settings.demo:
            from pgtop.demo import Demo

            demo = await asyncio.to_thread(Demo.start)
            settings = replace(settings, conninfo=demo.conninfo, password=demo.password)
        interactive = (
            not (settings.once or args.record) and sys.stdout.isatty() and sys.stdin.isatty()
        )
        # The interface's modules load in a thread while this one connects and takes the
        # first snapshot: the server's work and the imports overlap.
        ui_loaded = (
            asyncio.ensure_future(asyncio.to_thread(_load_interface)) if interactive else None
        )
        conn, caps, settings = await open_monitor(settings, args)
        if args.record:
            if caps is None:
                await conn.close()
                return fail(
                    "--record reads PostgreSQL servers, not a PgBouncer console", pg.EXIT_USAGE
                )
            gc.enable()  # recording runs for hours
            return await flight.record(settings, conn, caps, args)
        from pgtop.source import LiveSource, PollError, PoolerSource
        from pgtop.tabs import collectors

        if settings.once:
            refused = _report_refused(settings.once, caps is None)
            if refused is not None:
                await conn.close()
                return fail(refused, pg.EXIT_USAGE)
            from pgtop.once import print_once

            once: Source
            if caps is None:
                once = PoolerSource(replace(settings, read_only=True), conn)
            else:
                from pgtop.collectors.activity import WHOLE_TEXT_LIMIT

                # Whole texts: one character more than is shown, to tell when one was cut.
                once = LiveSource(
                    replace(settings, read_only=True),
                    conn,
                    caps,
                    collectors=collectors(),
                    query_limit=WHOLE_TEXT_LIMIT + 1,
                )
            try:
                return await print_once(once, settings.once, settings.output_format)
            except PollError as exc:
                return fail(str(exc), pg.EXIT_UNREACHABLE)
            finally:
                await once.close()
        if ui_loaded is None:
            await conn.close()
            report = "pools" if caps is None else "TAB"
            return fail(
                f"the interactive view needs a terminal; use --once {report} for a snapshot",
                pg.EXIT_USAGE,
            )
        if caps is None:
            # A PgBouncer's console: read only, whatever was asked.
            pooler = PoolerSource(replace(settings, read_only=True), conn)
            return await _run_app(settings, pooler, ui_loaded)
        action_conn = None
        if not settings.read_only:
            # Opened now, while there are free slots, so actions work when none are left.
            from pgtop.actions import open_action_connection

            try:
                action_conn = await open_action_connection(settings.conninfo, settings.password)
            except pg.ConnectError as exc:
                print(f"pgtop: warning: no action connection yet ({exc})", file=sys.stderr)
        source = LiveSource(settings, conn, caps, collectors=collectors(), action_conn=action_conn)
        return await _run_app(settings, source, ui_loaded)
    finally:
        if demo is not None:
            await asyncio.to_thread(demo.stop)


async def _run_servers(settings: Settings, args: argparse.Namespace) -> int:
    """Several servers (or ``--once servers``): none is connected before the interface
    starts; each one's row says how it answers. The password asked for (-W) is tried on
    every server."""
    from pgtop.pg import EXIT_USAGE
    from pgtop.servers import ServerSet
    from pgtop.tabs import collectors

    if args.password and settings.password is None:
        settings = replace(settings, password=_prompt_password(settings.conninfo))
    servers = ServerSet(settings.servers, settings, collectors())
    if settings.once == "servers":
        from pgtop.once import print_once

        try:
            return await print_once(servers, "servers", settings.output_format)
        finally:
            await servers.close()
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        return fail(
            "the interactive view needs a terminal; use --once servers for a snapshot",
            EXIT_USAGE,
        )
    from pgtop.app import PgTopApp

    return await run_app(PgTopApp(settings, servers=servers))


async def _run_app(settings: Settings, source: Source, ui_loaded: asyncio.Future[None]) -> int:
    """Take the first snapshot while the interface loads, then run the interface."""
    from pgtop.source import PollError

    first = None
    with contextlib.suppress(PollError):  # the interface shows it, and retries
        first = await source.poll()
    await ui_loaded
    from pgtop.app import PgTopApp

    return await run_app(PgTopApp(settings, source=source, first_snapshot=first))


async def run_app(app: PgTopApp) -> int:
    """Run the interface; an unexpected error is one line and a crash log."""
    from pgtop import pg

    await app.run_async()
    if app.crash is not None:
        secrets = (app.settings.password,)
        path = write_crash_log(app.crash, secrets)
        where = f"; details in {path}" if path else ""
        reason = redact_text(pg.first_line(app.crash), secrets)
        return fail(f"unexpected error: {reason}{where}", EXIT_CRASH)
    return app.return_code or EXIT_OK


def _load_interface() -> None:
    import pgtop.app
    import pgtop.screens.main
    import pgtop.tabs  # noqa: F401


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pgtop`` command. Returns the exit code."""
    # Start-up makes hundreds of thousands of objects that live as long as pgtop (modules,
    # classes, widgets): looking for garbage among them as they are made is wasted time
    # on the way to the first data. The interface collects again once its first frame is
    # on screen, without looking at those (``PgTopApp.on_mount``).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _main(argv)
    finally:
        if collecting:
            gc.enable()


def _main(argv: Sequence[str] | None) -> int:
    from pgtop import pg
    from pgtop.output import OutputError
    from pgtop.recording import RecordingError
    from pgtop.sql import UnsupportedServerError

    try:
        settings, args, warnings = parse_settings(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        return fail(f"{exc} (see pgtop --help)", pg.EXIT_USAGE)
    except pg.ConnectError as exc:
        return fail(str(exc), exc.exit_code)
    for warning in warnings:
        print(f"pgtop: warning: {warning}", file=sys.stderr)
    # A closed terminal or a kill ends pgtop like Ctrl-C does: cleanly, with the demo's
    # server stopped and its data deleted. A signal ignored at start stays ignored: under
    # ``nohup``, a closed terminal does not stop pgtop.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _interrupt)
    try:
        return asyncio.run(_run(settings, args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except pg.ConnectError as exc:
        return fail(str(exc), exc.exit_code)
    except UnsupportedServerError as exc:
        return fail(str(exc), pg.EXIT_USAGE)
    except RecordingError as exc:
        return fail(str(exc), exc.exit_code)
    except OutputError as exc:
        # A reader that stopped reading (``| head``) is no error worth a line.
        return EXIT_BROKEN_PIPE if exc.broken_pipe else fail(str(exc), pg.EXIT_OUTPUT)
    except Exception as exc:
        from pgtop.demo import DemoError

        if isinstance(exc, DemoError):
            return fail(str(exc), pg.EXIT_UNREACHABLE)
        path = write_crash_log(exc, (settings.password,))
        where = f"; details in {path}" if path else ""
        with contextlib.suppress(Exception):
            reason = redact_text(pg.first_line(exc), (settings.password,))
            return fail(f"unexpected error: {reason}{where}", EXIT_CRASH)
        return EXIT_CRASH
