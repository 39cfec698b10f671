"""pgtop: a keyboard-driven terminal UI for PostgreSQL incident triage."""

__version__ = "0.1.0"
