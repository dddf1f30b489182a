"""The figures summed across ranks, by name: one place turns them into the reducer's flat vector.

A framework's collective sums a flat vector of floats element-wise; the monitor's figures are
named dataclasses (``RunSums`` and the ones that extend it) whose ``to_vector`` and
``from_vector`` are the only code that knows the order, so no caller slices by index.
NaN marks unknown and stays unknown in a sum.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

Reducer = Callable[[Sequence[float]], Sequence[float]]
"""Sums a vector element-wise across ranks; the identity in a single process. NaN marks unknown."""

_V = TypeVar("_V", bound="SumVector")
_R = TypeVar("_R", bound="RunSums")


class SumVector:
    """Named floats (or nested ``SumVector``s) summed across ranks as one flat vector."""

    def to_vector(self) -> list[float]:
        """The figures in field order, nested ones flattened in place."""
        vector: list[float] = []
        for name, nested in _layout(type(self)):
            value = getattr(self, name)
            vector += value.to_vector() if nested is not None else [float(value)]
        return vector

    @classmethod
    def from_vector(cls: type[_V], values: Sequence[float]) -> _V:
        """The figures back from a (summed) vector of ``length()`` floats.

        Raises:
            ValueError: The vector has another length (a reducer that changed its shape).
        """
        if len(values) != cls.length():
            raise ValueError(f"{cls.__name__} takes {cls.length()} values, got {len(values)}")
        parts: dict[str, object] = {}
        at = 0
        for name, nested in _layout(cls):
            if nested is None:
                parts[name] = float(values[at])
                at += 1
            else:
                parts[name] = nested.from_vector(values[at : at + nested.length()])
                at += nested.length()
        return cls(**parts)

    @classmethod
    def length(cls) -> int:
        """How many floats the vector holds."""
        return sum(1 if nested is None else nested.length() for _, nested in _layout(cls))

    @classmethod
    def filled(cls: type[_V], value: float) -> _V:
        """Every figure ``value``: NaN for unknown, 0 for a rank that adds nothing by design."""
        return cls.from_vector([value] * cls.length())


_LAYOUTS: dict[type[SumVector], tuple[tuple[str, type[SumVector] | None], ...]] = {}


def _layout(cls: type[SumVector]) -> tuple[tuple[str, type[SumVector] | None], ...]:
    """Each field's name, with its class when it is a nested ``SumVector`` (else None)."""
    known = _LAYOUTS.get(cls)
    if known is not None:
        return known
    hints = typing.get_type_hints(cls)
    layout: list[tuple[str, type[SumVector] | None]] = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = hints[field.name]
        nested = kind if isinstance(kind, type) and issubclass(kind, SumVector) else None
        layout.append((field.name, nested))
    _LAYOUTS[cls] = tuple(layout)
    return _LAYOUTS[cls]


@dataclass(frozen=True)
class ForecastSums(SumVector):
    """A whole-run forecast: facility joules and kg CO2e, each low, central and high."""

    energy_low_j: float
    energy_j: float
    energy_high_j: float
    co2e_low_kg: float
    co2e_kg: float
    co2e_high_kg: float


@dataclass(frozen=True)
class RunSums(SumVector):
    """The run's totals so far (resumed runs included) and its forecast.

    Attributes:
        energy_j: Facility joules (x PUE).
        co2e_kg: Kilograms CO2e.
        estimated: Ranks whose figures include an estimate (the metric is capped at 1).
        partial: Ranks whose figures are incomplete (capped at 1 likewise).
        forecast: The whole run's forecast.
    """

    energy_j: float
    co2e_kg: float
    estimated: float
    partial: float
    forecast: ForecastSums

    @classmethod
    def extended(cls: type[_R], run: RunSums, **more: float) -> _R:
        """``run``'s figures with the fields this class adds."""
        values: dict[str, Any] = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)}
        return cls(**values | more)


@dataclass(frozen=True)
class EpochSums(RunSums):
    """At an epoch's end: the totals, then the epoch's own figures."""

    epoch_energy_j: float = math.nan
    epoch_co2e_kg: float = math.nan
    val_energy_j: float = math.nan
    """Of which validation inside the epoch."""


@dataclass(frozen=True)
class IntervalSums(RunSums):
    """At a logging step: the totals, then each rank's rates over its own interval, summed.

    ``power_*`` covers the power's interval, ``work_*`` the (maybe longer) interval of the
    figures per step, sample and token (``training.intervals``); ``*_unresolved`` counts the
    ranks whose interval is still too short, so every rank carries it on alike.
    """

    power_w: float = math.nan
    power_unresolved: float = 0.0
    work_power_w: float = math.nan
    energy_per_step_j: float = math.nan
    samples_per_s: float = 0.0
    tokens_per_s: float = 0.0
    work_unresolved: float = 0.0
