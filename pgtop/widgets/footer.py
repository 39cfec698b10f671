"""The key footer, fitted to the terminal's width."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

NARROW = 110
"""Below this width the footer is compact and leaves out the command palette's key
(``ctrl+p`` still opens it, and ``?`` lists every key), so that more keys fit."""


class KeysFooter(Footer):
    """A footer that keeps room for keys at narrow widths; the panes list their keys most
    important first, so what a narrow terminal cuts is the least needed."""

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < NARROW
        if narrow != self.compact or narrow == self.show_command_palette:
            self.compact = narrow
            self.show_command_palette = not narrow
            if self.is_attached and self._bindings_ready:
                self.call_after_refresh(self.recompose)
