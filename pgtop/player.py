"""``pgtop --replay FILE``: the same interface on a recording, with keys to move in time.

Every tab, filter, sort and detail works as on a server: the app polls its source, which is
the recording standing at one reading (``ReplaySource``). Moving in time (a step, a minute,
a typed time, playing) moves the source and refreshes at once. Actions are offered as on a
server, so that each is refused with the reason.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.timer import Timer

from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.recording import ReplaySource, parse_when
from pgtop.text import one_line

SPEEDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Playing speeds that ``+`` and ``-`` step through: 1 is the recorded speed."""
GAP_SECONDS = 1.0
"""Seconds a gap in the recording takes when playing, whatever its length."""
SHORTEST_STEP = 0.05
"""Seconds between two readings shown when playing, at least (the screen keeps up)."""
REFUSED = "this is a recording: nothing is changed on any server from it"


class ReplayApp(PgTopApp):
    """The pgtop interface on a recording (``ReplaySource``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_pause", "Play/pause", id="pause"),
        Binding("plus", "change_interval(-1)", "Faster", show=False, id="faster"),
        Binding("minus", "change_interval(1)", "Slower", show=False, id="slower"),
        Binding("comma", "step(-1)", "Back", id="replay-back"),
        Binding("full_stop", "step(1)", "Next", id="replay-forward"),
        Binding("left_square_bracket", "jump(-60)", "-1 min", show=False, id="replay-minute-back"),
        Binding(
            "right_square_bracket", "jump(60)", "+1 min", show=False, id="replay-minute-forward"
        ),
        Binding("t", "go_to_time", "Go to time", id="replay-goto"),
    ]

    def __init__(self, settings: Settings, source: ReplaySource, path: str) -> None:
        super().__init__(replace(settings, recorder_minutes=0.0, read_only=True), source=source)
        self.player = source
        self.path = path
        self.playing = False
        self.speed = SPEEDS[0]
        self._timer: Timer | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self._show_position()

    # -- where the screen stands -------------------------------------------------------------

    def _show_position(self) -> None:
        player = self.player
        state = f"▶ {self.speed:g}x" if self.playing else "⏸"
        when = f"{player.when:%Y-%m-%d %H:%M:%S}"
        self.replay = f"{state} {when} · reading {player.index + 1}/{len(player)}"

    def _moved(self) -> None:
        self._show_position()
        self.refresh_now()

    def action_step(self, readings: int) -> None:
        if self.player.step(readings):
            self._moved()
        else:
            self.say("the first reading" if readings < 0 else "the last reading", timeout=2)

    def action_jump(self, seconds: float) -> None:
        if self.player.jump(seconds):
            self._moved()
        else:
            self.say("the first reading" if seconds < 0 else "the last reading", timeout=2)

    def action_go_to_time(self) -> None:
        from pgtop.screens.goto_time import GoToTime

        recording = self.player.recording
        first, last = recording.when(0), recording.when(len(recording) - 1)
        self.push_screen(GoToTime(f"{first:%Y-%m-%d %H:%M:%S} to {last:%H:%M:%S}"), self._go_to)

    def _go_to(self, typed: str | None) -> None:
        if typed is None:
            return
        try:
            self.player.seek(parse_when(typed, self.player.recording))
        except ValueError as exc:
            self.say(str(exc), title="Not a time in the recording", severity="warning")
            return
        self._moved()

    # -- playing -----------------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        """Play from here at the recorded speed (times ``speed``), or stop playing."""
        self.playing = not self.playing
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.playing:
            if self.player.seconds_to_next() is None:
                self.player.move(0)
                self._moved()
            self._schedule()
        self._show_position()

    def action_change_interval(self, step: int) -> None:
        """Play faster (step -1, as ``+`` refreshes faster) or slower."""
        position = SPEEDS.index(self.speed)
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, position - step))]
        self.say(f"playing at {self.speed:g}x the recorded speed", timeout=2)
        if self.playing and self._timer is not None:
            self._timer.stop()
            self._schedule()
        self._show_position()

    def _schedule(self) -> None:
        seconds = self.player.seconds_to_next()
        if seconds is None:
            self.playing = False
            self._timer = None
            self.say("the end of the recording", timeout=4)
            self._show_position()
            return
        wait = GAP_SECONDS if self.player.gap_after() else max(SHORTEST_STEP, seconds / self.speed)
        self._timer = self.set_timer(wait, self._advance)

    def _advance(self) -> None:
        self._timer = None
        if not self.playing:
            return
        gap = self.player.gap_after()
        before = self.player.when
        self.player.step(1)
        if gap is not None:
            lasted = (self.player.when - before).total_seconds()
            self.say(
                f"no readings for {lasted:.0f}s after {before:%H:%M:%S}: {gap.reason}",
                title="Gap in the recording",
                timeout=6,
            )
        self._moved()
        self._schedule()

    # -- what a recording refuses ------------------------------------------------------------

    def actions_offered(self) -> bool:
        return True

    def action_unavailable(self) -> str | None:
        return REFUSED

    def action_write_recording(self) -> None:
        self.say(f"this is a recording already: {one_line(self.path, 300)}", timeout=6)
