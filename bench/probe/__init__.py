"""Bench-only steps and tasks (bench.settings installs this app; the project does not)."""
