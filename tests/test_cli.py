from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from carbon_callbacks import read_run_log
from carbon_callbacks.intensity.providers.uk import URL_ENV as UK_URL_ENV
from carbon_callbacks.meters.cpu_estimate import watts_per_core_for
from carbon_callbacks.meters.cpu_models import read_cpuinfo
from tests.intensity.uk_payloads import national

ROOT = Path(__file__).resolve().parents[1]
BUSY_CPU_S = 1.0
BUSY_THEN_EXIT_3 = """
import time
print('from the child')
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
raise SystemExit(3)
"""


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "carbon_callbacks", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_devices_says_what_is_measured_and_what_is_estimated(powercap: object) -> None:
    result = cli("devices", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ids = {c["id"]: c for c in report["channels"]}
    assert ids["cpu:package-0"]["method"] == "measured"
    assert "gpu" not in {c["kind"] for c in report["channels"]} or os.path.exists("/dev/nvidia0")
    human = cli("devices")
    assert "cpu:package-0" in human.stdout and "Not usable:" in human.stdout


def test_devices_on_a_machine_without_rapl_reports_the_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "nothing"))
    result = cli("devices", "--json")
    report = json.loads(result.stdout)
    estimate = next(c for c in report["channels"] if c["id"] == "cpu:estimate")
    assert estimate["method"] == "estimated"
    assert "per busy core" in estimate["how"]
    assert any(u["source"] == "rapl" for u in report["unavailable"])
    human = cli("devices").stdout
    assert "estimated" in human and "rapl:" in human


def test_run_json_reports_the_command_and_exits_with_its_status(tmp_path: Path) -> None:
    result = cli(
        "run",
        "--json",
        "--output-dir",
        str(tmp_path),
        "--intensity",
        "300",
        "--",
        sys.executable,
        "-c",
        BUSY_THEN_EXIT_3,
    )
    assert result.returncode == 3
    assert "from the child" in result.stderr  # the child's stdout goes to stderr with --json
    report = json.loads(result.stdout)
    assert report["exit_code"] == 3 and report["status"] == "failed"
    assert report["duration_s"] > 0
    assert report["energy_kwh"] is not None and report["energy_kwh"] > 0
    assert report["co2e_kg"] == report["energy_kwh"] * 300 / 1000
    assert {"id", "kind", "method", "energy_j"} <= set(report["channels"][0])
    assert report["mean_power_w"] == pytest.approx(report["energy_j"] / report["duration_s"])
    log = read_run_log(report["log_path"])
    assert log.summary is not None and log.summary["status"] == "failed"
    assert log.summary["mean_power_w"] == report["mean_power_w"] and not log.problems


def test_run_human_summary_says_the_cpu_figure_is_estimated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "nothing"))
    result = cli("run", "--no-log", "--", sys.executable, "-c", "print('hello')")
    assert result.returncode == 0
    assert result.stdout == "hello\n"
    assert "cpu:estimate" in result.stderr and "estimated" in result.stderr
    assert "run log" not in result.stderr
    assert not list(tmp_path.glob("**/*.jsonl"))


def test_run_summary_shows_the_command_as_typed_and_the_advice_in_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arguments that look like keywords (``pue=2``) are the command's own, not advice."""
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "nothing"))
    monkeypatch.setenv("TZ", "Etc/UTC")  # names no country: the figures advise setting one
    result = cli("run", "--no-log", "--", sys.executable, "-c", "pass", "pue=2", "live=True")
    assert result.returncode == 0, result.stderr
    first, *figures = result.stderr.splitlines()
    assert (
        first
        == f"carbon-callbacks: {sys.executable} -c pass pue=2 live=True completed (exit status 0)"
    )
    shown = "\n".join(figures)
    assert "set --country, --zone or --cloud and --region" in shown
    assert "country=" not in shown


def test_report_words_a_cli_runs_advice_in_flags_and_a_python_runs_in_keywords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The advice kept in a log is the library's (``set country=``); ``report`` shows it as the
    flags for a run that ``carbon-callbacks run`` made, and leaves the command's words alone."""
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "nothing"))
    monkeypatch.setenv("TZ", "Etc/UTC")  # names no country: the figures advise setting one
    made = cli("run", "--output-dir", str(tmp_path), "--", sys.executable, "-c", "pass", "pue=2")
    assert made.returncode == 0, made.stderr
    (path,) = tmp_path.glob("*.jsonl")
    header = read_run_log(path).header
    assert header is not None and header["context"] == {"made_by": "carbon-callbacks run"}
    code = "from carbon_callbacks import Tracker\nwith Tracker(run_name='script'): pass"
    script = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(ROOT)}
    )
    assert script.returncode == 0
    shown = cli("report", str(tmp_path)).stdout
    cli_run, python_run = shown.split("\nrun 'script'")
    assert f"run '{sys.executable} -c pass pue=2'" in cli_run
    assert "set --country, --zone or --cloud and --region" in cli_run
    assert "country=" not in cli_run
    assert "set country=, zone= or cloud= and region=" in python_run
    runs = json.loads(cli("report", str(tmp_path), "--json").stdout)["runs"]
    assert [run["made_by"] for run in runs] == ["carbon-callbacks run", None]


def test_cpu_watts_flag_wins_over_the_cpu_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "nothing"))
    code = "import time\nwhile time.process_time() < 0.2: pass"
    args = ("run", "--json", "--no-log", "--cpu-watts-per-core", "7")
    result = cli(*args, "--", sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    (channel,) = json.loads(result.stdout)["channels"]
    assert channel["how"].endswith(" x 7 W per busy core (set by cpu_watts)")
    tick_s = 1 / os.sysconf("SC_CLK_TCK")
    assert channel["energy_j"] >= 7 * (0.2 - 2 * tick_s)


def test_busy_command_measures_more_than_a_sleeping_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The busy child spins until it has used ``BUSY_CPU_S`` of CPU time, however long a loaded
    machine makes that take: the estimate is CPU time x watts per core, so its floor is known."""
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "nothing"))
    busy = f"import time\nwhile time.process_time() < {BUSY_CPU_S}: pass"
    idle = "import time\ntime.sleep(0.5)"
    energies = {}
    for name, code in (("busy", busy), ("idle", idle)):
        result = cli("run", "--json", "--no-log", "--", sys.executable, "-c", code)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["estimated"] is True
        energies[name] = report["energy_j"]
    # the kernel accounts a reaped child's CPU time in whole clock ticks: at most one lost each
    # for user and system time
    tick_s = 1 / os.sysconf("SC_CLK_TCK")
    watts_per_core = watts_per_core_for(read_cpuinfo())[0]  # this machine's CPU's, or 12 W
    assert energies["busy"] >= watts_per_core * (BUSY_CPU_S - 2 * tick_s)
    assert energies["busy"] > 2 * energies["idle"]


def test_a_command_found_but_not_runnable_exits_126_as_in_a_shell(tmp_path: Path) -> None:
    script = tmp_path / "train.sh"
    script.write_text("#!/bin/sh\necho never\n")  # no execute bit
    (tmp_path / "folder").mkdir()
    cases = {"./train.sh": 126, "./folder": 126, "./missing.sh": 127}
    for command, code in cases.items():
        result = cli("run", "--no-log", "--", command, cwd=tmp_path)
        assert (result.returncode, result.stdout) == (code, ""), (command, result.stderr)
        assert result.stderr.startswith("carbon-callbacks: error:"), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    assert "not executable" in cli("run", "--", "./train.sh", cwd=tmp_path).stderr


def test_a_reader_that_goes_away_ends_the_output_quietly() -> None:
    """``carbon-callbacks report ... | head -1``: the pipe's reading end is closed before the
    command writes anything, so every write meets a broken pipe, however fast either side runs."""
    reading, writing = os.pipe()
    os.close(reading)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "carbon_callbacks", "report", str(RUNS)],
            stdout=writing,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            timeout=120,
        )
    finally:
        os.close(writing)
    assert result.stderr == ""
    assert result.returncode == 128 + signal.SIGPIPE


def test_bad_input_gets_one_line_and_a_nonzero_exit() -> None:
    cases = {
        ("run", "--bogus", "--", "true"): 2,
        ("run",): 2,
        ("run", "--"): 2,
        ("run", "--", "no-such-command-anywhere"): 127,
        ("frobnicate",): 2,
        ("run", "--pue", "0.5", "--", "true"): 2,
    }
    for args, code in cases.items():
        result = cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.count("\n") == 1, (args, result.stderr)
        assert result.stderr.startswith("carbon-callbacks: error:"), (args, result.stderr)
        assert result.stdout == ""


def test_sigterm_is_passed_to_the_command_and_the_run_closed_as_interrupted(
    tmp_path: Path,
) -> None:
    import signal

    env = os.environ | {"PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "carbon_callbacks", "run", "--json",
            "--output-dir", str(tmp_path), "--",
            sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    assert process.stderr.readline().strip() == "up"  # the child's stdout, sent to stderr
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    report = json.loads(stdout)
    assert report["status"] == "interrupted" and report["exit_code"] == 143
    log = read_run_log(report["log_path"])
    assert log.summary is not None and log.summary["status"] == "interrupted"


def test_intensity_for_a_country_works_offline_as_json() -> None:
    from carbon_callbacks.intensity import static

    result = cli("intensity", "--country", "dk", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    denmark = static.country("DK")
    assert report["g_per_kwh"] == denmark.g_per_kwh
    assert report["zone"] == "DK" and report["basis"] == "lifecycle"
    assert report["year"] == denmark.year and report["datetime"] is None
    assert report["estimated"] is False and report["guessed_location"] is False
    assert report["source"].startswith(static.OWID_SOURCE)
    assert report["attribution"] == static.OWID_ATTRIBUTION


def test_intensity_for_a_cloud_region_prints_its_source_and_attribution() -> None:
    result = cli("intensity", "--cloud", "gcp", "--region", "europe-north1")
    assert result.returncode == 0, result.stderr
    assert "Google Cloud region carbon data, 2025" in result.stdout
    assert "Apache License 2.0" in result.stdout


def test_intensity_without_location_says_the_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Warsaw")
    report = json.loads(cli("intensity", "--json").stdout)
    assert report["zone"] == "PL" and report["guessed_location"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--country", "Swedn"], "did you mean 'SE'"),
        (["--live", "--country", "PL"], "needs an Electricity Maps token"),
        (["--cloud", "aws"], "cloud and region go together"),
    ],
)
def test_intensity_mistakes_are_one_line_errors(args: list[str], message: str) -> None:
    result = cli("intensity", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_intensity_live_reports_the_current_half_hour(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    start = now - now % 1800
    monkeypatch.setenv(UK_URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_json(
        national((start, start + 1800, 150, None), (start + 1800, start + 3600, 150, None))
    )  # two half hours with one value: the test passes even if a half hour ends meanwhile
    result = cli("intensity", "--country", "GB", "--live", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["g_per_kwh"] == 150 and report["source"] == "UK Carbon Intensity API"
    assert report["estimated"] is True and report["basis"] == "direct"
    slot_starts = [time.gmtime(start), time.gmtime(start + 1800)]
    assert report["datetime"] in [time.strftime("%Y-%m-%dT%H:%M:%SZ", t) for t in slot_starts]
    assert report["fallback"] is None and report["attribution"] is None


def test_intensity_live_failure_falls_back_and_says_why(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UK_URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_data("down", status=503)
    result = cli("intensity", "--country", "GB", "--live")
    assert result.returncode == 0, result.stderr
    assert "UK Carbon Intensity API: HTTP 503" in result.stdout
    assert "Our World in Data" in result.stdout


# -- report and estimate ----------------------------------------------------------------------

RUNS = Path(__file__).parent / "data" / "runs"


def test_estimate_json_reproduces_the_gpt3_figure() -> None:
    result = cli(
        "estimate", "--energy-kwh", "190000", "--intensity", "447", "--car-baseline", "2018",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["estimated"] is True and report["energy_kwh"] == 190_000
    assert report["co2e_kg"] == pytest.approx(84_930.0)  # "about 85,000 kg"
    assert report["car_km"] == pytest.approx(705_398.67, rel=1e-6)  # "about 700,000 km"
    assert report["car"]["g_per_km"] == 120.4 and report["car"]["year"] == 2018
    assert report["intensity"]["g_per_kwh"] == 447
    assert report["intensity"]["source"] == "user-supplied constant"
    default_car = json.loads(
        cli("estimate", "--energy-kwh", "190000", "--intensity", "447", "--json").stdout
    )
    assert default_car["car_km"] == pytest.approx(84_930_000 / 106.4)
    own_car = cli(
        "estimate", "--energy-kwh", "1", "--intensity", "100", "--car-g-per-km", "50", "--json"
    )
    assert json.loads(own_car.stdout)["car_km"] == pytest.approx(2.0)


def test_estimate_from_hardware_saves_and_report_shows_it_beside(tmp_path: Path) -> None:
    saved = tmp_path / "estimate.json"
    result = cli(
        "estimate", "--gpu", "nvidia h100-sxm", "--count", "8", "--hours", "24",
        "--utilization", "0.5", "--host-watts", "400", "--country", "SE", "--pue", "1.2",
        "--json", "--save", str(saved),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert json.loads(saved.read_text()) == report
    device_kwh = (8 * 700 * 0.5 + 400) * 24 / 1000
    assert report["device_energy_kwh"] == pytest.approx(device_kwh)
    assert report["energy_kwh"] == pytest.approx(device_kwh * 1.2)
    assert report["intensity"]["zone"] == "SE" and report["intensity"]["basis"] == "lifecycle"
    assert report["co2e_kg"] == pytest.approx(
        device_kwh * 1.2 * report["intensity"]["g_per_kwh"] / 1000
    )
    assert report["method"] == "hardware" and report["hardware"]["gpu"]["name"] == "H100 SXM"
    assert any("8 x H100 SXM at 700 W" in line for line in report["assumptions"])
    human = cli("estimate", "--gpu", "H100 SXM", "--hours", "1", "--country", "SE")
    assert "estimated energy: 700 Wh" in human.stdout and "assumptions:" in human.stdout
    shown = cli("report", str(RUNS / "single.jsonl"), "--estimate", str(saved))
    assert shown.returncode == 0, shown.stderr
    assert "earlier estimate:" in shown.stdout and "(from hardware)" in shown.stdout
    beside = json.loads(cli("report", str(RUNS), "--json", "--estimate", str(saved)).stdout)
    assert beside["estimate"]["co2e_kg"] == pytest.approx(report["co2e_kg"])


def test_estimate_for_a_name_that_fits_several_boards_answers_with_the_range(
    tmp_path: Path,
) -> None:
    a100 = ("estimate", "--gpu", "A100", "--count", "8", "--hours", "10", "--intensity", "400")
    saved = tmp_path / "a100.json"
    result = cli(*a100, "--json", "--save", str(saved))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # 8 x 250-400 W x 10 h = 20-32 kWh, the middle 26 kWh; x 400 g/kWh = 8-12.8 kg
    for field, expected in {
        "device_energy_kwh": (20.0, 26.0, 32.0),
        "energy_kwh": (20.0, 26.0, 32.0),
        "co2e_kg": (8.0, 10.4, 12.8),
        "car_km": (8000 / 106.4, 10400 / 106.4, 12800 / 106.4),
    }.items():
        got = (report[f"{field}_low"], report[field], report[f"{field}_high"])
        assert got == pytest.approx(expected), field
    hardware = report["hardware"]
    assert hardware["gpu"] is None and hardware["name_given"] == "A100"
    assert [v["name"] for v in hardware["variants"]] == [
        "A100 SXM 40GB", "A100 SXM 80GB", "A100 PCIe 40GB", "A100 PCIe 80GB",
    ]  # fmt: skip
    assert (hardware["board_power_w_low"], hardware["board_power_w_high"]) == (250, 400)
    assert report["subject"] == "8 x A100 (250-400 W depending on the variant), 10 h"

    human = cli(*a100)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[:3] == [
        "8 x A100 (250-400 W depending on the variant), 10 h: 20-32 kWh",
        "estimated energy: 26 kWh (20-32 kWh)",
        "estimated CO2e:   10.4 kg (8-12.8 kg) at 400 gCO2e/kWh",
    ]
    assert "about 97.7 km (75.2-120 km) in a car" in lines[4]
    for variant in ("A100 SXM 40GB: 400 W", "A100 PCIe 40GB: 250 W", "A100 PCIe 80GB: 300 W"):
        assert any(line.startswith(f"  - variant {variant} (") for line in lines), variant

    shown = cli("report", str(RUNS / "single.jsonl"), "--estimate", str(saved))
    assert shown.returncode == 0, shown.stderr
    assert "earlier estimate: 26 kWh (20-32 kWh), 10.4 kg (8-12.8 kg) CO2e" in shown.stdout


def test_estimate_a100_80gb_is_the_range_over_both_80gb_boards() -> None:
    """--gpu 'A100 80GB' picked the PCIe board (300 W) though an SXM 80GB one (400 W) exists."""
    result = cli("estimate", "--gpu", "A100 80GB", "--hours", "10", "--intensity", "400", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {v["name"] for v in report["hardware"]["variants"]} == {
        "A100 SXM 80GB",
        "A100 PCIe 80GB",
    }
    assert (report["energy_kwh_low"], report["energy_kwh"], report["energy_kwh_high"]) == (
        pytest.approx((3.0, 3.5, 4.0))
    )


def test_estimate_for_an_exact_name_has_equal_ends() -> None:
    result = cli("estimate", "--gpu", "AMD Instinct MI300X", "--hours", "2", "--intensity", "100")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        "1 x MI300X (750 W), 2 h: 1.5 kWh",
        "estimated energy: 1.5 kWh",
    ]
    report = json.loads(
        cli("estimate", "--gpu", "MI300X", "--hours", "2", "--intensity", "100", "--json").stdout
    )
    assert report["energy_kwh_low"] == report["energy_kwh"] == report["energy_kwh_high"] == 1.5
    assert report["hardware"]["gpu"]["name"] == "MI300X"
    assert report["hardware"]["variants"] == [report["hardware"]["gpu"]]


def test_report_on_a_folder_prints_each_run_and_the_totals() -> None:
    result = cli("report", str(RUNS), "--compare", "SE,PL")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.count("run 'ddp': completed, 2 of 2 ranks combined") == 1
    assert "run 'truncated': unfinished" in text and "no summary record" in text
    assert "run 'sweep lr=1e-2': failed" in text
    assert "forecast, first: at step 50 of 100" in text
    assert "in Sweden (" in text and "in Poland (" in text
    assert "totals over 7 runs:" in text
    assert "truncated last record" in text  # the reader's problems are shown, not fatal


def test_report_json_of_one_log() -> None:
    result = cli("report", str(RUNS / "single.jsonl"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (run,) = report["runs"]
    assert run["status"] == "completed" and run["figures"]["pue"] == 1.2
    assert run["figures"]["intensity"]["zone"] == "DE"
    assert run["car_km"] == pytest.approx(run["figures"]["co2e_kg"] * 1000 / 106.4)
    assert report["totals"]["runs"] == 1


def test_report_exports_a_paragraph_and_a_model_card_block() -> None:
    paper = cli("report", str(RUNS / "ddp"), "--paper")
    assert paper.returncode == 0, paper.stderr
    assert paper.stdout.startswith("Training used ") and paper.stdout.count("\n") == 1
    card = cli("report", str(RUNS / "ddp"), "--model-card", "--training-type", "fine-tuning")
    assert card.returncode == 0, card.stderr
    lines = card.stdout.splitlines()
    assert lines[0] == "co2_eq_emissions:" and lines[1].startswith("  emissions: ")
    assert '  training_type: "fine-tuning"' in lines
    assert '  hardware_used: "2 x NVIDIA H100 80GB HBM3, 1 CPU package"' in lines


def test_report_and_estimate_bad_input_gets_one_line_and_exit_2(tmp_path: Path) -> None:
    not_json = tmp_path / "estimate.json"
    not_json.write_text("{")
    cases = {
        ("report", str(tmp_path / "missing")): "no such file or folder",
        ("report", str(tmp_path)): "no run logs",
        ("report", str(RUNS), "--compare", "SWD"): "did you mean",
        ("report", str(RUNS), "--estimate", str(not_json)): "is not JSON",
        ("report", str(RUNS), "--estimate", str(tmp_path / "none.json")): "cannot use",
        ("report", str(RUNS), "--json", "--paper"): "not allowed with",
        ("estimate", "--energy-kwh", "5"): "required",
        ("estimate", "--energy-kwh", "5", "--hours", "3", "--country", "SE"): "goes with --gpu",
        ("estimate", "--gpu", "H100 SXM", "--country", "SE"): "--gpu needs --hours",
        ("estimate", "--gpu", "H1000", "--hours", "1", "--country", "SE"): "did you mean 'H100",
        ("estimate", "--gpu", "TPU v5e", "--hours", "1", "--country", "SE"): "unknown GPU 'TPU",
        ("estimate", "--energy-kwh", "-1", "--country", "SE"): "--energy-kwh 120",
        ("estimate", "--energy-kwh", "1", "--country", "XX"): "unknown country",
        ("estimate", "--energy-kwh", "1", "--intensity", "-3"): "--intensity must be",
        ("estimate", "--energy-kwh", "1", "--zone", "SE-SE3", "--pue", "0.5"): "--pue 1.2",
    }
    for args, expected in cases.items():
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1, (args, result.stderr)
        assert result.stderr.startswith("carbon-callbacks: error:"), (args, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert result.stdout == "", args


def test_devices_json_shows_channels_as_the_run_log_header_does(
    tmp_path: Path, powercap: object
) -> None:
    devices = json.loads(cli("devices", "--json").stdout)
    run = cli("run", "--output-dir", str(tmp_path), "--", sys.executable, "-c", "pass")
    assert run.returncode == 0, run.stderr
    (log_path,) = tmp_path.glob("*.jsonl")
    header = read_run_log(log_path).header
    assert header is not None
    assert devices["channels"] == header["channels"]
    assert devices["unavailable"] == header["unavailable"]


# -- a command line that speaks in flags ---------------------------------------------------------

PUE_ERROR = (
    "carbon-callbacks: error: --pue must be >= 1 and <= 1000 (a finite number), got 0.5; "
    "write e.g. --pue 1.2\n"
)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--pue", "0.5", "--no-log", "--", "true"],
        ["estimate", "--energy-kwh", "1", "--country", "SE", "--pue", "0.5"],
    ],
    ids=["run", "estimate"],
)
def test_the_same_check_words_the_same_error_in_flags(args: list[str]) -> None:
    result = cli(*args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", PUE_ERROR)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["run", "--interval", "0", "--no-log", "--", "true"],
            "--interval must be >= 0.001 (a finite number), got 0.0; write e.g. --interval 0.1",
        ),
        (
            ["run", "--cpu-watts-per-core", "0", "--no-log", "--", "true"],
            "--cpu-watts-per-core must be > 0 and <= 10000 (a finite number), got 0.0; "
            "write e.g. --cpu-watts-per-core 10",
        ),
        (
            ["intensity", "--cloud", "aws"],
            "--cloud aws needs a region: cloud and region go together; "
            "write e.g. --region eu-north-1 with it",
        ),
        (
            ["run", "--region", "eu-north-1", "--no-log", "--", "true"],
            "--region eu-north-1 needs a cloud: cloud and region go together; "
            "write e.g. --cloud aws with it",
        ),
        (
            ["estimate", "--energy-kwh", "1", "--intensity", "-3"],
            "--intensity must be a finite number of gCO2e/kWh >= 0 and <= 1e+06 (coal is about "
            "1,000), got -3.0; write --intensity 250.0",
        ),
        (
            ["estimate", "--gpu", "H100 SXM", "--hours", "1", "--host-watts", "-1", "--zone", "SE"],
            "--host-watts must be >= 0, got -1.0; write e.g. --host-watts 200",
        ),
    ],
)
def test_errors_for_command_line_input_name_the_flag(args: list[str], expected: str) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert result.stderr == f"carbon-callbacks: error: {expected}\n"


def test_python_callers_keep_the_keyword_wording() -> None:
    from carbon_callbacks import Tracker

    with pytest.raises(ValueError, match=r"pue must be .*; write e\.g\. pue=1\.2$"):
        Tracker(pue=0.5, write_log=False)


def test_in_flags_rewrites_keywords_not_words_or_variables() -> None:
    from carbon_callbacks.cli_words import in_flags

    flags = {
        "zone": "--zone",
        "live": "--live",
        "gpu": "--gpu",
        "intensity_g_per_kwh": "--intensity",
    }
    message = (
        "live=True needs a location: write zone='DK-DK1'; CARBON_CALLBACKS_ZONE=DK-DK1 in the "
        "zone is fine; intensity_g_per_kwh overrides; gpu='H100 SXM'."
    )
    assert in_flags(message, flags) == (
        "--live needs a location: write --zone DK-DK1; CARBON_CALLBACKS_ZONE=DK-DK1 in the "
        "zone is fine; --intensity overrides; --gpu 'H100 SXM'."
    )


def test_cpu_watts_has_a_name_per_meaning_and_the_old_name_says_what_to_write() -> None:
    run = cli("run", "--cpu-watts", "12", "--", "true")
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == (
        "carbon-callbacks: error: --cpu-watts is now --cpu-watts-per-core (watts per busy core); "
        "write --cpu-watts-per-core 12 (see carbon-callbacks run --help)\n"
    )
    estimate = cli(
        "estimate", "--gpu", "L40S", "--hours", "1", "--cpu-watts", "400", "--zone", "SE"
    )
    assert estimate.returncode == 2
    assert "--cpu-watts is now --host-watts (the average power of the rest" in estimate.stderr
    assert "--cpu-watts-per-core W" in cli("run", "--help").stdout
    assert "--host-watts W" in cli("estimate", "--help").stdout


def test_a_misspelled_flag_gets_the_close_one_and_the_subcommand_help() -> None:
    result = cli("intensity", "--contry", "SE")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "carbon-callbacks: error: unrecognized option --contry; did you mean --country? "
        "(see carbon-callbacks intensity --help)\n"
    )
    far = cli("report", str(RUNS), "--zzzzzz")
    assert far.stderr == (
        "carbon-callbacks: error: unrecognized option --zzzzzz "
        "(see carbon-callbacks report --help)\n"
    )
    abbreviated = cli("run", "--no", "--", "true")  # no prefix matching: --no is not --no-log
    assert "unrecognized option --no; did you mean --no-log?" in abbreviated.stderr


def test_no_subcommand_prints_the_help_and_each_subcommand_has_examples() -> None:
    bare = cli()
    assert bare.returncode == 0 and bare.stderr == ""
    assert bare.stdout == cli("--help").stdout and "estimate" in bare.stdout
    for name in ("devices", "run", "intensity", "when", "report", "estimate", "plot"):
        text = cli(name, "--help").stdout
        description = text.split("\n\n")[1]
        assert "\n" not in description.strip(), (name, description)
        examples = text.split("examples:\n")[1].splitlines()
        assert 1 <= len(examples) <= 2 and all(
            line.startswith(f"  carbon-callbacks {name}") for line in examples
        ), (name, examples)


def test_library_warnings_are_one_plain_line(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live fetch fails in a measured run: the tracker warns, and the CLI shows it plainly."""
    monkeypatch.setenv(UK_URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_data("down", status=503)
    result = cli("run", "--zone", "GB", "--live", "--no-log", "--", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "warning" in line.lower()]
    assert warned, result.stderr
    assert all(line.startswith("carbon-callbacks: warning: ") for line in warned), warned
    assert "Warning:" not in result.stderr and ".py:" not in result.stderr


def test_warning_line_drops_the_library_prefix_and_python_form() -> None:
    from carbon_callbacks.cli_words import warning_line

    assert warning_line("carbon-callbacks: rapl: permission denied;\n set cpu_watts=") == (
        "carbon-callbacks: warning: rapl: permission denied; set cpu_watts="
    )
    assert warning_line("set cpu_watts=", {"cpu_watts": "--cpu-watts-per-core"}) == (
        "carbon-callbacks: warning: set --cpu-watts-per-core"
    )


def test_devices_offers_the_nvidia_extra_only_where_nvidia_hardware_is(tmp_path: Path) -> None:
    from carbon_callbacks.cli_words import nvidia_present, without_needless_fixes
    from carbon_callbacks.meters.base import Unavailable

    proc, dev = tmp_path / "proc", tmp_path / "dev"
    dev.mkdir()
    missing = Unavailable("nvml", "nvidia-ml-py is not installed", "pip install x[nvidia]")
    rapl = Unavailable("rapl", "no RAPL", "load intel_rapl")
    assert not nvidia_present(proc, dev)
    assert without_needless_fixes([missing, rapl], nvidia=False) == [
        Unavailable("nvml", "nvidia-ml-py is not installed", None),
        rapl,
    ]
    (dev / "nvidia0").touch()
    assert nvidia_present(proc, dev)
    (dev / "nvidia0").unlink()
    (proc / "driver" / "nvidia").mkdir(parents=True)
    assert nvidia_present(proc, dev)
    assert without_needless_fixes([missing, rapl], nvidia=True) == [missing, rapl]


def test_devices_channel_line_says_estimated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "nothing"))
    line = next(line for line in cli("devices").stdout.splitlines() if "cpu:estimate" in line)
    assert line.count("estimate") == 2, line  # the id and the method; the text does not repeat it
    # what this machine's /proc/cpuinfo gives (12 W and 'default: "AMD EPYC" is not in the CPU
    # table' on the project's VM), the keyword written as the flag that sets it
    how = watts_per_core_for(read_cpuinfo())[1].removeprefix("estimate: ")
    assert how.replace("cpu_watts=", "--cpu-watts-per-core") in line
    assert "cpu_watts" not in line


REPORT_TABLE = """\
run             status      duration  energy    CO2e     method
single          completed   0.8 s     98.1 mWh  33.8 mg  measured
truncated       unfinished  0.8 s     81.8 mWh  28.1 mg  measured
predicted       completed   0.8 s     88.4 mWh  26.5 mg  measured
sweep lr=1e-3   completed   0.8 s     81.8 mWh  2.93 mg  measured
sweep lr=3e-3   completed   0.8 s     81.8 mWh  2.93 mg  measured
sweep lr=1e-2   failed      0.4 s     40.9 mWh  1.46 mg  measured
ddp             completed   0.8 s     0.144 Wh  55.2 mg  measured
total (7 runs)              5.3 s     0.617 Wh  0.151 g  measured
"""

REPORT_CSV = """\
name,status,duration_s,energy_kwh,co2e_kg,method
single,completed,0.809735868,0.0000981333333333,0.0000337716053333,measured
truncated,unfinished,0.802491216,0.0000817777777778,0.0000281430044444,measured
predicted,completed,0.817085476,0.0000884444444444,0.0000265333333333,measured
sweep lr=1e-3,completed,0.813094743,0.0000817777777778,0.00000292928,measured
sweep lr=3e-3,completed,0.806566586,0.0000817777777778,0.00000292928,measured
sweep lr=1e-2,failed,0.404367095,0.0000408888888889,0.00000146464,measured
ddp,completed,0.813734724,0.000144,0.0000552312,measured
"""


def test_report_table_is_one_line_per_run() -> None:
    result = cli("report", str(RUNS), "--table")
    assert (result.returncode, result.stdout) == (0, REPORT_TABLE), result.stderr


def test_report_csv_is_one_row_per_run_in_fixed_units() -> None:
    import csv
    import io

    result = cli("report", str(RUNS), "--csv")
    assert (result.returncode, result.stdout) == (0, REPORT_CSV), result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    report = json.loads(cli("report", str(RUNS), "--json").stdout)
    assert [float(row["energy_kwh"]) for row in rows] == pytest.approx(
        [run["figures"]["energy_kwh"] for run in report["runs"]], rel=1e-11
    )
    assert cli("report", str(RUNS), "--table", "--csv").returncode == 2
