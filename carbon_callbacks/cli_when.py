"""``carbon-callbacks when`` and ``run --start-cleaner``: the cleanest start from a grid forecast.

``when --hours H [--within W] (location) [--energy-kwh E | --like RUN.jsonl] [--json]`` fetches
the forecast for the place, picks the start within W hours whose run of H hours meets the lowest
mean intensity (``intensity.schedule``), and says it with the mean at that start, at "now" and the
saving. ``run --start-cleaner`` makes the same choice, says it in one line, waits (a countdown on
a terminal), and then runs the command; the choice goes into the run log's header
(``context.deferred_start``) so that ``report`` can set the forecast beside the outcome.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from types import FrameType
from typing import Any

from carbon_callbacks.cli_parser import PROG
from carbon_callbacks.cli_words import in_flags, one_line
from carbon_callbacks.intensity.schedule import Choice

_FETCH_AHEAD_S = 72 * 3600.0
"""How far ahead the forecast is asked for when no window is given (APIs answer what they have:
48 h for the UK, about a day for Denmark)."""


class PlanError(Exception):
    """The start could not be planned; ``status`` is the exit status (2: input, 1: the API)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Plan:
    """A chosen start with what it was chosen from.

    Attributes:
        choice: The start, its forecast mean and the mean for a start now.
        duration_s: The run's expected length.
        energy_kwh: The run's expected energy, when known (``--energy-kwh`` or ``--like``).
        zone: The forecast's zone.
        source: The forecast's provider.
    """

    choice: Choice
    duration_s: float
    energy_kwh: float | None
    zone: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The fields of ``when --json``."""
        choice = self.choice
        return {
            "start_unix": choice.start_unix,
            "start_iso": datetime.fromtimestamp(choice.start_unix, timezone.utc).isoformat(
                timespec="seconds"
            ),
            "g_per_kwh": choice.g_per_kwh,
            "now_g_per_kwh": choice.now_g_per_kwh,
            "saving_fraction": choice.saving_fraction,
            "co2e_kg": _kg(self.energy_kwh, choice.g_per_kwh),
            "now_co2e_kg": _kg(self.energy_kwh, choice.now_g_per_kwh),
            "energy_kwh": self.energy_kwh,
            "hours": self.duration_s / 3600,
            "zone": self.zone,
            "source": self.source,
            "forecast_until_unix": choice.forecast_until_unix,
        }

    def record(self) -> dict[str, Any]:
        """What the run log's header keeps of the plan (``context.deferred_start``)."""
        return {
            "planned_unix": self.choice.now_unix,
            "start_unix": self.choice.start_unix,
            "forecast_g_per_kwh": self.choice.g_per_kwh,
            "now_g_per_kwh": self.choice.now_g_per_kwh,
            "hours": self.duration_s / 3600,
            "zone": self.zone,
            "source": self.source,
        }


def when(args: argparse.Namespace) -> int:
    """``carbon-callbacks when``: print the cleanest start, in words or as JSON."""
    try:
        plan = plan_start(args)
    except PlanError as error:
        return _fail(str(error), error.status)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        print("\n".join(plan_lines(plan)))
    return 0


def plan_start(args: argparse.Namespace) -> Plan:
    """Fetch the forecast for the place in ``args`` and choose the start.

    Raises:
        PlanError: Bad input, no forecast provider for the place, the API failing, or a run
            that does not fit the forecast; the message is one line in the subcommand's flags.
    """
    from carbon_callbacks.cli import _intensity_settings
    from carbon_callbacks.intensity.base import ProviderError
    from carbon_callbacks.intensity.forecast_source import forecast_source
    from carbon_callbacks.intensity.schedule import NoStartFits, best_start

    try:
        duration_s, energy_kwh = _run_size(args)
        within_s = _within_s(args)
        source = forecast_source(_intensity_settings(args))
    except (OSError, TypeError, ValueError) as error:
        raise PlanError(one_line(error, args.flags), 2) from None
    now = time.time()
    ahead = max(_FETCH_AHEAD_S, (within_s or 0.0) + duration_s)
    try:
        slots = source.fetch(now, now + ahead)
    except ProviderError as error:
        raise PlanError(f"no forecast to plan by: {error}", 1) from None
    finally:
        source.close()
    try:
        choice = best_start(slots, now, duration_s, within_s)
    except NoStartFits as error:
        message = in_flags(f"{error} ({source.name}, zone {source.zone})", args.flags)
        raise PlanError(message, 2) from None
    return Plan(choice, duration_s, energy_kwh, source.zone, source.name)


def _run_size(args: argparse.Namespace) -> tuple[float, float | None]:
    """The run's length in seconds and its energy (kWh, or None), from the flags or a run log."""
    from carbon_callbacks.runlog import decode
    from carbon_callbacks.runlog.reader import read_run_log

    energy = getattr(args, "energy_kwh", None)
    if energy is not None and not (math.isfinite(energy) and energy >= 0):
        raise ValueError(f"energy_kwh must be 0 or more kWh, got {energy}; write energy_kwh=12.5")
    if args.like is None:
        if args.hours is None:
            raise ValueError("give the run's length: hours=3, or like=RUN.jsonl (an earlier run)")
        if not (math.isfinite(args.hours) and args.hours > 0):
            raise ValueError(f"hours must be a positive number, got {args.hours}; write hours=3")
        return args.hours * 3600, energy
    log = read_run_log(args.like)
    if log.summary is None:
        raise ValueError(
            f"{args.like} has no summary (the run did not finish): give hours= instead"
        )
    try:
        earlier = decode.measurement_from_record(log.summary)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{args.like}: the summary record is malformed ({error})") from None
    if earlier.duration_s <= 0:
        raise ValueError(f"{args.like} records a run of no length: give hours= instead")
    return earlier.duration_s, energy if energy is not None else earlier.energy_kwh  # given wins


def _within_s(args: argparse.Namespace) -> float | None:
    if args.within is None:
        return None
    if not (math.isfinite(args.within) and args.within >= 0):
        raise ValueError(f"within must be 0 or more hours, got {args.within}; write within=12")
    return float(args.within) * 3600


def plan_lines(plan: Plan) -> list[str]:
    """``when``'s answer in words: the start, the means, the saving, the CO2e, the forecast."""
    from carbon_callbacks._internal.units import format_duration, format_kwh, format_mass
    from carbon_callbacks.intensity.schedule import utc_text

    choice = plan.choice
    run = f"a run of {format_duration(plan.duration_s)}"
    if choice.wait_s <= 0:
        lines = [f"Start now: {run} meets {_g(choice.g_per_kwh)} on average."]
    else:
        lines = [
            f"Start at {utc_text(choice.start_unix)} (in {format_duration(choice.wait_s)}): "
            f"{run} meets {_g(choice.g_per_kwh)} on average."
        ]
    if choice.now_g_per_kwh is None:
        lines.append("Started now: not known (the forecast does not cover a start now).")
    else:
        saving = choice.saving_fraction or 0.0
        lines.append(f"Started now: {_g(choice.now_g_per_kwh)}; {saving:.0%} less by waiting.")
    if plan.energy_kwh is not None:
        kg, now_kg = (
            _kg(plan.energy_kwh, choice.g_per_kwh),
            _kg(plan.energy_kwh, choice.now_g_per_kwh),
        )
        instead = "" if now_kg is None else f" instead of {format_mass(now_kg)}"
        lines.append(f"CO2e for {format_kwh(plan.energy_kwh)}: {format_mass(kg)}{instead}.")
    lines.append(
        f"Forecast: {plan.source}, zone {plan.zone}, until {utc_text(choice.forecast_until_unix)}."
    )
    return lines


def announcement(plan: Plan) -> str:
    """``run --start-cleaner``'s one line: when it starts, and why."""
    choice = plan.choice
    forecast = f"forecast {choice.g_per_kwh:.0f} gCO2e/kWh"
    if choice.wait_s <= 0:
        return f"{PROG}: starting now: {forecast}, the lowest start within the window"
    at = _clock_text(choice.start_unix, choice.now_unix)
    if choice.now_g_per_kwh is None:
        return f"{PROG}: starting at {at}: {forecast} (no forecast for a start now)"
    return (
        f"{PROG}: starting at {at}: {forecast} vs {choice.now_g_per_kwh:.0f} now, "
        f"{choice.saving_fraction or 0.0:.0%} less"
    )


class _Stopped(Exception):
    """SIGTERM arrived while waiting."""


def wait_for(plan: Plan) -> int | None:
    """Say the plan in one line, then wait for its start, a countdown on a terminal.

    SIGTERM and Ctrl-C end the wait at once with the status a process they killed has (143,
    130), so a scheduler sees the same as for a run stopped while running. The line is printed
    once the handlers are in place, so a signal sent on seeing it is always handled.

    Returns:
        The exit status when stopped, else None.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    countdown = sys.stderr.isatty()
    try:
        print(announcement(plan), file=sys.stderr, flush=True)
        while (left := plan.choice.start_unix - time.time()) > 0:
            if countdown:
                print(f"\r{PROG}: starting in {_clock(left)} ", end="", file=sys.stderr)
            time.sleep(min(1.0, left))
    except _Stopped:
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        signal.signal(signal.SIGTERM, previous)
        if countdown:
            print(file=sys.stderr)
    return None


def _clock(seconds: float) -> str:
    """``1:02:03``: a countdown's time left."""
    whole = math.ceil(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _clock_text(unix: float, now_unix: float) -> str:
    """``03:30 UTC`` today, ``2024-05-02 03:30 UTC`` another day; seconds when it has them."""
    moment = datetime.fromtimestamp(unix, timezone.utc)
    same_day = moment.date() == datetime.fromtimestamp(now_unix, timezone.utc).date()
    form = ("" if same_day else "%Y-%m-%d ") + ("%H:%M:%S" if moment.second else "%H:%M")
    return moment.strftime(form) + " UTC"


def _g(g_per_kwh: float) -> str:
    return f"{g_per_kwh:.0f} gCO2e/kWh"


def _kg(energy_kwh: float | None, g_per_kwh: float | None) -> float | None:
    if energy_kwh is None or g_per_kwh is None:
        return None
    return energy_kwh * g_per_kwh / 1000


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code
