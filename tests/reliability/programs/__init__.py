"""Standalone trainings run in subprocesses by the crash tests, one per frontend."""
