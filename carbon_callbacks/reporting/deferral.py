"""A run started later for a cleaner grid (``run --start-cleaner``): forecast beside outcome.

The run log's header keeps the plan (``context.deferred_start``: the chosen start, the forecast
mean at it and for a start at the time of planning, the forecast's source); the run's own figures
hold the intensity it actually met. ``report`` sets the two side by side in one line.

A training run that started at once may learn, with its first forecast, that a later start would
have been much cleaner (``CleanerStart``): ``cleaner_start_line`` words that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from carbon_callbacks.intensity.base import MAX_G_PER_KWH
from carbon_callbacks.runlog import decode
from carbon_callbacks.training.outcome import CleanerStart


@dataclass(frozen=True)
class Deferral:
    """The plan a deferred run was started by.

    Attributes:
        start_unix: The start chosen.
        forecast_g_per_kwh: The forecast mean over the run at that start.
        now_g_per_kwh: The forecast mean for a start when it was planned; None when unknown.
        source: The forecast's provider and zone.
    """

    start_unix: float
    forecast_g_per_kwh: float
    now_g_per_kwh: float | None
    source: str

    def to_dict(self, met_g_per_kwh: float | None) -> dict[str, object]:
        """JSON-ready form (``report --json``), with the intensity the run met beside the plan."""
        return {
            "start_unix": self.start_unix,
            "forecast_g_per_kwh": self.forecast_g_per_kwh,
            "now_g_per_kwh": self.now_g_per_kwh,
            "met_g_per_kwh": met_g_per_kwh,
            "source": self.source,
        }


def deferral_of(header: Mapping[str, Any] | None) -> Deferral | None:
    """The plan in a run log's header; None when the run was not deferred or the plan is bad."""
    context = (header or {}).get("context")
    plan = context.get("deferred_start") if isinstance(context, dict) else None
    if not isinstance(plan, dict):
        return None
    try:
        now = plan.get("now_g_per_kwh")
        return Deferral(
            start_unix=decode.bounded_number(plan["start_unix"], 0.0, decode.MAX_UNIX),
            forecast_g_per_kwh=decode.bounded_number(
                plan["forecast_g_per_kwh"], 0.0, MAX_G_PER_KWH
            ),
            now_g_per_kwh=None if now is None else decode.bounded_number(now, 0.0, MAX_G_PER_KWH),
            source=f"{decode.text(plan.get('source')) or 'forecast'}, zone "
            f"{decode.text(plan.get('zone')) or 'unknown'}",
        )
    except (KeyError, TypeError, ValueError):
        return None


def deferral_phrase(deferral: Deferral, met_g_per_kwh: float | None) -> str:
    """``forecast 112 gCO2e/kWh vs 241 for a start when planned (54% less); met 118 (51% less)``."""
    now = deferral.now_g_per_kwh
    phrase = f"forecast {deferral.forecast_g_per_kwh:.0f} gCO2e/kWh"
    if now is not None and now > 0:
        phrase += (
            f" vs {now:.0f} for a start when planned ({_less(deferral.forecast_g_per_kwh, now)})"
        )
    if met_g_per_kwh is None or not math.isfinite(met_g_per_kwh):
        return phrase + "; the intensity met is unknown"
    phrase += f"; met {met_g_per_kwh:.0f} gCO2e/kWh"
    if now is not None and now > 0:
        phrase += f" ({_less(met_g_per_kwh, now)} than the forecast for a start when planned)"
    return phrase + f" ({deferral.source})"


def _less(value: float, baseline: float) -> str:
    change = 1 - value / baseline
    return f"{change:.0%} less" if change >= 0 else f"{-change:.0%} more"


def cleaner_start_line(hint: CleanerStart) -> str:
    """``carbon-callbacks: starting at 02:00 UTC would have emitted about 40% less CO2e (...)``.

    The time is to the minute; the date is added when it is not the run's start day (UTC).
    """
    at = datetime.fromtimestamp(round(hint.start_unix / 60) * 60, timezone.utc)
    started = datetime.fromtimestamp(hint.run_start_unix, timezone.utc)
    when = at.strftime("%H:%M UTC" if at.date() == started.date() else "%Y-%m-%d %H:%M UTC")
    return (
        f"carbon-callbacks: starting at {when} would have emitted about "
        f"{hint.saving_fraction:.0%} less CO2e (forecast {hint.g_per_kwh:.0f} gCO2e/kWh vs "
        f"{hint.started_g_per_kwh:.0f} for the start it had; information only)"
    )
