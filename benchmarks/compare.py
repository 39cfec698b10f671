"""pgtop against pg_activity, side by side, on the same throwaway server and load.

Run it from the repository root with the project's interpreter (pgtop installed)::

    python benchmarks/compare.py                          # default scenario, 60 s x 3 runs
    python benchmarks/compare.py --scenario connections   # 5,000 idle sessions shown
    python benchmarks/compare.py --scenario relations     # 50,000 tables = 100,000 relations
    python benchmarks/compare.py --scenario churn         # sessions come and go, 200x50
    python benchmarks/compare.py --idle 50 --tables 500 --duration 10 --runs 1 --max-wait 0

Options (a scenario sets the load options it does not get):

- ``--scenario default|connections|relations|churn``; ``--idle N --active N --tables N
  --chain N --idle-in-tx N --think MS``: the load (see ``load.py``). ``churn`` is the
  default load where the active sessions run short statements (20-200 ms) with 50 ms of
  idle time between two, so the set of sessions that are not idle changes on every
  refresh; with a chain of 4 sessions queued behind the blocker and 3 sessions idle in a
  transaction, in a 200x50 terminal, with 30 s windows;
- ``--refresh S`` (1): both monitors' refresh interval; ``--duration S`` (60, churn 30): the
  measurement window; ``--runs N`` (3): runs of each monitor, pgtop and pg_activity
  alternating; ``--presses N`` (30): sort keys pressed for the latency, plus N/3 pairs of
  tab switches; ``--catalog-window S`` (60); ``--size COLSxROWS`` (120x35, churn 200x50);
- ``--quiet-load L`` (1.0) and ``--max-wait S`` (1200): before every run, wait until the
  1-minute load average is below L, at most S seconds (``--max-wait 0`` for a smoke run);
- ``--json PATH``: every raw number; ``--save-output DIR``: everything each monitor wrote
  to its terminal; ``--profile DIR``: one more pgtop run, not measured, under
  ``py-spy record`` (collapsed stacks in DIR, hottest frames printed);
- ``--pgtop CMD``: the command that starts pgtop (``python -m pgtop`` with this
  interpreter); ``--no-pg-activity``: pgtop only; ``--venv DIR``: where pg_activity and
  py-spy are installed, ``~/.cache/pgtop-bench/venv`` by default, made on first use with
  ``python -m venv`` and ``pip install 'pg_activity[psycopg]'`` (pg_activity is no
  dependency of pgtop).

What happens:

1. A PostgreSQL 15 (the system's, ``pgtop.cluster``) starts in a temporary directory with
   ``pg_stat_statements.track = 'top'`` and enough ``max_connections``; database ``bench``
   gets the tables (``load.py setup``), and the load (``load.py hold``: idle, active,
   blocked and idle-in-transaction sessions, application names ``bench-*``) runs in a
   process of its own for the whole benchmark.
2. Each monitor runs in a real pseudo-terminal (``os.openpty``, ``TERM=xterm-256color``,
   size set with ``TIOCSWINSZ``, the pty made its controlling terminal by ``setsid -c``)
   as a login role of its own, ``bench_pgtop`` or ``bench_pgactivity`` (members of
   ``pg_monitor`` and ``pg_signal_backend``), connected over TCP to database ``bench``,
   with the same ``--refresh``. Everything the monitor writes is read from the pty master
   and counted. Both start from compiled bytecode, as installed programs do (cached in
   ``--venv``'s parent directory, outside the source tree, after one unmeasured launch of
   each). The pty answers the queries xterm answers (cursor position, device
   attributes, DEC mode reports) as a real terminal would: blessed, under pg_activity,
   waits 5 s for each unanswered cursor position report.
3. Measured per run:

   - *time to first data*: from launch to the arrival of the first output whose visible
     text (escape sequences removed) contains ``bench-active``, the application name of
     the active sessions; both monitors show it in their application column;
   - then 2 s to settle, then a window of ``--duration`` seconds over which are measured:
     *client CPU* (user + system of the monitor's process tree, psutil, as a percentage of
     one core), *terminal bytes per second* (bytes read from the pty master), and *server
     time per refresh* (the ``total_exec_time`` of pg_stat_statements summed over the
     monitor's role, delta over the window, divided by window / refresh; the refreshes
     actually seen, the calls of the monitor's most frequent statement, are shown too);
   - *peak memory*: the largest of the tree's RSS sampled every 0.25 s and the process's
     ``VmHWM``, over the whole run;
   - *key to screen* (pgtop only, after the window, with idle sessions shown): ``>`` (next
     sort column) pressed ``--presses`` times, then ``2``/``1`` (Locks / Activity). The
     time runs from writing the key to the pty to the end of the burst of output that
     shows the change: the status line's ``sort <column>`` naming the new column, the
     Locks status (``waiting on``), the Activity status (``sessions ·``); the burst ends
     at the first 10 ms without output.

   In the ``connections`` scenario pgtop gets ``i`` right after its first data, so the
   window measures it with every session shown (pg_activity never lists idle sessions).
4. ``relations``: besides the Activity runs, pgtop's Tables, Vacuum and Indexes tabs are
   shown in turn (``4``, ``5``, ``6``), each for ``--catalog-window`` seconds (60: one
   cycle of six collections at the catalog cadence of max(10 s, 5 refreshes), a read of
   the whole list and five of the rows on screen), and the server time of the statements
   that are not the Activity poll's is divided by the number of collections (the calls of
   the catalog header, which every collection runs once). The mean time of the tab's
   most expensive statement, the read of the whole list, is shown too.
5. A table of medians and pgtop / pg_activity ratios, and the targets that the scenario
   covers, with PASS or FAIL.

The load generator, the pty reader and the sampler use little CPU, but the machine runs
everything (server, load, monitor, this script) on the same cores: compare numbers taken
on one machine, with the load average printed next to each run.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import fcntl
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
import psycopg

from pgtop.cluster import Cluster, ClusterError, start_cluster, system_bindir

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_VENV = Path.home() / ".cache" / "pgtop-bench" / "venv"

LOAD = {"idle": 500, "active": 8, "tables": 20000, "chain": 3, "idle_in_tx": 1, "think": 0}
SCENARIOS: dict[str, dict[str, Any]] = {
    "default": LOAD,
    "connections": {**LOAD, "idle": 5000},
    "relations": {**LOAD, "tables": 50000},
    "churn": {**LOAD, "chain": 4, "idle_in_tx": 3, "think": 50, "size": "200x50", "duration": 30},
}
DEFAULTS: dict[str, Any] = {"size": "120x35", "duration": 60.0}
"""What a scenario may set besides the load, when it does not."""
SETTLE = 2.0
"""Seconds between the first data and the measurement window."""
QUIET = 0.010
"""A burst of output ends at the first gap this long."""
FIRST_DATA_TIMEOUT = 60.0
KEY_TIMEOUT = 5.0
DATA_MARKER = re.compile(r"bench-active")
SORT_MARKER = re.compile(r"sort ([a-z ]+?) [▲▼] \(< > r\)")
LOCKS_MARKER = re.compile(r"waiting on")
ACTIVITY_MARKER = re.compile(r"sessions · ")
IDLE_SHOWN_MARKER = re.compile(r"idle shown \(i\)")
CATALOG_HEADER_MARK = "AS block_size"
"""In the text of the statement every catalog collection runs once (queries.CATALOG_HEADER)."""
ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC
    rb"|\x1b[P^_][^\x1b]*(?:\x1b\\)?"  # DCS, PM, APC
    rb"|\x1b[()*+][0-9A-Za-z]"  # charset
    rb"|\x1b[@-Z\\-_=>78]"  # two-byte sequences
    rb"|[\x00-\x09\x0b-\x1f\x7f]"  # other controls
)


QUERIES = re.compile(rb"\x1b\[(?:[05]?n|6n|0?c|\?\d+\$p)")
"""Terminal queries a program may wait for an answer to."""


def reply(query: bytes) -> bytes:
    """What xterm answers: cursor position, status OK, VT220 attributes, mode unknown.

    blessed (pg_activity) waits 5 s for a cursor position report after its capability
    queries; a pty that answers nothing would add that to pg_activity's start-up.
    """
    if query.endswith(b"6n"):
        return b"\x1b[1;1R"
    if query.endswith(b"n"):
        return b"\x1b[0n"
    if query.endswith(b"c"):
        return b"\x1b[?62;22c"
    return b"\x1b[?" + query[3:-2] + b";0$y"


class BenchError(Exception):
    """The benchmark cannot go on; one line for the user."""


def say(text: str) -> None:
    print(text, flush=True)


def visible(raw: bytes) -> str:
    """The text a terminal would show, without escape sequences or controls."""
    return ESCAPES.sub(b"", raw).decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# A monitor in a pseudo-terminal
# ---------------------------------------------------------------------------


@dataclass
class Hit:
    index: int
    """Index of the output chunk in which the pattern appeared."""
    at: float
    """time.monotonic() when that chunk was read."""
    match: re.Match[str]


SCREEN_TOKENS = re.compile(
    r"\x1b\[([0-?]*)[ -/]*([@-~])"  # CSI: parameters, final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
    r"|\x1b[P^_][^\x1b]*\x1b\\"  # DCS, PM, APC
    r"|\x1b[()*+][0-9A-Za-z]|\x1b[@-Z\\-_=>78]"
    r"|([\r\n\b])|[\x00-\x1f\x7f]"
    r"|([^\x00-\x1f\x7f\x1b]+)"
)
INCOMPLETE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[P^_][^\x1b]*|[()*+])?\Z")


class ScreenModel:
    """What the terminal shows: enough of a terminal to follow a program that moves the
    cursor and writes text (cursor moves, erasures, CR, LF; styles ignored).

    A monitor that writes only the cells that changed never writes a whole status line
    again: what it shows is read here, not in the bytes it last wrote.
    """

    def __init__(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.cells = [[" "] * cols for _ in range(rows)]
        self.x = self.y = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pending = ""

    def text(self) -> str:
        return "\n".join("".join(line) for line in self.cells)

    def feed(self, data: bytes) -> None:
        text = self.pending + self.decoder.decode(data)
        tail = INCOMPLETE.search(text)
        self.pending = text[tail.start() :] if tail else ""
        if tail:
            text = text[: tail.start()]
        for match in SCREEN_TOKENS.finditer(text):
            params, final, control, chars = match.groups()
            if chars:
                self._write(chars)
            elif control:
                if control == "\r":
                    self.x = 0
                elif control == "\n":
                    self.y = min(self.rows - 1, self.y + 1)
                else:
                    self.x = max(0, self.x - 1)
            elif final:
                self._csi(params, final)

    def _csi(self, params: str, final: str) -> None:
        if params.startswith(("?", ">", "<", "=")):
            return  # private modes
        numbers = [int(n) if n.isdigit() else 0 for n in params.split(";")]
        first = numbers[0] or 1
        if final in "Hf":
            row = numbers[0] or 1
            col = numbers[1] if len(numbers) > 1 and numbers[1] else 1
            self.y, self.x = min(self.rows, row) - 1, min(self.cols, col) - 1
        elif final == "A":
            self.y = max(0, self.y - first)
        elif final == "B":
            self.y = min(self.rows - 1, self.y + first)
        elif final == "C":
            self.x = min(self.cols - 1, self.x + first)
        elif final == "D":
            self.x = max(0, self.x - first)
        elif final == "G":
            self.x = min(self.cols, first) - 1
        elif final == "K":
            line = self.cells[self.y]
            start, end = {0: (self.x, self.cols), 1: (0, self.x + 1)}.get(
                numbers[0], (0, self.cols)
            )
            line[start:end] = [" "] * (end - start)
        elif final == "J":
            below = range(self.y + 1, self.rows) if numbers[0] == 0 else range(self.rows)
            if numbers[0] == 0:
                self._csi("0", "K")
            for y in below:
                self.cells[y] = [" "] * self.cols

    def _write(self, chars: str) -> None:
        line = self.cells[self.y]
        for char in chars:
            wide = unicodedata.east_asian_width(char) in "WF"
            if self.x < self.cols:
                line[self.x] = char
            if wide and self.x + 1 < self.cols:
                line[self.x + 1] = ""
            self.x += 2 if wide else 1


@dataclass
class Watch:
    pattern: re.Pattern[str]
    since: int
    accept: Callable[[re.Match[str]], bool] | None
    hit: Hit | None = None


class Terminal:
    """A program in a pty of fixed size; a thread reads and timestamps all its output, and
    follows what the screen shows."""

    def __init__(self, argv: list[str], env: dict[str, str], cols: int, rows: int) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.started = time.monotonic()
        # setsid -c: a new session whose controlling terminal is the pty (no fork: the
        # pid is the program's).
        self.proc = subprocess.Popen(
            ["setsid", "-c", *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=ROOT,
            close_fds=True,
        )
        os.close(slave)
        self.master = master
        self.data = bytearray()
        self.marks: list[tuple[int, float]] = []
        """(end offset in data, arrival time) of every chunk read."""
        self.closed = False
        self.screen = ScreenModel(cols, rows)
        self.watches: list[Watch] = []
        self.cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            now = time.monotonic()
            replies = b"".join(reply(query) for query in QUERIES.findall(chunk))
            if replies:
                with contextlib.suppress(OSError):
                    os.write(self.master, replies)
            with self.cond:
                self.data += chunk
                self.marks.append((len(self.data), now))
                self.screen.feed(chunk)
                for watch in self.watches:
                    if watch.hit is None:
                        watch.hit = self._match(watch, len(self.marks) - 1)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def written(self) -> int:
        with self.cond:
            return len(self.data)

    def send(self, keys: bytes) -> tuple[int, float]:
        """Type ``keys``; the index of the next chunk and the time they were written."""
        with self.cond:
            index = len(self.marks)
        at = time.monotonic()
        os.write(self.master, keys)
        return index, at

    def _start(self, index: int) -> int:
        return self.marks[index - 1][0] if index > 0 else 0

    def _match(self, watch: Watch, index: int, screen: bool = True) -> Hit | None:
        """Chunk ``index`` shows the pattern: in the text it wrote, or (``screen``) on the
        screen it left."""
        end, at = self.marks[index]
        low = max(self._start(watch.since), self._start(index) - 512)
        texts = [visible(bytes(self.data[low:end]))]
        if screen:
            texts.append(self.screen.text())
        for text in texts:
            for match in watch.pattern.finditer(text):
                if watch.accept is None or watch.accept(match):
                    return Hit(index, at, match)
        return None

    def wait_for(
        self,
        pattern: re.Pattern[str],
        since: int,
        timeout: float,
        accept: Callable[[re.Match[str]], bool] | None = None,
    ) -> Hit | None:
        """The first chunk from index ``since`` on whose visible text, or the screen it
        leaves, shows ``pattern``."""
        deadline = time.monotonic() + timeout
        watch = Watch(pattern, since, accept)
        with self.cond:
            last = len(self.marks) - 1
            for index in range(since, last + 1):
                watch.hit = self._match(watch, index, screen=index == last)
                if watch.hit is not None:
                    return watch.hit
            self.watches.append(watch)
            try:
                while watch.hit is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self.closed:
                        return None
                    self.cond.wait(remaining)
                return watch.hit
            finally:
                self.watches.remove(watch)

    def burst_end(self, index: int) -> float:
        """Arrival of the last chunk of the burst holding chunk ``index``."""
        with self.cond:
            last = self.marks[index][1]
            while True:
                if index + 1 < len(self.marks):
                    following = self.marks[index + 1][1]
                    if following - last >= QUIET:
                        return last
                    index, last = index + 1, following
                    continue
                remaining = last + QUIET - time.monotonic()
                if remaining <= 0 or self.closed:
                    return last
                self.cond.wait(remaining)

    def last_match(self, pattern: re.Pattern[str]) -> str | None:
        with self.cond:
            text = visible(bytes(self.data[-20000:])) + "\n" + self.screen.text()
        found = pattern.findall(text)
        return found[-1] if found else None

    def tail(self, chars: int = 600) -> str:
        with self.cond:
            return " ".join(visible(bytes(self.data[-8000:])).split())[-chars:]

    def close(self) -> int | None:
        """Quit with ``q``; SIGTERM, then SIGKILL, if the program does not exit."""
        with contextlib.suppress(OSError):
            os.write(self.master, b"q")
        code: int | None = None
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
            try:
                code = self.proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        self._reader.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(self.master)
        return code


def process_tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_cpu(pid: int) -> float:
    """User + system seconds of the process tree (children already reaped included)."""
    total = 0.0
    for proc in process_tree(pid):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def peak_rss(pid: int) -> int:
    """VmHWM of the process, in bytes (0 when unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class MemorySampler(threading.Thread):
    """Largest RSS of a process tree, sampled every 0.25 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.25):
            rss = 0
            for proc in process_tree(self.pid):
                with contextlib.suppress(psutil.Error):
                    rss += proc.memory_info().rss
            self.peak = max(self.peak, rss)


# ---------------------------------------------------------------------------
# Server-side measurements
# ---------------------------------------------------------------------------

Statements = dict[int, tuple[str, int, float]]
"""queryid -> (text, calls, total_exec_time ms)."""


def statements(admin: psycopg.Connection[Any], role: str) -> Statements:
    rows = admin.execute(
        """
        SELECT s.queryid, min(s.query), sum(s.calls)::bigint, sum(s.total_exec_time)
        FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
        WHERE r.rolname = %s
        GROUP BY s.queryid
        """,
        (role,),
    ).fetchall()
    return {row[0]: (row[1], int(row[2]), float(row[3])) for row in rows}


def statement_delta(
    before: Statements, after: Statements, exclude: set[int] | None = None
) -> list[tuple[int, str, int, float]]:
    """(queryid, text, calls, ms) that ran between two readings, most expensive first."""
    out = []
    for queryid, (text, calls, ms) in after.items():
        if exclude and queryid in exclude:
            continue
        _, calls0, ms0 = before.get(queryid, ("", 0, 0.0))
        if calls > calls0:
            out.append((queryid, text, calls - calls0, ms - ms0))
    return sorted(out, key=lambda item: -item[3])


def short_sql(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass
class Run:
    monitor: str
    number: int
    load_average: float
    first_data_s: float = 0.0
    startup_cpu_s: float = 0.0
    cpu_percent: float = 0.0
    peak_rss_mib: float = 0.0
    bytes_per_s: float = 0.0
    window_s: float = 0.0
    server_ms_per_refresh: float = 0.0
    refreshes_expected: float = 0.0
    refreshes_seen: int = 0
    top_statements: list[tuple[str, int, float]] = field(default_factory=list)
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    latency_misses: int = 0


@dataclass
class CatalogRun:
    number: int
    load_average: float
    tabs: dict[str, dict[str, Any]] = field(default_factory=dict)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------


@dataclass
class Monitor:
    name: str
    role: str
    argv: list[str]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cols, self.rows = (int(n) for n in args.size.lower().split("x"))
        self.cluster: Cluster | None = None
        self.load: subprocess.Popen[str] | None = None
        self.admin: psycopg.Connection[Any] | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix="pgtop-bench-"))
        self.runs: list[Run] = []
        self.catalog_runs: list[CatalogRun] = []
        self.relations = 0
        self.profile_summary: list[str] = []
        self.saved = 0
        self.revision = revision()
        self.pg_activity_version = ""
        self.rng = random.Random(8)

    # -- set-up ------------------------------------------------------------------------------

    def conninfo(self, user: str) -> str:
        assert self.cluster is not None
        return self.cluster.conninfo("bench", user=user)

    def start_server(self) -> None:
        a = self.args
        bindir = system_bindir()
        if bindir is None:
            raise BenchError("no system PostgreSQL found (apt install postgresql-15)")
        connections = a.idle + a.active + a.chain + 1 + a.idle_in_tx + 60
        say(f"starting PostgreSQL from {bindir} (max_connections {connections})")
        self.cluster = start_cluster(
            bindir,
            settings={
                "max_connections": str(connections),
                "pg_stat_statements.track": "top",
                "pg_stat_statements.max": "10000",
                "shared_buffers": "256MB",
            },
            name="pgtop-bench",
        )
        cluster = self.cluster
        cluster.psql("CREATE DATABASE bench")
        cluster.psql(
            """
            CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
            CREATE ROLE bench_pgtop LOGIN;
            CREATE ROLE bench_pgactivity LOGIN;
            GRANT pg_monitor, pg_signal_backend TO bench_pgtop, bench_pgactivity;
            """,
            dbname="bench",
        )
        started = time.monotonic()
        say(f"creating {a.tables:,} tables")
        subprocess.run(
            [
                sys.executable,
                str(HERE / "load.py"),
                "setup",
                "--dsn",
                cluster.conninfo("bench"),
                "--tables",
                str(a.tables),
            ],
            check=True,
        )
        self.relations = int(
            cluster.psql(
                "SELECT count(*) FROM pg_class WHERE relkind IN ('r', 'i', 'p', 'I', 't')",
                dbname="bench",
            )
        )
        say(f"  {self.relations:,} relations in bench, {time.monotonic() - started:.0f}s")
        self.admin = psycopg.connect(cluster.conninfo("bench"), autocommit=True)

    def start_load(self) -> None:
        a = self.args
        assert self.cluster is not None
        say(
            f"opening sessions: {a.idle:,} idle, {a.active} active, chain {a.chain},"
            f" {a.idle_in_tx} idle in transaction, think time {a.think} ms"
        )
        started = time.monotonic()
        self.load = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "load.py"),
                "hold",
                "--dsn",
                self.cluster.conninfo("bench"),
                "--idle",
                str(a.idle),
                "--active",
                str(a.active),
                "--chain",
                str(a.chain),
                "--idle-in-tx",
                str(a.idle_in_tx),
                "--think",
                str(a.think),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.load.stdout is not None
        line = self.load.stdout.readline()
        if not line.startswith("ready"):
            raise BenchError(f"the load generator failed (exit {self.load.wait()})")
        assert self.admin is not None
        counts = self.admin.execute(
            "SELECT coalesce(application_name, ''), coalesce(state, ''), count(*)"
            " FROM pg_stat_activity WHERE application_name LIKE 'bench-%'"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        shown = ", ".join(f"{app} {state or '-'} {n}" for app, state, n in counts)
        say(f"  load ready in {time.monotonic() - started:.0f}s: {shown}")
        self.admin.execute("SELECT pg_stat_statements_reset()")

    def ensure_venv(self, with_py_spy: bool) -> Path:
        venv = Path(self.args.venv).expanduser()
        pip = venv / "bin" / "pip"
        if not (venv / "bin" / "pg_activity").exists():
            say(f"installing pg_activity into {venv}")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(pip), "install", "-q", "pg_activity[psycopg]"], check=True)
        if with_py_spy and not (venv / "bin" / "py-spy").exists():
            subprocess.run([str(pip), "install", "-q", "py-spy"], check=True)
        version = subprocess.run(
            [str(venv / "bin" / "pg_activity"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        self.pg_activity_version = version.stdout.strip() or "unknown"
        return venv

    def monitors(self, venv: Path) -> list[Monitor]:
        refresh = f"{self.args.refresh:g}"
        pgtop_dsn = self.conninfo("bench_pgtop")
        pg_activity_dsn = self.conninfo("bench_pgactivity")
        return [
            Monitor(
                "pgtop",
                "bench_pgtop",
                [*shlex.split(self.args.pgtop), "--refresh", refresh, "-w", pgtop_dsn],
            ),
            Monitor(
                "pg_activity",
                "bench_pgactivity",
                [str(venv / "bin" / "pg_activity"), "--refresh", refresh, pg_activity_dsn],
            ),
        ]

    def environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("PG", "TEXTUAL", "COLORTERM", "NO_COLOR", "COLUMNS", "LINES", "PYTHONDONTWRITE")
            )
        }
        # Both start as installed programs do, from compiled bytecode (a wheel install
        # compiles it; PYTHONDONTWRITEBYTECODE would make an editable pgtop compile every
        # module at every start), kept out of the source tree.
        env["PYTHONPYCACHEPREFIX"] = str(Path(self.args.venv).expanduser().parent / "pycache")
        home = self.tmp / "home"
        for sub in ("config", "data", "state", "cache"):
            (home / sub).mkdir(parents=True, exist_ok=True)
            env[f"XDG_{sub.upper()}_HOME"] = str(home / sub)
        env.update(TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        return env

    def warm_up(self, monitors: list[Monitor]) -> None:
        """Launch each monitor once, unmeasured, so its bytecode is compiled and cached."""
        for monitor in monitors:
            with self.launched(monitor):
                pass

    def wait_for_quiet_machine(self) -> float:
        a = self.args
        deadline = time.monotonic() + a.max_wait
        load = os.getloadavg()[0]
        while load >= a.quiet_load and time.monotonic() < deadline:
            say(f"  waiting: 1-minute load average {load:.2f} >= {a.quiet_load:g}")
            time.sleep(min(30.0, max(0.0, deadline - time.monotonic())))
            load = os.getloadavg()[0]
        if load >= a.quiet_load:
            say(f"  going on anyway after {a.max_wait:g}s: load average {load:.2f}")
        return load

    # -- one run of a monitor ----------------------------------------------------------------

    @contextlib.contextmanager
    def launched(self, monitor: Monitor) -> Iterator[tuple[Terminal, MemorySampler, Hit]]:
        term = Terminal(monitor.argv, self.environment(), self.cols, self.rows)
        sampler = MemorySampler(term.pid)
        sampler.start()
        try:
            hit = term.wait_for(DATA_MARKER, 0, FIRST_DATA_TIMEOUT)
            if hit is None:
                raise BenchError(f"{monitor.name} showed no data: …{term.tail()}")
            yield term, sampler, hit
        finally:
            sampler.peak = max(sampler.peak, peak_rss(term.pid))
            sampler.halt.set()
            code = term.close()
            if code not in (0, None):
                say(f"  {monitor.name} exited with {code}: …{term.tail(300)}")
            if self.args.save_output:
                directory = Path(self.args.save_output)
                directory.mkdir(parents=True, exist_ok=True)
                self.saved += 1
                name = f"{self.args.scenario}-{self.saved:02d}-{monitor.name}.out"
                (directory / name).write_bytes(bytes(term.data))

    def activity_run(self, monitor: Monitor, number: int, profile: Path | None = None) -> Run:
        a = self.args
        assert self.admin is not None
        run = Run(monitor.name, number, self.wait_for_quiet_machine())
        is_pgtop = monitor.name == "pgtop"
        with self.launched(monitor) as (term, sampler, hit):
            run.first_data_s = hit.at - term.started
            run.startup_cpu_s = tree_cpu(term.pid)
            idle_shown = False
            if is_pgtop and a.scenario == "connections":
                idle_shown = self.show_idle(term)
            time.sleep(SETTLE)
            spy = self.start_profiler(term.pid, profile) if profile else None
            before, cpu0, bytes0, t0 = self.reading(monitor, term)
            time.sleep(a.duration)
            after, cpu1, bytes1, t1 = self.reading(monitor, term)
            window = t1 - t0
            run.window_s = window
            run.cpu_percent = 100 * (cpu1 - cpu0) / window
            run.bytes_per_s = (bytes1 - bytes0) / window
            delta = statement_delta(before, after)
            run.refreshes_expected = window / a.refresh
            run.server_ms_per_refresh = sum(ms for *_, ms in delta) / run.refreshes_expected
            run.refreshes_seen = max((calls for _, _, calls, _ in delta), default=0)
            run.top_statements = [(short_sql(text), calls, ms) for _, text, calls, ms in delta[:6]]
            if is_pgtop and a.presses > 0:
                self.key_latency(term, run, idle_shown)
            if spy is not None:
                self.stop_profiler(spy, profile)
            sampler.peak = max(sampler.peak, peak_rss(term.pid))
            run.peak_rss_mib = sampler.peak / 2**20
        return run

    def show_idle(self, term: Terminal) -> bool:
        index, _ = term.send(b"i")
        if term.wait_for(IDLE_SHOWN_MARKER, index, 30.0) is None:
            say("  pgtop did not confirm 'idle shown (i)'")
            return False
        return True

    def key_latency(self, term: Terminal, run: Run, idle_shown: bool) -> None:
        """Sort keys, then tab switches: key written to end of the burst showing the change."""
        if not idle_shown:
            self.show_idle(term)
        time.sleep(1.0)
        current = term.last_match(SORT_MARKER)
        sorts: list[float] = []
        tabs: list[float] = []

        def press(key: bytes, pattern: re.Pattern[str], out: list[float]) -> re.Match[str] | None:
            time.sleep(self.rng.uniform(0.25, 0.6))
            index, at = term.send(key)
            accept = (lambda m: m.group(1) != current) if pattern is SORT_MARKER else None
            hit = term.wait_for(pattern, index, KEY_TIMEOUT, accept)
            if hit is None:
                run.latency_misses += 1
                return None
            out.append(1000 * (term.burst_end(hit.index) - at))
            return hit.match

        for _ in range(self.args.presses):
            match = press(b">", SORT_MARKER, sorts)
            current = match.group(1) if match is not None else term.last_match(SORT_MARKER)
        for _ in range(max(1, self.args.presses // 3)):
            press(b"2", LOCKS_MARKER, tabs)
            press(b"1", ACTIVITY_MARKER, tabs)
        run.latency_ms = {"sort": sorts, "tab": tabs}

    # -- the catalog tabs --------------------------------------------------------------------

    def reading(self, monitor: Monitor, term: Terminal) -> tuple[Statements, float, int, float]:
        """The monitor's statements, its process tree's CPU seconds, the bytes it wrote, and
        the time: the two ends of a measurement window."""
        assert self.admin is not None
        return (
            statements(self.admin, monitor.role),
            tree_cpu(term.pid),
            term.written(),
            time.monotonic(),
        )

    def catalog_run(self, monitor: Monitor, number: int, profile: Path | None = None) -> CatalogRun:
        a = self.args
        assert self.admin is not None
        result = CatalogRun(number, self.wait_for_quiet_machine())
        start = statements(self.admin, monitor.role)
        with self.launched(monitor) as (term, _sampler, _hit):
            time.sleep(SETTLE + a.refresh)
            activity = {q for q, *_ in statement_delta(start, statements(self.admin, monitor.role))}
            spy = self.start_profiler(term.pid, profile) if profile else None
            for key, tab in ((b"4", "tables"), (b"5", "vacuum"), (b"6", "indexes")):
                before, cpu0, bytes0, t0 = self.reading(monitor, term)
                term.send(key)
                time.sleep(a.catalog_window)
                after, cpu1, bytes1, t1 = self.reading(monitor, term)
                delta = statement_delta(before, after, exclude=activity)
                # Every collection reads the catalog header once. (Exact sizes for the rows
                # on screen are read more often.)
                collections = sum(c for _, text, c, _ in delta if CATALOG_HEADER_MARK in text)
                server_ms = sum(ms for *_, ms in delta)
                costliest = max((ms / c for _, _, c, ms in delta), default=None)
                window = t1 - t0
                result.tabs[tab] = {
                    "collections": collections,
                    "server_ms_per_collection": server_ms / collections if collections else None,
                    "costliest_statement_ms": costliest,
                    "client_cpu_percent": 100 * (cpu1 - cpu0) / window,
                    "bytes_per_s": (bytes1 - bytes0) / window,
                    "statements": [
                        (short_sql(text), calls, ms / calls) for _, text, calls, ms in delta[:6]
                    ],
                }
                term.send(b"1")
                time.sleep(SETTLE)
            if spy is not None:
                self.stop_profiler(spy, profile)
        return result

    # -- profiling ---------------------------------------------------------------------------

    def start_profiler(self, pid: int, path: Path | None) -> subprocess.Popen[bytes]:
        assert path is not None
        venv = Path(self.args.venv).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [
                *(str(venv / "bin" / "py-spy"), "record", "--pid", str(pid), "--rate", "100"),
                *("--format", "raw", "--nonblocking", "--output", str(path)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_profiler(self, spy: subprocess.Popen[bytes], path: Path | None) -> None:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
        if path is not None and path.exists():
            self.profile_summary += summarize_profile(path)

    # -- everything --------------------------------------------------------------------------

    def run(self) -> None:
        a = self.args
        venv = self.ensure_venv(with_py_spy=bool(a.profile))
        self.start_server()
        self.start_load()
        pgtop, pg_activity = self.monitors(venv)
        self.warm_up([pgtop, pg_activity] if a.pg_activity else [pgtop])
        for number in range(1, a.runs + 1):
            for monitor in (pgtop, pg_activity) if a.pg_activity else (pgtop,):
                say(f"run {number}/{a.runs}: {monitor.name}")
                run = self.activity_run(monitor, number)
                self.runs.append(run)
                say("  " + describe_run(run))
        if a.scenario == "relations":
            for number in range(1, a.runs + 1):
                say(f"catalog run {number}/{a.runs}: pgtop tabs 4, 5, 6")
                catalog = self.catalog_run(pgtop, number)
                self.catalog_runs.append(catalog)
                for tab, numbers in catalog.tabs.items():
                    say(f"  {tab}: {describe_catalog(numbers)}")
        if a.profile:
            directory = Path(a.profile)
            path = directory / f"pgtop-{a.scenario}.txt"
            say(f"profiling pgtop (not measured): py-spy record -> {path}")
            if a.scenario == "relations":
                self.catalog_run(pgtop, 0, profile=path)
            else:
                self.activity_run(pgtop, 0, profile=path)

    def close(self) -> None:
        if self.load is not None:
            with contextlib.suppress(OSError):
                assert self.load.stdin is not None
                self.load.stdin.close()
            try:
                self.load.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.load.kill()
        if self.admin is not None:
            with contextlib.suppress(psycopg.Error):
                self.admin.close()
        if self.cluster is not None:
            self.cluster.destroy()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------


def describe_run(run: Run) -> str:
    text = (
        f"load avg {run.load_average:.2f} · first data {run.first_data_s:.2f}s"
        f" (start-up CPU {run.startup_cpu_s:.2f}s) · CPU {run.cpu_percent:.1f}%"
        f" · peak {run.peak_rss_mib:.0f} MiB · {run.bytes_per_s:,.0f} B/s"
        f" · server {run.server_ms_per_refresh:.1f} ms/refresh"
        f" ({run.refreshes_seen} refreshes seen, {run.refreshes_expected:.0f} expected)"
    )
    for kind, values in run.latency_ms.items():
        if values:
            text += (
                f" · {kind} keys {median(values):.0f}/{percentile(values, 0.95):.0f} ms"
                f" (median/p95, n={len(values)})"
            )
    if run.latency_misses:
        text += f" · {run.latency_misses} keys without a visible change"
    return text


def describe_catalog(numbers: dict[str, Any]) -> str:
    per = numbers["server_ms_per_collection"]
    shown = f"{per:.1f} ms" if per is not None else "no collection"
    costliest = numbers.get("costliest_statement_ms")
    whole = f" (whole list {costliest:.0f} ms)" if costliest is not None else ""
    return (
        f"{numbers['collections']} collections · server {shown} per collection{whole}"
        f" · client CPU {numbers['client_cpu_percent']:.1f}%"
        f" · {numbers['bytes_per_s']:,.0f} B/s"
    )


def summarize_profile(path: Path, top: int = 25) -> list[str]:
    """The hottest frames of a py-spy raw (collapsed) profile: inclusive and self."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [short_frame(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    if not total:
        return [f"{path}: no samples"]
    lines = [f"profile {path}: {total} samples at 100 Hz (busy threads only)", "  inclusive:"]
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {100 * count / total:5.1f}%  {frame}")
    lines.append("  self:")
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {100 * count / total:5.1f}%  {frame}")
    return lines


def short_frame(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``, lines merged."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame.strip())
    if not match:
        return frame.strip()
    name, path = match.groups()
    parts = Path(path).parts
    where = "/".join(parts[-2:]) if "site-packages" in parts or "pgtop" in parts else parts[-1]
    return f"{name} ({where})"


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores, {model}, {memory:.0f} GiB, {platform.platform()}"


def revision() -> str:
    """The commit of the checkout measured, ``+changes`` when pgtop/ differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "pgtop"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" +changes" if dirty else "")


def ratio(a: float, b: float) -> str:
    if b == 0 or a != a or b != b:
        return "-"
    return f"{a / b:.2f}"


def report(bench: Bench) -> None:
    a = bench.args
    runs = bench.runs
    by = {name: [r for r in runs if r.monitor == name] for name in ("pgtop", "pg_activity")}

    def med(name: str, attr: str) -> float:
        return median([getattr(r, attr) for r in by[name]])

    say("")
    say(
        f"scenario {a.scenario}: {a.idle:,} idle, {a.active} active"
        + (f" (think time {a.think} ms)" if a.think else "")
        + f", chain {a.chain},"
        f" {a.idle_in_tx} idle in tx, {a.tables:,} tables ({bench.relations:,} relations);"
        f" refresh {a.refresh:g}s, window {a.duration:g}s, {a.runs} runs each,"
        f" terminal {a.size}"
    )
    say(f"machine: {machine()}")
    say(f"pgtop: {bench.revision}; pg_activity: {bench.pg_activity_version}")
    loads = [r.load_average for r in runs]
    if loads:
        say(
            f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; 1-minute load average"
            f" before the runs {min(loads):.2f}..{max(loads):.2f}"
        )
    say("")
    title = f"median of {a.runs} runs"
    header = f"{title:<38}{'pgtop':>12}{'pg_activity':>13}{'ratio':>8}"
    say(header)
    say("-" * len(header))
    rows = [
        ("time to first data (s)", "first_data_s", "{:.2f}"),
        ("client CPU (% of one core)", "cpu_percent", "{:.1f}"),
        ("peak memory (MiB)", "peak_rss_mib", "{:.0f}"),
        ("terminal output (bytes/s)", "bytes_per_s", "{:,.0f}"),
        ("server time per refresh (ms)", "server_ms_per_refresh", "{:.2f}"),
        ("refreshes seen in the window", "refreshes_seen", "{:.0f}"),
        ("start-up CPU until first data (s)", "startup_cpu_s", "{:.2f}"),
    ]
    for label, attr, fmt in rows:
        ours, theirs = med("pgtop", attr), med("pg_activity", attr)
        say(f"{label:<38}{fmt.format(ours):>12}{fmt.format(theirs):>13}{ratio(ours, theirs):>8}")
    latencies: dict[str, list[float]] = {}
    for r in by["pgtop"]:
        for kind, values in r.latency_ms.items():
            latencies.setdefault(kind, []).extend(values)
    every = [v for values in latencies.values() for v in values]
    for kind, values in [*latencies.items(), ("all", every)]:
        if values:
            label = f"key to screen, {kind} keys (ms)"
            shown = f"{median(values):.0f} / {percentile(values, 0.95):.0f}"
            say(f"{label:<38}{shown:>12}{'-':>13}{'':>8}   median / p95, n={len(values)}")
    misses = sum(r.latency_misses for r in by["pgtop"])
    if misses:
        say(f"  ({misses} keys showed no change within {KEY_TIMEOUT:g}s)")
    catalog: dict[str, list[dict[str, Any]]] = {}
    for c in bench.catalog_runs:
        for tab, numbers in c.tabs.items():
            catalog.setdefault(tab, []).append(numbers)
    for tab, results in catalog.items():
        values = [n["server_ms_per_collection"] for n in results if n["server_ms_per_collection"]]
        cpu = [n["client_cpu_percent"] for n in results]
        whole = [n["costliest_statement_ms"] for n in results if n.get("costliest_statement_ms")]
        label = f"{tab} tab: server ms per collection"
        say(
            f"{label:<38}{median(values):>12.1f}{'-':>13}{'':>8}   client CPU {median(cpu):.1f}%"
            + (f", whole list {median(whole):.0f} ms" if whole else "")
        )

    say("")
    say("server statements per window (last run of each monitor): calls, total ms")
    for name in ("pgtop", "pg_activity"):
        if by[name]:
            say(f"  {name}:")
            for text, calls, ms in by[name][-1].top_statements:
                say(f"    {calls:>5} {ms:>9.1f}  {text}")
    for tab, results in catalog.items():
        say(f"  pgtop {tab} tab (last run): calls, mean ms")
        for text, calls, ms in results[-1]["statements"]:
            say(f"    {calls:>5} {ms:>9.1f}  {text}")

    say("")
    say("targets")
    p = {attr: med("pgtop", attr) for _, attr, _ in rows}
    q = {attr: med("pg_activity", attr) for _, attr, _ in rows}
    checks: list[tuple[str, bool, str]] = [
        (
            "server time per Activity refresh <= 1/10 of pg_activity's",
            p["server_ms_per_refresh"] <= q["server_ms_per_refresh"] / 10,
            f"{p['server_ms_per_refresh']:.2f} vs {q['server_ms_per_refresh']:.2f} ms",
        ),
        (
            "terminal bytes per second <= pg_activity's",
            p["bytes_per_s"] <= q["bytes_per_s"],
            f"{p['bytes_per_s']:,.0f} vs {q['bytes_per_s']:,.0f} B/s",
        ),
        (
            "time to first data < 0.6 s",
            p["first_data_s"] < 0.6,
            f"{p['first_data_s']:.2f} s",
        ),
        (
            "peak memory < 2x pg_activity's",
            p["peak_rss_mib"] < 2 * q["peak_rss_mib"],
            f"{p['peak_rss_mib']:.0f} vs {q['peak_rss_mib']:.0f} MiB",
        ),
    ]
    if a.scenario == "default":
        checks.append(
            (
                "client CPU at the default load <= 2x pg_activity's",
                p["cpu_percent"] <= 2 * q["cpu_percent"],
                f"{p['cpu_percent']:.1f} vs {q['cpu_percent']:.1f} %",
            )
        )
    if a.scenario == "churn":
        checks += [
            (
                "terminal bytes per second with sessions coming and going <= 1/2 of pg_activity's",
                p["bytes_per_s"] <= q["bytes_per_s"] / 2,
                f"{p['bytes_per_s']:,.0f} vs {q['bytes_per_s']:,.0f} B/s",
            ),
            (
                "client CPU with sessions coming and going <= pg_activity's",
                p["cpu_percent"] <= q["cpu_percent"],
                f"{p['cpu_percent']:.1f} vs {q['cpu_percent']:.1f} %",
            ),
            (
                "time to first data <= 0.4 s",
                p["first_data_s"] <= 0.4,
                f"{p['first_data_s']:.2f} s",
            ),
        ]
    if a.scenario == "connections":
        checks.append(
            (
                "client CPU with every session shown <= pg_activity's",
                p["cpu_percent"] <= q["cpu_percent"],
                f"{p['cpu_percent']:.1f} vs {q['cpu_percent']:.1f} %",
            )
        )
        checks.append(
            (
                f"client CPU with {a.idle:,} idle rows shown < 10 % of one core",
                p["cpu_percent"] < 10,
                f"{p['cpu_percent']:.1f} %",
            )
        )
        if every:
            checks.append(
                (
                    f"key to screen with {a.idle:,} rows: median < 50 ms, p95 < 100 ms",
                    median(every) < 50 and percentile(every, 0.95) < 100,
                    f"{median(every):.0f} / {percentile(every, 0.95):.0f} ms",
                )
            )
    for tab, results in catalog.items():
        values = [n["server_ms_per_collection"] for n in results if n["server_ms_per_collection"]]
        checks.append(
            (
                f"{tab} at {bench.relations:,} relations: < 250 ms server time per refresh",
                bool(values) and median(values) < 250,
                f"{median(values):.1f} ms",
            )
        )
    for label, ok, shown in checks:
        if "nan" in shown:
            continue  # a ratio to pg_activity, which did not run
        say(f"  {'PASS' if ok else 'FAIL'}  {label}: {shown}")
    for line in bench.profile_summary:
        say(line)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark pgtop against pg_activity on a throwaway PostgreSQL.",
        epilog="See the module docstring (benchmarks/compare.py) for what is measured.",
    )
    add = parser.add_argument
    add("--scenario", choices=tuple(SCENARIOS), default="default", help="the load's defaults")
    for name, what in (
        ("idle", "idle sessions"),
        ("active", "sessions running pg_sleep-punctuated queries"),
        ("tables", "tables (two relations each)"),
        ("chain", "sessions queued behind one row lock"),
        ("idle-in-tx", "sessions idle in a transaction"),
        ("think", "milliseconds between two short statements of an active session"),
    ):
        add(f"--{name}", type=int, default=None, metavar="N", help=f"{what} (from the scenario)")
    add("--refresh", type=float, default=1.0, metavar="S", help="refresh interval (1)")
    add("--duration", type=float, default=None, metavar="S", help="measurement window (60)")
    add("--runs", type=int, default=3, metavar="N", help="runs of each monitor (3)")
    add("--presses", type=int, default=30, metavar="N", help="sort keys for the latency (30)")
    add("--catalog-window", type=float, default=60.0, metavar="S", help="per catalog tab (60)")
    add("--size", default=None, metavar="COLSxROWS", help="terminal size (120x35)")
    add("--max-wait", type=float, default=1200.0, metavar="S", help="wait for a quiet machine")
    add("--quiet-load", type=float, default=1.0, metavar="L", help="quiet: load average < L")
    add("--venv", default=str(DEFAULT_VENV), metavar="DIR", help="pg_activity's venv")
    add("--json", default=None, metavar="PATH", help="write every raw number")
    add("--profile", default=None, metavar="DIR", help="one more pgtop run under py-spy")
    add("--save-output", default=None, metavar="DIR", help="keep the monitors' output")
    add("--pgtop", default=f"{shlex.quote(sys.executable)} -m pgtop", metavar="CMD")
    add("--no-pg-activity", dest="pg_activity", action="store_false", help="pgtop only")
    args = parser.parse_args(argv)
    for key, value in {**DEFAULTS, **SCENARIOS[args.scenario]}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    try:
        bench.run()
    except (BenchError, ClusterError) as exc:
        say(f"benchmark failed: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        bench.close()
    report(bench)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "machine": machine(),
                    "pgtop": bench.revision,
                    "pg_activity": bench.pg_activity_version,
                    "date": datetime.now(timezone.utc).isoformat(),
                    "relations": bench.relations,
                    "runs": [asdict(r) for r in bench.runs],
                    "catalog_runs": [asdict(c) for c in bench.catalog_runs],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
