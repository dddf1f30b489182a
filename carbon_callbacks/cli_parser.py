"""The ``carbon-callbacks`` command line's declarations: subcommands, their flags, help, examples.

The declarations are the one place a flag is named: each flag's ``dest`` is the keyword argument
it sets (``--cpu-watts-per-core`` sets ``cpu_watts``), so ``flags_of`` can word a library
message written for Python callers (``write e.g. pue=1.2``) in the flags a person typed
(``write e.g. --pue 1.2``; see ``cli_words``). Abbreviated flags are refused: a prefix that
happens to match one flag today would mean another once a flag is added.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from carbon_callbacks._version import __version__

PROG = "carbon-callbacks"
MADE_BY_RUN = f"{PROG} run"
"""What ``run`` writes as ``context.made_by`` in its run logs' headers."""

_EXAMPLES: Mapping[str, tuple[str, str, tuple[str, ...]]] = {
    "devices": (
        "what can be measured here, and how",
        "List what this machine can measure (GPUs, CPU, memory) and how; what it cannot, and why.",
        ("carbon-callbacks devices", "carbon-callbacks devices --json"),
    ),
    "run": (
        "run and measure a command: run [options] -- CMD ARGS...",
        "Run a command, measure it, print a summary and write a run log; exit as the command did.",
        (
            "carbon-callbacks run --country SE -- python train.py --epochs 3",
            "carbon-callbacks run --start-cleaner --within 12 --hours 3 --zone GB -- ./train.sh",
        ),
    ),
    "when": (
        "the cleanest time to start a run, from a grid forecast",
        "Find the start within the next hours whose run meets the lowest forecast carbon "
        "intensity.",
        (
            "carbon-callbacks when --hours 3 --zone GB",
            "carbon-callbacks when --like carbon-runs/RUN.jsonl --within 12 --zone DK-DK1 --json",
        ),
    ),
    "intensity": (
        "the carbon intensity a run would use now",
        "Show the carbon intensity a run started now would use, and where it comes from.",
        ("carbon-callbacks intensity --country DK", "carbon-callbacks intensity --zone GB --live"),
    ),
    "report": (
        "report on run logs: a log or a folder of them",
        "Report on run logs: each run, the totals, and what they compare with.",
        ("carbon-callbacks report carbon-runs", "carbon-callbacks report carbon-runs --table"),
    ),
    "estimate": (
        "CO2e of an energy, or of GPUs and hours, without a run",
        "Estimate the CO2e of an energy, or of GPUs run for hours, without measuring a run.",
        (
            "carbon-callbacks estimate --energy-kwh 190000 --country US",
            "carbon-callbacks estimate --gpu 'H100 SXM' --count 8 --hours 24 --zone SE-SE3",
        ),
    ),
    "plot": (
        "draw a run log: power and CO2e over time",
        "Draw a run log: power per channel and cumulative CO2e over time, with the forecasts.",
        ("carbon-callbacks plot carbon-runs/RUN.jsonl -o run.png",),
    ),
}
"""Per subcommand: its line in the command list, its one-line description, its examples."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line that points to the subcommand's ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print ``carbon-callbacks: error: ...`` and exit with status 2."""
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


class _Renamed(argparse.Action):
    """A flag that was renamed: using it fails with what to write now."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        self.new_flag, self.meaning, self.example = kwargs.pop("renamed")
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            f"{option_string} is now {self.new_flag} ({self.meaning}); "
            f"write {self.new_flag} {self.example}"
        )


def build_parser() -> tuple[OneLineParser, Mapping[str, OneLineParser]]:
    """The command line, and each subcommand's parser by name."""
    parser = OneLineParser(prog=PROG, description="Energy and carbon accounting for training.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="subcommand", parser_class=OneLineParser)
    subparsers = {name: _subcommand(commands, name) for name in _EXAMPLES}
    devices = subparsers["devices"]
    devices.add_argument("--json", action="store_true", help="print one JSON object")
    _add_run_arguments(subparsers["run"])
    _add_location_arguments(subparsers["intensity"], constant=False)
    _add_when_arguments(subparsers["when"])
    subparsers["intensity"].add_argument("--json", action="store_true", help="print JSON")
    _add_report_arguments(subparsers["report"])
    _add_estimate_arguments(subparsers["estimate"])
    plot = subparsers["plot"]
    plot.add_argument("path", help="a run log (.jsonl)")
    plot.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the figure: .png, .svg or .pdf"
    )
    return parser, subparsers


def _subcommand(commands: argparse._SubParsersAction[OneLineParser], name: str) -> OneLineParser:
    summary, description, examples = _EXAMPLES[name]
    return commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def flags_of(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each keyword a subcommand's flags set, with the flag that sets it (its long form)."""
    return {
        action.dest: max(action.option_strings, key=len)
        for action in parser._actions
        if action.option_strings and action.help != argparse.SUPPRESS
    }


def unrecognized(parser: argparse.ArgumentParser, extras: Sequence[str]) -> str:
    """The error for arguments a subcommand does not take, with the closest flag when one is."""
    options = [extra for extra in extras if extra.startswith("-")]
    if not options:
        return f"unrecognized arguments: {' '.join(extras)}"
    given = options[0].split("=")[0]
    known = [flag for action in parser._actions for flag in action.option_strings]
    close = difflib.get_close_matches(given, known, n=1, cutoff=0.6)
    suggestion = f"; did you mean {close[0]}?" if close else ""
    return f"unrecognized option {given}{suggestion}"


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument(
        "--output-dir", metavar="D", help="folder of the run log (default carbon-runs)"
    )
    run.add_argument("--no-log", action="store_true", help="write no run log")
    _add_location_arguments(run, constant=True)
    run.add_argument("--pue", type=float, help="data-centre PUE, >= 1.0 (default 1.0)")
    run.add_argument(
        "--cpu-watts-per-core",
        dest="cpu_watts",
        type=float,
        metavar="W",
        help=(
            "watts per busy core, for the CPU estimate when RAPL is not readable (default: the"
            " CPU's TDP / cores from an embedded table, else 12)"
        ),
    )
    run.add_argument(
        "--cpu-watts",
        action=_Renamed,
        renamed=("--cpu-watts-per-core", "watts per busy core", "12"),
    )
    run.add_argument(
        "--interval", dest="interval_s", type=float, metavar="S", help="sampling interval, s"
    )
    run.add_argument(
        "--start-cleaner",
        action="store_true",
        help="wait for the start with the lowest forecast intensity (needs a location and "
        "--hours or --like; the run then uses live data)",
    )
    _add_plan_arguments(run)
    run.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")


def _add_when_arguments(when: argparse.ArgumentParser) -> None:
    _add_plan_arguments(when)
    when.add_argument(
        "--energy-kwh",
        type=float,
        metavar="E",
        help="the run's energy, kWh: gives the CO2e (over the energy of --like's log)",
    )
    _add_location_arguments(when, constant=False, live=False)
    when.add_argument("--json", action="store_true", help="print one JSON object")


def _add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """How long the run takes and how long it may wait: for ``when`` and ``run --start-cleaner``."""
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--hours", type=float, metavar="H", help="the run's expected length, hours")
    size.add_argument(
        "--like", metavar="RUN.jsonl", help="take the length and energy of an earlier run's log"
    )
    parser.add_argument(
        "--within",
        type=float,
        metavar="W",
        help="start within W hours from now (default: as far as the forecast reaches)",
    )


def _add_report_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("path", help="a run log (.jsonl) or a folder searched for them")
    output = report.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--table", action="store_true", help="print one line per run")
    output.add_argument("--csv", action="store_true", help="print one CSV row per run")
    output.add_argument("--paper", action="store_true", help="print a paragraph for a paper")
    output.add_argument(
        "--model-card", action="store_true", help="print a Hugging Face co2_eq_emissions block"
    )
    output.add_argument(
        "--html",
        metavar="OUT.html",
        help="write the report as one self-contained web page (charts, sortable table)",
    )
    report.add_argument(
        "--training-type",
        choices=["pre-training", "fine-tuning"],
        default="pre-training",
        help="for --model-card (default pre-training)",
    )
    report.add_argument(
        "--compare", metavar="C,C", default="", help="countries to compare with, e.g. SE,PL"
    )
    report.add_argument(
        "--estimate", metavar="FILE", help="an estimate saved by 'estimate --save', shown beside"
    )
    _add_car_arguments(report)


def _add_estimate_arguments(estimate: argparse.ArgumentParser) -> None:
    energy = estimate.add_mutually_exclusive_group(required=True)
    energy.add_argument("--energy-kwh", type=float, metavar="X", help="energy at the devices, kWh")
    energy.add_argument("--gpu", metavar="NAME", help="GPU model, e.g. 'H100 SXM' or L40S")
    estimate.add_argument("--count", type=int, metavar="N", help="number of GPUs (default 1)")
    estimate.add_argument("--hours", type=float, metavar="H", help="wall-clock hours (with --gpu)")
    estimate.add_argument(
        "--utilization",
        type=float,
        metavar="U",
        help="average fraction of board power drawn, in (0, 1] (default 1.0: an upper bound)",
    )
    estimate.add_argument(
        "--host-watts",
        dest="cpu_watts",
        type=float,
        metavar="W",
        help="average power of the rest of the machine (CPUs, memory...), W (with --gpu)",
    )
    estimate.add_argument(
        "--cpu-watts",
        action=_Renamed,
        renamed=("--host-watts", "the average power of the rest of the machine", "400"),
    )
    where = estimate.add_mutually_exclusive_group(required=True)
    where.add_argument("--country", metavar="C", help="ISO country code, e.g. SE or SWE")
    where.add_argument("--zone", metavar="Z", help="grid zone, e.g. DK-DK1, US-CAL-CISO")
    where.add_argument(
        "--intensity",
        dest="intensity_g_per_kwh",
        type=float,
        metavar="G_PER_KWH",
        help="constant gCO2e/kWh",
    )
    estimate.add_argument("--pue", type=float, default=1.0, help="data-centre PUE (default 1.0)")
    estimate.add_argument("--json", action="store_true", help="print one JSON object")
    estimate.add_argument("--save", metavar="FILE", help="also write the estimate as JSON here")
    _add_car_arguments(estimate)


def _add_car_arguments(parser: argparse.ArgumentParser) -> None:
    car = parser.add_mutually_exclusive_group()
    car.add_argument(
        "--car-baseline",
        choices=["2023", "2018"],
        default="2023",
        help="EEA average new-car CO2 for the car distance: 2023 (106.4 g/km, WLTP; default) or "
        "2018 (120.4 g/km, NEDC, as in older published comparisons)",
    )
    car.add_argument(
        "--car-g-per-km", dest="g_per_km", type=float, metavar="G", help="your own car gCO2/km"
    )


def _add_location_arguments(
    parser: argparse.ArgumentParser, *, constant: bool, live: bool = True
) -> None:
    """The location and intensity flags, one per option of ``IntensitySettings`` that has one.

    Args:
        parser: The subcommand's parser.
        constant: Whether to offer the constant intensity (``--intensity``) too.
        live: Whether to offer ``--live`` (``when`` always reads live forecasts).
    """
    from carbon_callbacks.intensity.settings import OPTIONS

    for option in OPTIONS:
        if option.flag is None or (option.kind == "number" and not constant):
            continue
        if option.kind == "switch" and not live:
            continue
        if option.kind == "switch":
            parser.add_argument(
                option.flag, dest=option.keyword, action="store_true", help=option.help
            )
        else:
            parser.add_argument(
                option.flag,
                dest=option.keyword,
                type=float if option.kind == "number" else str,
                metavar=option.metavar,
                choices=option.choices,
                help=option.help,
            )
