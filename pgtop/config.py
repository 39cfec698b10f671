"""Settings from the command line and the config file, and where pgtop keeps its files."""

from __future__ import annotations

import math
import os
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import platformdirs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

APP_NAME = "pgtop"
MIN_REFRESH = 0.5
DEFAULT_REFRESH = 2.0


def config_path() -> Path:
    """The user's config file (it may not exist)."""
    override = os.environ.get("PGTOP_CONFIG")
    if override:
        return Path(override)
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def log_dir() -> Path:
    """Folder for the action log and crash logs."""
    override = os.environ.get("PGTOP_LOG_DIR")
    if override:
        return Path(override)
    return platformdirs.user_log_path(APP_NAME)


def data_dir() -> Path:
    """Folder for what pgtop keeps for the user: recordings written from the interface."""
    override = os.environ.get("PGTOP_DATA_DIR")
    if override:
        return Path(override)
    return platformdirs.user_data_path(APP_NAME)


def state_dir() -> Path:
    """Folder for what pgtop keeps between two moments of a run: the copy file."""
    override = os.environ.get("PGTOP_STATE_DIR")
    if override:
        return Path(override)
    return platformdirs.user_state_path(APP_NAME)


def copy_file_path() -> Path:
    """Where a copied text is also written, for terminals that ignore OSC 52."""
    return state_dir() / "copy" / "copied.txt"


def write_copy_file(text: str) -> Path:
    """Write a copied text to the copy file: 0600, in a 0700 folder (made so if it was
    not), replaced at each copy so only the last one stays on disk."""
    path = copy_file_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    write_private(path, text)
    return path


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When each Health check turns ``warn`` and ``crit`` (the config file's ``[health]``
    table, keys ``<name>_warn`` and ``<name>_crit``). Units are in each name's comment."""

    connections: tuple[float, float] = (80.0, 95.0)
    """Percent of the connection slots open to ordinary roles."""
    application_slots: tuple[float, float] = (50.0, 75.0)
    """Percent of the connection slots open to ordinary roles that one application holds."""
    idle_in_transaction: tuple[float, float] = (60.0, 600.0)
    """Seconds a session has been idle in a transaction."""
    lock_wait: tuple[float, float] = (10.0, 60.0)
    """Seconds a statement waiting on a lock has been running."""
    long_transaction: tuple[float, float] = (300.0, 3600.0)
    """Seconds the oldest transaction has been open."""
    wraparound: tuple[float, float] = (20.0, 50.0)
    """Percent of the way to transaction ID (or multixact) wraparound, over every database;
    only once past the server's own autovacuum_(multixact_)freeze_max_age."""
    slot_retained: tuple[float, float] = (50.0, 100.0)
    """WAL a replication slot keeps, in percent of max_wal_size (an inactive slot is at
    least ``warn``; ``wal_status`` unreserved or lost is ``crit``)."""
    replication_lag: tuple[float, float] = (30.0, 300.0)
    """Seconds a standby's replay is behind."""
    requested_checkpoints: tuple[float, float] = (50.0, 90.0)
    """Percent of the checkpoints of the last minutes forced by WAL volume (or asked for)."""
    temp_files: tuple[float, float] = (100.0, 1000.0)
    """MiB of temporary files written per minute."""
    deadlocks: tuple[float, float] = (1.0, 10.0)
    """Deadlocks per minute."""
    rollbacks: tuple[float, float] = (10.0, 50.0)
    """Percent of the transactions of the last minutes rolled back."""
    cache_hit: tuple[float, float] = (95.0, 90.0)
    """Percent of block reads served from shared buffers (lower is worse)."""
    invalid_indexes: tuple[float, float] = (1.0, 1000.0)
    """Invalid indexes in the connected database."""
    vacuum_backlog: tuple[float, float] = (600.0, 3600.0)
    """Seconds a table has had more dead rows than its autovacuum trigger."""
    xmin_horizon: tuple[float, float] = (1800.0, 7200.0)
    """Seconds the xmin horizon has been held back by the same holder."""
    statement_slowdown: tuple[float, float] = (5.0, 20.0)
    """How many times its lifetime mean a statement's mean time of the last minutes is."""
    pooler_wait: tuple[float, float] = (1.0, 10.0)
    """Seconds the client of a PgBouncer that has waited longest has waited for a server."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)

    def of(self, name: str) -> tuple[float, float]:
        value: tuple[float, float] = getattr(self, name)
        return value


_LOWER_IS_WORSE = frozenset({"cache_hit"})


def parse_thresholds(table: object, where: str) -> tuple[Thresholds, list[str]]:
    """The ``[health]`` table of the config file: thresholds, and warnings for what was
    ignored (a threshold kept at its default)."""
    if not isinstance(table, dict):
        return Thresholds(), [f"{where}: [health] must be a table of thresholds"]
    defaults = Thresholds()
    chosen = {name: list(defaults.of(name)) for name in Thresholds.names()}
    warnings: list[str] = []
    for key, value in table.items():
        name, _, level = str(key).rpartition("_")
        if name not in chosen or level not in ("warn", "crit"):
            warnings.append(f"{where}: unknown health threshold {key!r} ignored")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            warnings.append(f"{where}: health {key} must be a number; using the default")
        elif not math.isfinite(value) or value < 0:
            warnings.append(
                f"{where}: health {key} must be a finite number >= 0; using the default"
            )
        else:
            chosen[name][0 if level == "warn" else 1] = float(value)
    values: dict[str, tuple[float, float]] = {}
    for name, (warn, crit) in chosen.items():
        wrong = crit > warn if name in _LOWER_IS_WORSE else crit < warn
        if wrong:
            warnings.append(
                f"{where}: health {name}_crit is milder than {name}_warn; using the defaults"
            )
            warn, crit = defaults.of(name)
        values[name] = (warn, crit)
    return Thresholds(**values), warnings


@dataclass(frozen=True, slots=True)
class ServerProfile:
    """A server named in the config file (``[servers.NAME]``), or given on the command line."""

    name: str
    conninfo: str
    """libpq connection string (keywords, URI or ``service=NAME``), without a password."""
    read_only: bool = False
    """No action is offered on this server, whatever the others allow."""


def parse_profiles(table: object, where: str) -> tuple[tuple[ServerProfile, ...], list[str]]:
    """The ``[servers]`` tables of the config file: one profile per ``[servers.NAME]`` with
    ``conninfo`` or ``service`` and an optional ``read_only``; warnings for what was ignored."""
    if not isinstance(table, dict):
        return (), [f"{where}: [servers] must hold one table per server ([servers.NAME])"]
    profiles: list[ServerProfile] = []
    warnings: list[str] = []
    for name, entry in table.items():
        if not isinstance(entry, dict):
            warnings.append(f"{where}: servers.{name} must be a table; ignored")
            continue
        unknown = sorted(set(entry) - {"conninfo", "service", "read_only"})
        if unknown:
            warnings.append(f"{where}: servers.{name}: unknown keys {', '.join(unknown)} ignored")
        conninfo, service = entry.get("conninfo"), entry.get("service")
        read_only = entry.get("read_only", False)
        if (conninfo is None) == (service is None):
            warnings.append(f"{where}: servers.{name} needs conninfo or service (one); ignored")
        elif not isinstance(conninfo or service, str) or not isinstance(read_only, bool):
            warnings.append(f"{where}: servers.{name} has a value of the wrong type; ignored")
        else:
            chosen = conninfo if conninfo is not None else f"service={service}"
            profiles.append(ServerProfile(str(name), chosen, read_only))
    return tuple(profiles), warnings


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run of pgtop was asked to do."""

    conninfo: str = ""
    """libpq connection string (keywords or URI) without any password."""
    password: str | None = field(default=None, repr=False)
    """Password typed at the prompt; kept in memory only, never shown or written."""
    refresh: float = DEFAULT_REFRESH
    """Seconds between two polls of the Activity data."""
    read_only: bool = False
    """No action that changes the server is offered."""
    action_lock_timeout: float = 3.0
    """Seconds an action waits for its lock before it gives up."""
    once: str | None = None
    """Print one snapshot of this tab and exit."""
    output_format: str = "text"
    """``text`` or ``json`` for ``--once``."""
    demo: bool = False
    """Start a throwaway server with a synthetic incident and monitor it."""
    keymap: dict[str, str] = field(default_factory=dict)
    """Binding id to keys, passed to ``App.set_keymap``."""
    health: Thresholds = field(default_factory=Thresholds)
    """When the Health checks warn."""
    recorder_minutes: float = 30.0
    """Minutes of readings the flight recorder keeps in memory (0: none)."""
    recorder_megabytes: float = 64.0
    """Most memory the flight recorder's readings may take."""
    copy_to_file: bool = True
    """A copy also writes the copy file (``copy_file_path``): whether the terminal took the
    OSC 52 copy cannot be known."""
    profiles: tuple[ServerProfile, ...] = ()
    """The servers named in the config file, chosen with ``-S NAME`` or ``--all-servers``."""
    servers: tuple[ServerProfile, ...] = ()
    """The servers of this run when there are several (the Servers tab), or for ``--once
    servers``; empty: the one server of ``conninfo``."""


@dataclass(frozen=True, slots=True)
class FileConfig:
    """What the config file says, after validation."""

    values: dict[str, Any]
    warnings: tuple[str, ...] = ()


_FILE_KEYS: dict[str, tuple[type, ...]] = {
    "refresh": (int, float),
    "read_only": (bool,),
    "action_lock_timeout": (int, float),
    "recorder_minutes": (int, float),
    "recorder_megabytes": (int, float),
    "copy_to_file": (bool,),
}

MAX_REFRESH = 3600.0
_RANGES: dict[str, tuple[float, float, bool]] = {
    "refresh": (MIN_REFRESH, MAX_REFRESH, True),
    # 0 would switch off the lock timeout: an action would queue every session behind it.
    "action_lock_timeout": (0.0, 600.0, False),
    "recorder_minutes": (0.0, 1440.0, True),
    "recorder_megabytes": (1.0, 4096.0, True),
}
"""Allowed values of numeric settings: (low, high, whether low itself is allowed)."""


def load_file_config(path: Path | None = None) -> FileConfig:
    """Read the config file. A broken file gives warnings and defaults; it is never rewritten.

    Args:
        path: the file to read; the user's config file when None.
    """
    path = path or config_path()
    try:
        # Not a regular file (a FIFO, a device) would block or never end: not read at all.
        if not stat.S_ISREG(path.stat().st_mode):
            if path.is_dir():
                return FileConfig({}, (f"config file {path} is a directory; using defaults",))
            return FileConfig({}, (f"config file {path} is not a regular file; using defaults",))
        raw = path.read_bytes()
    except FileNotFoundError:
        return FileConfig({})
    except OSError as exc:
        return FileConfig({}, (f"cannot read config file {path}: {exc.strerror}; using defaults",))
    try:
        data = tomllib.loads(raw.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        return FileConfig({}, (f"config file {path} is not valid TOML ({exc}); using defaults",))

    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in data.items():
        if key == "health":
            values["health"], found = parse_thresholds(value, f"config file {path}")
            warnings.extend(found)
            continue
        if key == "servers":
            values["profiles"], found = parse_profiles(value, f"config file {path}")
            warnings.extend(found)
            continue
        if key == "keymap":
            if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                values["keymap"] = {str(k): v for k, v in value.items()}
            else:
                warnings.append(f"config file {path}: [keymap] must map names to key strings")
            continue
        expected = _FILE_KEYS.get(key)
        if expected is None:
            warnings.append(f"config file {path}: unknown setting {key!r} ignored")
        elif not isinstance(value, expected) or (bool in expected) != isinstance(value, bool):
            warnings.append(f"config file {path}: {key} has the wrong type; using the default")
        elif isinstance(value, float) and not math.isfinite(value):  # TOML has nan and inf
            warnings.append(f"config file {path}: {key} is not a finite number; using the default")
        elif key in _RANGES and not _in_range(value, *_RANGES[key]):
            low, high, low_ok = _RANGES[key]
            bound = "at least" if low_ok else "more than"
            warnings.append(
                f"config file {path}: {key} = {value} is out of range ({bound} {low:g}, at "
                f"most {high:g}); using the default"
            )
        else:
            values[key] = value
    return FileConfig(values, tuple(warnings))


def _in_range(value: object, low: float, high: float, low_ok: bool) -> bool:
    assert isinstance(value, (int, float))
    return (value >= low if low_ok else value > low) and value <= high


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_private(path: Path, line: str) -> None:
    """Append one line to a log file created private (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(line.rstrip("\n") + "\n")


CRASH_LOG_REPEAT_SECONDS = 600.0
"""The same error (type, message, place) is written to a crash log at most this often: an
error that recurs on every refresh must not fill the disk."""
_crash_logs: dict[tuple[str, ...], tuple[float, Path]] = {}


def _signature(error: BaseException) -> tuple[str, ...]:
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    first = str(error).strip().split("\n", 1)[0]
    return (type(error).__name__, first, where)


def write_crash_log(error: BaseException, secrets: Sequence[str | None] = ()) -> Path | None:
    """Write a traceback (no local variables, no passwords) to the log folder.

    The same error again within ``CRASH_LOG_REPEAT_SECONDS`` is not written again: the
    path of the log that holds it is returned.
    """
    from pgtop import __version__
    from pgtop.text import redact_text

    signature = _signature(error)
    now = time.monotonic()
    earlier = _crash_logs.get(signature)
    if earlier is not None and now - earlier[0] < CRASH_LOG_REPEAT_SECONDS:
        return earlier[1]
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    text = redact_text(text, secrets)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = log_dir() / f"crash-{stamp}-{os.getpid()}.log"
    try:
        append_private(path, f"pgtop {__version__} crashed at {stamp}\n{text}")
    except OSError:
        return None
    _crash_logs[signature] = (now, path)
    return path
