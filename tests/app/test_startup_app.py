"""Start-up: the command stops garbage collection while it loads (``cli.main``); the
interface starts it again once its first frame is on screen. The snapshot taken while the
interface loaded is on screen before any tab's data is read."""

from __future__ import annotations

import gc
import weakref

import pytest
from canned import CannedSource, incident_snapshot, settle
from helpers import screen_text, wait_for

from pgtop import cli
from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.model import Snapshot


class Litter:
    """Garbage: an object in a reference cycle that nothing else refers to."""

    def __init__(self) -> None:
        self.me = self


async def test_collection_starts_again_after_the_first_frame() -> None:
    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))
    frozen = gc.get_freeze_count()
    gc.disable()
    litter = weakref.ref(Litter())
    assert litter() is not None
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            assert "SELECT" in screen_text(app)
            assert gc.isenabled()
            # What start-up made is left out of every collection from now on; not its
            # garbage, which would then stay in memory for good.
            assert gc.get_freeze_count() > frozen
            assert litter() is None
    finally:
        gc.unfreeze()
        gc.enable()


async def test_an_app_started_otherwise_leaves_collection_alone() -> None:
    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))
    frozen = gc.get_freeze_count()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert gc.isenabled()
        assert gc.get_freeze_count() == frozen


@pytest.mark.parametrize("collecting", [True, False])
def test_the_command_leaves_collection_as_it_found_it(
    collecting: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    if not collecting:
        gc.disable()
    try:
        assert cli.main(["--no-such-option"]) == 2
        assert "pgtop: " in capsys.readouterr().err
        assert gc.isenabled() is collecting
    finally:
        gc.enable()


class HealthAfterData(CannedSource):
    """Notes what the screen showed when the Health checks were first read."""

    shown_at_first_read: str | None = None

    def __init__(self, app_of: list[PgTopApp]) -> None:
        super().__init__(incident_snapshot())
        self._app_of = app_of

    async def collect(
        self, tab: str, activity: Snapshot, needs: object, *, now: bool = False
    ) -> object | None:
        if tab == "health" and self.shown_at_first_read is None:
            self.shown_at_first_read = screen_text(self._app_of[0])
        return await super().collect(tab, activity, needs, now=now)


async def test_the_first_snapshot_is_on_screen_before_the_tabs_are_read() -> None:
    holder: list[PgTopApp] = []
    source = HealthAfterData(holder)
    app = PgTopApp(Settings(refresh=60), source=source, first_snapshot=incident_snapshot())
    holder.append(app)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: source.shown_at_first_read is not None, "a Health read")
        assert "4101" in (source.shown_at_first_read or "")
