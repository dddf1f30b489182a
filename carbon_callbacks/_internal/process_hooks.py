"""Objects to act on at interpreter exit and in children created by ``fork``.

The hooks are registered with ``atexit`` and ``os.register_at_fork`` when the first object is added,
never at import. Exit hooks run in reverse order of registration, so a registry first used later
(the trackers') runs before one first used earlier (the samplers they own).
"""

from __future__ import annotations

import atexit
import os
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ProcessRegistry(Generic[T]):
    """A weak set of live objects with an action at exit and one in forked children.

    Args:
        at_exit: Called for every object still registered when the interpreter exits.
        in_forked_child: Called for every registered object in a child right after ``fork``; the
            registry is then emptied there, since the child owns none of them.
    """

    def __init__(self, at_exit: Callable[[T], None], in_forked_child: Callable[[T], None]) -> None:
        self._items: weakref.WeakSet[T] = weakref.WeakSet()
        self._at_exit = at_exit
        self._in_forked_child = in_forked_child
        self._installed = False

    def add(self, item: T) -> None:
        """Register ``item``, installing the process hooks on first use."""
        if not self._installed:
            self._installed = True
            atexit.register(self._run_at_exit)
            os.register_at_fork(after_in_child=self._run_in_forked_child)
        self._items.add(item)

    def items(self) -> list[T]:
        """The objects registered now."""
        return list(self._items)

    def discard(self, item: T) -> None:
        """Forget ``item`` (it was stopped normally)."""
        self._items.discard(item)

    def _run_at_exit(self) -> None:
        for item in list(self._items):
            self._at_exit(item)

    def _run_in_forked_child(self) -> None:
        for item in list(self._items):
            self._in_forked_child(item)
        self._items.clear()
