"""Runs still open when the process ends: closed at interpreter exit and on SIGTERM.

A tracker registers here between ``start`` and ``stop``. At interpreter exit each run still open is
closed with the reason the interpreter exits; on SIGTERM (SLURM, Kubernetes) the runs that asked
for it are closed as ``"interrupted"`` before the signal goes on. A forked child forgets the
parent's runs: the parent owns them.
"""

from __future__ import annotations

import sys
from typing import Literal, Protocol

from carbon_callbacks._internal.process_hooks import ProcessRegistry
from carbon_callbacks._internal.signals import SigtermGuard

RunStatus = Literal["completed", "failed", "interrupted", "unfinished"]


class OpenRun(Protocol):
    """What this module needs of a run: to close it, and whether SIGTERM should."""

    @property
    def handles_sigterm(self) -> bool:
        """True when SIGTERM should close the run as ``"interrupted"``."""
        ...

    def stop(self, status: RunStatus = "completed") -> object:
        """Close the run with ``status``; later calls do nothing."""
        ...


def opened(run: OpenRun) -> None:
    """Note that ``run`` started: close it at exit, and on SIGTERM if it asks for that."""
    _open_runs.add(run)
    if run.handles_sigterm:
        _sigterm.hold(run)


def stopping(run: OpenRun) -> None:
    """Note that ``run`` is being stopped: nothing is left to do for it at exit."""
    _open_runs.discard(run)


def stopped(run: OpenRun) -> None:
    """Note that ``run`` is stopped (its sampler too): SIGTERM no longer concerns it."""
    _sigterm.release(run)


def exit_status() -> RunStatus:
    """Why the interpreter exits, as a run status.

    ``interrupted`` after an uncaught KeyboardInterrupt, ``failed`` after another uncaught
    exception (Python keeps it in ``sys.last_type`` before ``atexit`` runs), else ``unfinished``.
    An interactive session keeps ``sys.last_type`` from any earlier error, so there it proves
    nothing: the run is ``unfinished``.
    """
    last = getattr(sys, "last_type", None)
    if last is None or hasattr(sys, "ps1") or "IPython" in sys.modules:
        return "unfinished"
    return "interrupted" if issubclass(last, KeyboardInterrupt) else "failed"


def _stop_at_exit(run: OpenRun) -> None:
    """Close a run still open at interpreter exit, saying why the interpreter is exiting."""
    run.stop(exit_status())


def _stop_on_sigterm() -> None:
    for run in _open_runs.items():
        if run.handles_sigterm:
            run.stop("interrupted")


def _disown(run: OpenRun) -> None:
    """Nothing to do: a run checks its owner pid itself; the child only forgets it."""


_open_runs: ProcessRegistry[OpenRun] = ProcessRegistry(
    at_exit=_stop_at_exit, in_forked_child=_disown
)
_sigterm = SigtermGuard(_stop_on_sigterm)
