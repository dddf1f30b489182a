"""Averaging intensities over the pieces of a window, weighted by what each piece stands for.

A window's CO2e is the sum over its pieces of energy x the intensity valid for that piece. Written
as one figure, that is the window's energy times the energy-weighted mean intensity, which is what
``weighted_intensity`` returns, with the provenance of every piece folded into one value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from carbon_callbacks._internal.unique import unique
from carbon_callbacks.intensity.base import Basis, IntensityValue


@dataclass(frozen=True)
class Piece:
    """One part of a window: how much it weighs and the intensity over it.

    Attributes:
        weight: Energy (or, where no energy is known, duration) of the piece; >= 0.
        value: The intensity over the piece.
    """

    weight: float
    value: IntensityValue


def weighted_intensity(pieces: Sequence[Piece]) -> IntensityValue | None:
    """The weighted mean intensity of ``pieces`` with their provenance merged.

    Pieces of zero total weight are averaged with equal weights. Differing sources, zones or years
    are listed; differing bases give ``"mixed"``. Returns None for no pieces.
    """
    if not pieces:
        return None
    if len(pieces) == 1:
        return pieces[0].value
    total = sum(piece.weight for piece in pieces)
    weights = [piece.weight / total for piece in pieces] if total > 0 else None
    values = [piece.value for piece in pieces]
    if weights is None:
        mean = sum(v.g_per_kwh for v in values) / len(values)
    else:
        mean = sum(w * v.g_per_kwh for w, v in zip(weights, values, strict=True))
    bases = unique(v.basis for v in values)
    basis: Basis | None = bases[0] if len(bases) == 1 else "mixed" if bases else None
    years = unique(v.year for v in values)
    zones = unique(v.zone for v in values)
    fallbacks = unique(v.fallback for v in values)
    return IntensityValue(
        g_per_kwh=mean,
        source=" + ".join(unique(v.source for v in values)),
        zone=" + ".join(z for z in zones if z is not None) or None,
        basis=basis,
        year=years[0] if len(years) == 1 else None,
        estimated=any(v.estimated for v in values),
        guessed_location=any(v.guessed_location for v in values),
        fallback="; ".join(f for f in fallbacks if f is not None) or None,
    )
