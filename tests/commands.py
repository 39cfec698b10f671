"""``pgtop`` run as a user runs it: its own process, no PG* variables, no config file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PGTOP = (sys.executable, "-m", "pgtop")


def pgtop_env(folder: Path) -> dict[str, str]:
    """The environment without PG* variables, with no config file, logs in ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGTOP_CONFIG"] = str(folder / "no-such-config.toml")
    env["PGTOP_LOG_DIR"] = str(folder / "logs")
    env["PGPASSFILE"] = str(folder / "no-such-pgpass")
    return env


def run_pgtop(
    folder: Path, *args: str, timeout: float = 60, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``pgtop ARGS`` to the end (``config``: its config file); its output and exit code."""
    env = pgtop_env(folder)
    if config is not None:
        env["PGTOP_CONFIG"] = str(config)
    return subprocess.run(
        [*PGTOP, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
