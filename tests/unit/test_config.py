"""The config file: a broken one warns, names itself and is never rewritten; private files.

pgtop must always start: whatever is wrong with the config file costs a warning on stderr
and the defaults, never a crash and never a silent change to the user's file.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgtop.cli import parse_settings
from pgtop.config import (
    DEFAULT_REFRESH,
    MIN_REFRESH,
    Settings,
    append_private,
    load_file_config,
    write_private,
)

#: Config files that are wrong in some way, and a word the warning must contain.
BROKEN = {
    "invalid-toml": (b"refresh = = 2\n[unterminated\n", "not valid TOML"),
    "refresh-string": (b'refresh = "fast"\n', "refresh"),
    "refresh-bool": (b"refresh = true\n", "refresh"),
    "refresh-nan": (b"refresh = nan\n", "refresh"),
    "refresh-inf": (b"refresh = inf\n", "refresh"),
    "read-only-int": (b"read_only = 1\n", "read_only"),
    "read-only-string": (b'read_only = "yes"\n', "read_only"),
    "unknown-key": (b"refersh = 3\n", "refersh"),
    "unknown-table": (b"[colors]\nbackground = 'red'\n", "colors"),
    "keymap-not-strings": (b"[keymap]\nquit = 1\n", "keymap"),
    "not-utf8": (b"refresh = \xff\xfe\n", "not valid TOML"),
}


def _snapshot(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, stat.S_IMODE(st.st_mode)


# -- load_file_config --------------------------------------------------------------------------


def test_missing_file_gives_defaults_without_warning(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    config = load_file_config(path)
    assert config.values == {}
    assert config.warnings == ()
    assert not path.exists()


def test_valid_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'refresh = 1\nread_only = true\naction_lock_timeout = 1.5\n[keymap]\nquit = "ctrl+q"\n'
    )
    before = _snapshot(path)
    config = load_file_config(path)
    assert config.warnings == ()
    assert config.values == {
        "refresh": 1,
        "read_only": True,
        "action_lock_timeout": 1.5,
        "keymap": {"quit": "ctrl+q"},
    }
    assert _snapshot(path) == before


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_file_warns_naming_it_and_is_left_alone(tmp_path: Path, case: str) -> None:
    content, mentions = BROKEN[case]
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # a clearly old mtime
    before = _snapshot(path)

    config = load_file_config(path)

    assert len(config.warnings) == 1, config.warnings
    warning = config.warnings[0]
    assert str(path) in warning
    assert mentions in warning
    assert "\n" not in warning
    assert "refresh" not in config.values
    assert "read_only" not in config.values
    assert _snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_good_settings_survive_a_bad_neighbour(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('refresh = 3\nread_only = 1\nnosuch = "x"\n')
    config = load_file_config(path)
    assert config.values == {"refresh": 3}
    assert len(config.warnings) == 2
    assert all(str(path) in warning for warning in config.warnings)


@pytest.mark.parametrize(
    "line",
    [
        "refresh = 0.1",
        "refresh = 1e308",
        "refresh = -2",
        "action_lock_timeout = -5",
        "action_lock_timeout = 0",
        "action_lock_timeout = 1e9",
    ],
)
def test_out_of_range_values_warn_and_use_the_default(tmp_path: Path, line: str) -> None:
    """-5 made every ANALYZE silently do nothing, 0 would switch the lock timeout off,
    1e308 froze the display."""
    path = tmp_path / "config.toml"
    path.write_text(f"{line}\nread_only = true\n")
    before = _snapshot(path)
    config = load_file_config(path)
    assert config.values == {"read_only": True}
    (warning,) = config.warnings
    assert str(path) in warning
    assert "out of range" in warning
    assert "using the default" in warning
    assert _snapshot(path) == before
    settings = Settings(**config.values)
    assert settings.refresh == DEFAULT_REFRESH
    assert settings.action_lock_timeout == Settings().action_lock_timeout


def test_in_range_values_are_taken(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"refresh = {MIN_REFRESH}\naction_lock_timeout = 0.5\n")
    assert load_file_config(path).values == {"refresh": MIN_REFRESH, "action_lock_timeout": 0.5}


@pytest.mark.timeout(10)
def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    """Reading a FIFO would hang start-up until someone writes to it."""
    path = tmp_path / "config.toml"
    os.mkfifo(path)
    config = load_file_config(path)
    assert config.values == {}
    (warning,) = config.warnings
    assert "not a regular file" in warning


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.mkdir()
    config = load_file_config(path)
    assert config.values == {}
    assert len(config.warnings) == 1
    assert str(path) in config.warnings[0]
    assert "directory" in config.warnings[0]
    assert path.is_dir()
    assert list(path.iterdir()) == []


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root reads files whatever their mode, so chmod 000 cannot make one unreadable",
)
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("refresh = 5\n")
    path.chmod(0)
    try:
        config = load_file_config(path)
        assert config.values == {}
        assert len(config.warnings) == 1
        assert str(path) in config.warnings[0]
        assert "cannot read" in config.warnings[0]
        assert stat.S_IMODE(path.stat().st_mode) == 0
    finally:
        path.chmod(0o600)
    assert path.read_text() == "refresh = 5\n"


def test_unreadable_path(tmp_path: Path) -> None:
    # A path through a regular file fails with ENOTDIR, as root too.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    path = blocker / "config.toml"
    config = load_file_config(path)
    assert config.values == {}
    assert len(config.warnings) == 1
    assert str(path) in config.warnings[0]
    assert "cannot read" in config.warnings[0]


# -- pgtop starts with the defaults ------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The path pgtop reads its config from in this test (not created)."""
    path = tmp_path / "pgtop" / "config.toml"
    path.parent.mkdir()
    monkeypatch.setenv("PGTOP_CONFIG", str(path))
    return path


@pytest.mark.parametrize("case", ["missing", "directory", *sorted(BROKEN)])
def test_pgtop_starts_with_defaults(config_file: Path, case: str) -> None:
    if case == "directory":
        config_file.mkdir()
    elif case in BROKEN:
        config_file.write_bytes(BROKEN[case][0])
    settings, _args, warnings = parse_settings(["host=db"])
    defaults = Settings()
    assert settings.refresh == DEFAULT_REFRESH
    assert settings.read_only is defaults.read_only
    assert settings.action_lock_timeout == defaults.action_lock_timeout
    assert settings.keymap == {}
    if case == "missing":
        assert warnings == ()
    else:
        assert len(warnings) == 1
        assert str(config_file) in warnings[0]


def test_command_line_beats_the_config_file(config_file: Path) -> None:
    config_file.write_text("refresh = 10\nread_only = false\n")
    settings, _args, warnings = parse_settings(["--refresh", "1", "--read-only", "host=db"])
    assert warnings == ()
    assert settings.refresh == 1
    assert settings.read_only is True
    settings, _args, _ = parse_settings(["host=db"])
    assert settings.refresh == 10


# -- private files -----------------------------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Umask 000 while the test runs: file modes come from the code, not from the umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_write_private_creates_an_owner_only_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "state.toml"
    write_private(path, "a = 1\n")
    assert path.read_text() == "a = 1\n"
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert os.listdir(path.parent) == ["state.toml"]


@pytest.mark.usefixtures("permissive_umask")
def test_write_private_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state.toml"
    path.write_text("old\n")
    path.chmod(0o644)
    old_inode = path.stat().st_ino
    reader = path.open()  # someone reading the old file keeps seeing all of it

    write_private(path, "new\n")

    assert path.read_text() == "new\n"
    assert _mode(path) == 0o600
    assert path.stat().st_ino != old_inode
    assert reader.read() == "old\n"
    reader.close()
    assert os.listdir(tmp_path) == ["state.toml"]


def test_write_private_failure_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "state.toml"
    path.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        write_private(path, "half written \ud800 never")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["state.toml"]


@pytest.mark.usefixtures("permissive_umask")
def test_append_private_creates_an_owner_only_file(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "actions.log"
    append_private(path, "first")
    append_private(path, "second\n")
    assert path.read_text() == "first\nsecond\n"
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700


def test_append_private_keeps_existing_lines(tmp_path: Path) -> None:
    path = tmp_path / "actions.log"
    path.write_text("earlier\n")
    path.chmod(0o600)
    append_private(path, "later")
    assert path.read_text() == "earlier\nlater\n"


# -- end to end --------------------------------------------------------------------------------


def test_broken_config_warns_and_once_still_works(dsn: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(b'refresh = "fast"\n')
    before = _snapshot(config)
    env = {k: v for k, v in os.environ.items() if k != "PGCONNECT_TIMEOUT"}
    env.update(PGTOP_CONFIG=str(config), PGTOP_LOG_DIR=str(tmp_path / "logs"))

    proc = subprocess.run(
        [sys.executable, "-m", "pgtop", "--once", "activity", "--format", "json", dsn],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pgtop: warning: ")
    assert str(config) in lines[0]
    document = json.loads(proc.stdout)
    assert document["tab"] == "activity"
    assert isinstance(document["rows"], list)
    assert _snapshot(config) == before
