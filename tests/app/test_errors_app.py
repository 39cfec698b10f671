"""Unexpected errors: the app never shows a traceback, logs privately, never a password."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from canned import CannedSource, incident_snapshot, settle
from helpers import shows

from pgtop.app import PgTopApp
from pgtop.config import Settings, write_crash_log
from pgtop.model import Snapshot
from pgtop.panes.activity import ActivityPane

SECRET = "Pw-Do-Not-Show-42"


@pytest.fixture(autouse=True)
def private_logs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PGTOP_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path / "logs"


def settings() -> Settings:
    return Settings(conninfo=f"host=db password={SECRET}", password=SECRET, refresh=0.5)


async def test_a_failing_poll_keeps_the_app_running(private_logs: Path) -> None:
    """A bug in a poll is reported on the banner with a crash log; monitoring goes on."""

    class Flaky(CannedSource):
        calls = 0

        async def poll(self) -> Snapshot:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError(f"unexpected state password={SECRET}")
            return await super().poll()

    source = Flaky(incident_snapshot())
    app = PgTopApp(settings(), source=source)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        text = await shows(pilot, "internal error: unexpected state", "details in")
        assert SECRET not in text
        assert "Traceback" not in text
        (log,) = private_logs.glob("crash-*.log")
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        content = log.read_text()
        assert "RuntimeError" in content
        assert SECRET not in content


async def test_a_crash_ends_the_app_with_a_private_log(
    monkeypatch: pytest.MonkeyPatch, private_logs: Path
) -> None:
    def broken_show(self: ActivityPane, snapshot: Any) -> None:
        raise ValueError(f"cannot draw, dsn was password={SECRET}")

    monkeypatch.setattr(ActivityPane, "show_activity", broken_show)
    app = PgTopApp(settings(), source=CannedSource(incident_snapshot()))
    with pytest.raises(ValueError, match="cannot draw"):
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
    assert isinstance(app.crash, ValueError)
    assert app.return_code == 1
    assert app._exit_renderables == [], "no traceback is printed when the terminal returns"
    path = write_crash_log(app.crash, (SECRET,))
    assert path is not None
    assert path.parent == private_logs
    content = path.read_text()
    assert "ValueError: cannot draw" in content
    assert SECRET not in content
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
