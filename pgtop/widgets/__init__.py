"""Custom widgets for pgtop."""
