"""SIGTERM while measuring: close the runs as interrupted, then let the signal do what it would.

SLURM and Kubernetes send SIGTERM before they stop a job. Python's default action ends the process
at once, without ``atexit``, so a run log would end without its summary. While at least one holder
(a running tracker) asks for it, a handler is installed from the main thread. It calls
``on_signal`` (which stops the holders as ``"interrupted"``), then hands the signal on: to the
Python handler that was there before, or, when that was the default action, by restoring the
default and sending SIGTERM again, so the process ends exactly as it would have (killed by the
signal: exit status 143, returncode -15). A handler installed in C, or an ignored SIGTERM, is left
alone, and so is SIGTERM in a process whose main thread is not the one starting the tracker.

Python runs the handler on the main thread between two bytecodes, possibly while that thread holds
one of the library's locks (an exact read at a window boundary holds the sampler's). Stopping then
would wait on a lock its own thread holds. So the library's locks are ``DeferringLock``s: while the
main thread holds one, the handler only notes the signal, and the last release on that thread
runs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _Deferral:
    """How many ``DeferringLock``s the main thread holds, and the handling held back meanwhile."""

    depth = 0
    pending: Callable[[], None] | None = None
    fork_hook = False


def _on_main_thread() -> bool:
    return threading.get_ident() == threading.main_thread().ident


def _leave_critical_section() -> None:
    _Deferral.depth -= 1
    if _Deferral.depth == 0 and _Deferral.pending is not None:
        pending, _Deferral.pending = _Deferral.pending, None
        pending()


class DeferringLock:
    """A ``threading.Lock`` that holds SIGTERM handling back while the main thread holds it.

    The count goes up before the acquire, so a signal that arrives while the main thread waits
    for the lock, or just after it got it, is deferred too; it runs once the lock is released.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        if not _Deferral.fork_hook:  # registered on first use, never at import
            _Deferral.fork_hook = True
            os.register_at_fork(after_in_child=_forget_deferral_in_child)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """As ``threading.Lock.acquire``."""
        on_main = _on_main_thread()
        if on_main:
            _Deferral.depth += 1
        try:
            acquired = self._lock.acquire(blocking, timeout)
        except BaseException:
            if on_main:
                _leave_critical_section()
            raise
        if not acquired and on_main:
            _leave_critical_section()
        return acquired

    def release(self) -> None:
        """As ``threading.Lock.release``; on the main thread, runs a signal held back meanwhile."""
        self._lock.release()
        if _on_main_thread():
            _leave_critical_section()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _forget_deferral_in_child() -> None:
    """A child forked from another thread may have copied the main thread's count mid-section."""
    _Deferral.depth = 0
    _Deferral.pending = None


class SigtermGuard:
    """Installs the SIGTERM handler while someone holds it, and chains to the one before.

    Args:
        on_signal: Called first when SIGTERM arrives (it must not raise; errors are swallowed).
    """

    def __init__(self, on_signal: Callable[[], None]) -> None:
        self._on_signal = on_signal
        self._holders: weakref.WeakSet[object] = weakref.WeakSet()
        self._previous: Handler = None
        self._installed = False
        self._handler = self._handle  # one bound method, so the installed handler can be recognised
        self._fork_hook = False

    def hold(self, holder: object) -> None:
        """Ask for the handler on behalf of ``holder``; installs it for the first holder."""
        self._holders.add(holder)
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous is None or previous == signal.SIG_IGN:
            return  # installed outside Python, or deliberately ignored: not ours to change
        signal.signal(signal.SIGTERM, self._handler)
        self._previous, self._installed = previous, True
        if not self._fork_hook:
            self._fork_hook = True
            os.register_at_fork(after_in_child=self._forget_in_child)

    def release(self, holder: object) -> None:
        """Give up ``holder``'s claim; the last one restores the previous handler."""
        self._holders.discard(holder)
        if len(self._holders) == 0:
            self._restore()

    def _restore(self) -> None:
        if not self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._installed = False
        if signal.getsignal(signal.SIGTERM) == self._handler:  # else someone replaced it: leave it
            signal.signal(signal.SIGTERM, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if _Deferral.depth > 0:  # the main thread is inside one of our locks: after it leaves
            _Deferral.pending = lambda: self._handle(signum, frame)
            return
        previous = self._previous
        with contextlib.suppress(Exception):  # the signal must go on whatever happened here
            self._on_signal()
        self._holders.clear()
        self._restore()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    def _forget_in_child(self) -> None:
        """A forked child owns no run: it gets the previous handler back."""
        if self._installed and signal.getsignal(signal.SIGTERM) == self._handler:
            with contextlib.suppress(ValueError):  # not the child's main thread: nothing to undo
                signal.signal(signal.SIGTERM, self._previous)
        self._installed = False
        self._holders = weakref.WeakSet()
