"""Settings from the command line and the config file, and where pgtop keeps its files."""

from __future__ import annotations

import math
import os
import sys
import tempfile
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
TABS = ("activity", "locks", "queries", "tables", "vacuum", "indexes")


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


@dataclass(frozen=True, slots=True)
class FileConfig:
    """What the config file says, after validation."""

    values: dict[str, Any]
    warnings: tuple[str, ...] = ()


_FILE_KEYS: dict[str, tuple[type, ...]] = {
    "refresh": (int, float),
    "read_only": (bool,),
    "action_lock_timeout": (int, float),
}


def load_file_config(path: Path | None = None) -> FileConfig:
    """Read the config file. A broken file gives warnings and defaults; it is never rewritten.

    Args:
        path: the file to read; the user's config file when None.
    """
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return FileConfig({})
    except IsADirectoryError:
        return FileConfig({}, (f"config file {path} is a directory; using defaults",))
    except OSError as exc:
        return FileConfig({}, (f"cannot read config file {path}: {exc.strerror}; using defaults",))
    try:
        data = tomllib.loads(raw.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        return FileConfig({}, (f"config file {path} is not valid TOML ({exc}); using defaults",))

    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in data.items():
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
        else:
            values[key] = value
    refresh = values.get("refresh")
    if refresh is not None and refresh < MIN_REFRESH:
        warnings.append(f"config file {path}: refresh below {MIN_REFRESH}s; using {MIN_REFRESH}")
        values["refresh"] = MIN_REFRESH
    return FileConfig(values, tuple(warnings))


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


def write_crash_log(error: BaseException, secrets: Sequence[str | None] = ()) -> Path | None:
    """Write a traceback (no local variables, no passwords) to the log folder."""
    from pgtop import __version__
    from pgtop.pg import redact_text

    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    text = redact_text(text, secrets)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = log_dir() / f"crash-{stamp}-{os.getpid()}.log"
    try:
        append_private(path, f"pgtop {__version__} crashed at {stamp}\n{text}")
    except OSError:
        return None
    return path
