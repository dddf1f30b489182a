"""The ``carbon-callbacks`` command (also ``python -m carbon_callbacks``).

- ``devices [--json]``: what this machine can measure and how; what it cannot, why, and the fix.
- ``run [options] -- CMD ARGS...``: run a command, measure it as one window, print a summary,
  write a run log, and exit with the command's own exit status. ``--start-cleaner`` first waits
  for the start ``when`` would choose (SIGTERM or Ctrl-C while waiting: 143 or 130 at once).
- ``intensity [location] [--live] [--json]``: the carbon intensity a run started now would use,
  and where it comes from.
- ``report PATH [--json | --table | --csv | --paper | --model-card | --html OUT.html]
  [--compare SE,PL] [--estimate FILE]``: what the run logs at PATH (a log, or a folder of them)
  say: each run, the totals, equivalents; ``--table`` and ``--csv`` give one line per run;
  ``--html`` writes one self-contained page (charts, sortable table) and prints its path.
- ``estimate (--energy-kwh X | --gpu NAME --count N --hours H) (--country C | --zone Z |
  --intensity G) [--pue P] [--json] [--save FILE]``: CO2e of an energy, or of hardware and hours,
  without a run; labelled estimated, with its assumptions.
- ``when --hours H [--within W] (location) [--energy-kwh E | --like RUN.jsonl] [--json]``: the
  start within W hours whose run meets the lowest forecast intensity, against starting now
  (``cli_when``; ``run --start-cleaner`` waits for that start, then runs the command).
- ``plot PATH -o FILE.png``: a run log as a figure: power per channel and cumulative CO2e with
  the forecasts made during the run, over time; exit status 1 when the log holds no samples.
  Needs the ``plot`` extra (matplotlib).

The flags are declared in ``cli_parser``; ``cli_words`` words library messages in those flags
and shows warnings as one plain line. With no subcommand the help is printed.

Bad input gets a one-line error on stderr (a misspelled flag with the closest one) and exit
status 2; a command that cannot be started gets
127 (not found) or 126 (found but not executable), as a shell would. A reader that goes away
(``| head``) ends the output quietly, with the status of a process ended by SIGPIPE (141).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from carbon_callbacks.cli_parser import MADE_BY_RUN, PROG, build_parser, flags_of, unrecognized
from carbon_callbacks.cli_words import (
    advice_in_flags,
    in_flags,
    nvidia_present,
    one_line,
    plain_warnings,
    without_needless_fixes,
)

if TYPE_CHECKING:
    from carbon_callbacks.intensity.settings import IntensitySettings
    from carbon_callbacks.reporting.equivalents import CarBaseline
    from carbon_callbacks.tracking.measurement import Measurement
    from carbon_callbacks.tracking.tracker import RunStatus, Tracker


def _intensity_settings(args: argparse.Namespace) -> IntensitySettings:
    """The location and intensity flags given, merged with their variables and checked.

    An on/off flag left off is not given (its variable decides), as an option left out is.

    Raises:
        ValueError, TypeError: As ``intensity_settings`` does.
    """
    from carbon_callbacks.intensity.resolve import intensity_settings
    from carbon_callbacks.intensity.settings import OPTIONS

    given = {
        option.keyword: getattr(args, option.keyword) or None
        if option.kind == "switch"
        else getattr(args, option.keyword)
        for option in OPTIONS
        if hasattr(args, option.keyword)
    }
    return intensity_settings(**given)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the process exit status."""
    try:
        status = _dispatch(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # a reader gone away shows here, not as a traceback at exit
    except BrokenPipeError:
        # What Unix tools do under `| head`: stop writing, say nothing. Later writes (the
        # interpreter's flush at exit) go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return status


def _dispatch(argv: list[str]) -> int:
    parser, subparsers = build_parser()
    args, extras = parser.parse_known_args(argv)
    if args.subcommand is None:
        print(parser.format_help(), end="")
        return 0
    subparser = subparsers[args.subcommand]
    if extras:
        subparser.error(unrecognized(subparser, extras))
    # devices has no flags of its own: its texts name the run's (the CPU estimate's watts)
    args.flags = flags_of(subparsers["run"] if args.subcommand == "devices" else subparser)
    with plain_warnings(args.flags):
        if args.subcommand == "devices":
            return _devices(as_json=args.json, flags=args.flags)
        if args.subcommand == "intensity":
            return _intensity(args)
        if args.subcommand == "report":
            return _report(args, run_flags=flags_of(subparsers["run"]))
        if args.subcommand == "estimate":
            return _estimate(args)
        if args.subcommand == "plot":
            return _plot(args)
        if args.subcommand == "when":
            from carbon_callbacks.cli_when import when

            return when(args)
        return _run(args)


def _devices(*, as_json: bool, flags: Mapping[str, str]) -> int:
    from carbon_callbacks.meters.defaults import default_meters
    from carbon_callbacks.reporting.text import format_devices
    from carbon_callbacks.tracking.config import resolve_config
    from carbon_callbacks.tracking.sampler import Sampler

    config = resolve_config(write_log=False)
    sampler = Sampler(
        default_meters(
            gpu_ids=config.gpu_ids, powercap_root=config.powercap_root, cpu_watts=config.cpu_watts
        )
    )
    sampler.open()
    sampler.stop()
    unavailable = without_needless_fixes(sampler.unavailable, nvidia=nvidia_present())
    if as_json:
        report = {
            "channels": [channel.to_dict() for channel in sampler.channels],
            "unavailable": [item.to_dict() for item in unavailable],
        }
        print(json.dumps(report, indent=2))
    else:
        print(in_flags("\n".join(format_devices(sampler.channels, unavailable)), flags))
    return 0


def _intensity(args: argparse.Namespace) -> int:
    import time
    import warnings

    from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
    from carbon_callbacks.intensity.resolve import resolve
    from carbon_callbacks.reporting.text import format_intensity

    try:
        resolution = resolve(_intensity_settings(args))
    except (TypeError, ValueError) as error:
        return _fail(one_line(error, args.flags), 2)
    now = time.time()
    value, slot_start = resolution.static, None
    if resolution.cloud is not None:  # no location given, and DMI names a cloud vendor
        from carbon_callbacks.intensity.located import CloudLocated

        located = CloudLocated(resolution.cloud, resolution.static)
        located.start()
        value = located.settle()
    if resolution.live is not None:
        from carbon_callbacks.intensity.live import LiveIntensity

        live = LiveIntensity(resolution.live, resolution.static, attempts=2, backoff_s=1.0)
        with warnings.catch_warnings():  # the failure is printed below, as the fallback's reason
            warnings.simplefilter("ignore", CarbonCallbacksWarning)
            live.refresh()
        value = live.intensity(now, now)
        slot = live.slot_at(now)
        slot_start = None if slot is None else slot.start_unix
    if args.json:
        report = value.to_dict() | {
            "datetime": None
            if slot_start is None
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(slot_start)),
            "attribution": _attribution(value.source),
        }
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(format_intensity(value, slot_start, _attribution(value.source))))
    return 0


def _attribution(source: str) -> str | None:
    from carbon_callbacks.intensity import static

    if static.OWID_SOURCE in source:
        return static.OWID_ATTRIBUTION
    if static.GOOGLE_SOURCE in source:
        return static.GOOGLE_ATTRIBUTION
    return None


def _run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        return _fail(
            "run needs a command after --, e.g. carbon-callbacks run -- python train.py", 2
        )
    if shutil.which(command[0]) is None:
        path = command[0]
        if os.sep in path and os.path.exists(path):  # found, as a shell would, but not runnable
            reason = "is a directory" if os.path.isdir(path) else "not executable (chmod +x it)"
            return _fail(f"cannot start {path!r}: {reason}", 126)
        return _fail(f"cannot start {path!r}: command not found", 127)

    from carbon_callbacks.tracking.tracker import Tracker

    context: dict[str, object] = {"made_by": MADE_BY_RUN}
    if args.start_cleaner:
        from carbon_callbacks.cli_when import PlanError, plan_start, wait_for

        try:
            plan = plan_start(args)
        except PlanError as error:
            return _fail(str(error), error.status)
        context["deferred_start"] = plan.record()
    elif not all(getattr(args, name) is None for name in ("hours", "like", "within")):
        return _fail("--hours, --like and --within go with --start-cleaner; add it", 2)
    try:
        settings = _intensity_settings(args)
        tracker = Tracker(
            # A deferred run meets the live grid: its figures are what the forecast is judged by.
            intensity_settings=dataclasses.replace(settings, live=True)
            if args.start_cleaner
            else settings,
            context=context,
            pue=args.pue,
            cpu_watts=args.cpu_watts,
            interval_s=args.interval_s,
            output_dir=args.output_dir,
            write_log=False if args.no_log else None,
            run_name=shlex.join(command),
            handle_sigterm=False,  # passed on to the command, whose exit says how the run ended
        )
    except (TypeError, ValueError) as error:
        return _fail(one_line(error, args.flags), 2)
    if args.start_cleaner:
        stopped = wait_for(plan)
        if stopped is not None:
            return stopped
    tracker.start()
    try:
        child = subprocess.Popen(command, stdout=sys.stderr.fileno() if args.json else None)
    except OSError as error:
        tracker.stop("failed")
        return _fail(f"cannot start {command[0]!r}: {error.strerror or error}", 126)
    returncode = _wait_forwarding_signals(child)
    interrupted = returncode < 0 and -returncode in (signal.SIGINT, signal.SIGTERM)
    status: RunStatus = (
        "completed" if returncode == 0 else "interrupted" if interrupted else "failed"
    )
    summary = tracker.stop(status)
    exit_code = returncode if returncode >= 0 else 128 - returncode
    if summary is not None:
        _print_summary(args, command, summary, tracker, exit_code, status)
    return exit_code


def _wait_forwarding_signals(child: subprocess.Popen[bytes]) -> int:
    """Wait for the child; pass SIGTERM on to it, and let it alone decide what Ctrl-C means."""

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous_term = signal.signal(signal.SIGTERM, forward)
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def _print_summary(
    args: argparse.Namespace,
    command: list[str],
    summary: Measurement,
    tracker: Tracker,
    exit_code: int,
    status: str,
) -> None:
    from carbon_callbacks.reporting.text import format_measurement

    log_path = None if tracker.log_path is None else str(tracker.log_path)
    if args.json:
        report = summary.to_dict() | {
            "run_id": tracker.run_id,
            "command": command,
            "exit_code": exit_code,
            "status": status,
            "log_path": log_path,
            "unavailable": [unavailable.to_dict() for unavailable in tracker.unavailable],
        }
        print(json.dumps(report, indent=2))
        return
    # Only the figures' advice is put in flags: the command and the path are shown as they are.
    lines = [
        f"{PROG}: {shlex.join(command)} {status} (exit status {exit_code})",
        in_flags("\n".join(format_measurement(summary)), args.flags),
    ]
    if log_path is not None:
        lines.append(f"run log:  {log_path}")
    print("\n".join(lines), file=sys.stderr)


def _report(args: argparse.Namespace, *, run_flags: Mapping[str, str]) -> int:
    from carbon_callbacks.reporting.equivalents import check_countries
    from carbon_callbacks.reporting.estimate import load_estimate
    from carbon_callbacks.reporting.export import model_card_block, paper_paragraph
    from carbon_callbacks.reporting.report import build_report
    from carbon_callbacks.reporting.report_json import report_dict
    from carbon_callbacks.reporting.table import report_csv, report_table
    from carbon_callbacks.reporting.text import format_report

    compare = [code.strip() for code in args.compare.split(",") if code.strip()]
    if args.html is not None:
        return _report_html(args, compare)
    try:
        car = _car(args)
        check_countries(compare)
        estimate = None if args.estimate is None else load_estimate(args.estimate)
        report = build_report(args.path)
        if args.model_card:
            text = model_card_block(report, args.training_type)
        elif args.table:
            text = "\n".join(report_table(report))
        elif args.csv:
            text = report_csv(report).removesuffix("\n")
        elif args.paper:
            text = paper_paragraph(report, car)
        elif args.json:
            result = report_dict(report, compare=compare, car=car, estimate=estimate)
            text = json.dumps(result, indent=2, ensure_ascii=False)
        else:
            report = advice_in_flags(report, MADE_BY_RUN, run_flags)
            lines = format_report(report, compare=compare, car=car, estimate=estimate)
            text = "\n".join(lines)
    except (OSError, ValueError) as error:
        return _fail(one_line(error, args.flags), 2)
    print(text)
    return 0


def _report_html(args: argparse.Namespace, compare: Sequence[str]) -> int:
    """``report --html``: write the page atomically and print the path written."""
    from carbon_callbacks.reporting.equivalents import check_countries
    from carbon_callbacks.reporting.html.page import write_html_report

    if args.estimate is not None:
        return _fail("--estimate is not shown in the --html page; leave one of them out", 2)
    output = Path(args.html)
    if output.is_dir():
        return _fail(f"--html {args.html} is a folder; give a file name, e.g. report.html", 2)
    if not output.parent.is_dir():
        return _fail(f"--html {args.html}: the folder {output.parent} does not exist", 2)
    try:
        check_countries(compare)
        written = write_html_report(args.path, output, compare=compare)
    except OSError as error:
        return _fail(f"--html {args.html}: cannot write ({error.strerror or error})", 2)
    except ValueError as error:
        return _fail(one_line(error, args.flags), 2)
    print(f"wrote {written}")
    return 0


def _estimate(args: argparse.Namespace) -> int:
    from carbon_callbacks.intensity.resolve import intensity_settings, resolve
    from carbon_callbacks.reporting.estimate import estimate_of
    from carbon_callbacks.reporting.text import format_estimate

    try:
        car = _car(args)
        settings = intensity_settings(
            intensity_g_per_kwh=args.intensity_g_per_kwh,
            country=args.country,
            zone=args.zone,
            environ={},
        )
        intensity = resolve(settings, environ={}).static
        estimate = estimate_of(
            intensity,
            energy_kwh=args.energy_kwh,
            gpu=args.gpu,
            count=args.count,
            hours=args.hours,
            utilization=args.utilization,
            cpu_watts=args.cpu_watts,
            pue=args.pue,
            car=car,
        )
        report = estimate.to_dict()
        if args.save is not None:
            with open(args.save, "w", encoding="utf-8") as file:
                json.dump(report, file, indent=2)
                file.write("\n")
    except (OSError, TypeError, ValueError) as error:
        return _fail(one_line(error, args.flags), 2)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(format_estimate(estimate)))
    return 0


def _car(args: argparse.Namespace) -> CarBaseline:
    from carbon_callbacks.reporting.equivalents import CAR_BASELINES, custom_car

    if args.g_per_km is not None:
        return custom_car(args.g_per_km)
    return CAR_BASELINES[args.car_baseline]


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


# -- plot ------------------------------------------------------------------------------------------


def _plot(args: argparse.Namespace) -> int:
    """Draw the run log; exit 1 when it has nothing to draw, 2 on bad input or no matplotlib."""
    from carbon_callbacks.reporting.plot import NothingToPlot, PlotUnavailable, plot_run_log

    try:
        log = plot_run_log(args.path, args.output)
    except NothingToPlot as error:
        return _fail(str(error), 1)
    except (OSError, ValueError, PlotUnavailable) as error:
        return _fail(one_line(error, args.flags), 2)
    from carbon_callbacks.reporting.text import printable

    for problem in log.problems:
        print(printable(f"{PROG}: {args.path}: {problem}"), file=sys.stderr)
    print(f"wrote {args.output}")
    return 0
