"""The ``carbon-callbacks`` command (also ``python -m carbon_callbacks``).

- ``devices [--json]``: what this machine can measure and how; what it cannot, why, and the fix.
- ``run [options] -- CMD ARGS...``: run a command, measure it as one window, print a summary,
  write a run log, and exit with the command's own exit status.
- ``intensity [location] [--live] [--json]``: the carbon intensity a run started now would use,
  and where it comes from.

Bad input gets a one-line error on stderr and exit status 2; a command that cannot be started gets
127 (not found) or 126 (not executable), as a shell would.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from carbon_callbacks._version import __version__

if TYPE_CHECKING:
    from carbon_callbacks.measurement import Measurement
    from carbon_callbacks.tracker import RunStatus, Tracker

PROG = "carbon-callbacks"


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        """Print ``carbon-callbacks: error: ...`` and exit with status 2."""
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog=PROG, description="Energy and carbon accounting for training.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="subcommand", required=True, parser_class=_OneLineParser)
    devices = commands.add_parser("devices", help="what can be measured here, and how")
    devices.add_argument("--json", action="store_true", help="print one JSON object")
    run = commands.add_parser("run", help="run and measure a command: run [options] -- CMD ARGS...")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument(
        "--output-dir", metavar="D", help="folder of the run log (default carbon-runs)"
    )
    run.add_argument("--no-log", action="store_true", help="write no run log")
    run.add_argument(
        "--intensity", type=float, metavar="G_PER_KWH", help="constant gCO2e/kWh (overrides all)"
    )
    _add_location_arguments(run)
    run.add_argument("--pue", type=float, help="data-centre PUE, >= 1.0 (default 1.0)")
    run.add_argument("--cpu-watts", type=float, metavar="W", help="watts per busy core (estimate)")
    run.add_argument("--interval", type=float, metavar="S", help="sampling interval in seconds")
    run.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    intensity = commands.add_parser("intensity", help="the carbon intensity a run would use now")
    _add_location_arguments(intensity)
    intensity.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _add_location_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--country", metavar="C", help="ISO country code, e.g. SE or SWE")
    parser.add_argument("--zone", metavar="Z", help="grid zone, e.g. DK-DK1, GB, US-CAL-CISO")
    parser.add_argument("--cloud", choices=["gcp", "aws", "azure"], help="cloud provider")
    parser.add_argument("--region", metavar="R", help="cloud region, e.g. eu-north-1")
    parser.add_argument("--uk-postcode", metavar="PC", help="outward UK postcode, e.g. RG10")
    parser.add_argument("--live", action="store_true", help="use live grid data for the zone")


def _location_kwargs(args: argparse.Namespace) -> dict[str, object]:
    return {
        "country": args.country,
        "zone": args.zone,
        "cloud": args.cloud,
        "region": args.region,
        "uk_postcode": args.uk_postcode,
        "live": True if args.live else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the process exit status."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.subcommand == "devices":
        return _devices(as_json=args.json)
    if args.subcommand == "intensity":
        return _intensity(args)
    return _run(args)


def _devices(*, as_json: bool) -> int:
    from carbon_callbacks.config import resolve_config
    from carbon_callbacks.display import format_devices
    from carbon_callbacks.sampler import Sampler
    from carbon_callbacks.tracker import default_meters

    sampler = Sampler(default_meters(resolve_config(write_log=False)))
    sampler.open()
    sampler.stop()
    if as_json:
        report = {
            "channels": [
                {"id": c.id, "kind": c.kind, "device": c.device, "method": c.method, "how": c.how}
                for c in sampler.channels
            ],
            "unavailable": [
                {"source": u.source, "reason": u.reason, "fix": u.fix} for u in sampler.unavailable
            ],
        }
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(format_devices(sampler.channels, sampler.unavailable)))
    return 0


def _intensity(args: argparse.Namespace) -> int:
    import time
    import warnings

    from carbon_callbacks._warnings import CarbonCallbacksWarning
    from carbon_callbacks.display import format_intensity
    from carbon_callbacks.intensity.resolve import intensity_settings, resolve

    try:
        resolution = resolve(intensity_settings(**_location_kwargs(args)))  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        return _fail(str(error), 2)
    now = time.time()
    value, slot_start = resolution.static, None
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
        return _fail(f"cannot start {command[0]!r}: command not found", 127)

    from carbon_callbacks.tracker import Tracker

    try:
        tracker = Tracker(
            intensity_g_per_kwh=args.intensity,
            **_location_kwargs(args),  # type: ignore[arg-type]
            pue=args.pue,
            cpu_watts=args.cpu_watts,
            interval_s=args.interval,
            output_dir=args.output_dir,
            write_log=False if args.no_log else None,
            run_name=shlex.join(command),
        )
    except (TypeError, ValueError) as error:
        return _fail(str(error), 2)
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
    from carbon_callbacks.display import format_measurement

    log_path = None if tracker.log_path is None else str(tracker.log_path)
    if args.json:
        report = summary.to_dict() | {
            "run_id": tracker.run_id,
            "command": command,
            "exit_code": exit_code,
            "status": status,
            "log_path": log_path,
            "unavailable": [
                {"source": u.source, "reason": u.reason, "fix": u.fix} for u in tracker.unavailable
            ],
        }
        print(json.dumps(report, indent=2))
        return
    lines = [f"{PROG}: {shlex.join(command)} {status} (exit status {exit_code})"]
    lines += format_measurement(summary)
    if log_path is not None:
        lines.append(f"run log:  {log_path}")
    print("\n".join(lines), file=sys.stderr)


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code
