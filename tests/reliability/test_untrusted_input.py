"""Run logs and cache files are data, never code, and a folder given to ``report`` is a fence.

What this proves, by fuzzing the readers with Hypothesis (derandomized, so CI is reproducible) and
by hand-made hostile files:

- ``read_run_log`` raises nothing but ``OSError`` (unreadable file), whatever the bytes: random
  bytes, random JSON, deep nesting, huge numbers (``1e400``, ``10**5000``), ``NaN``/``Infinity``,
  invalid UTF-8, lone surrogates, a truncated last line, and every field of every record type of
  the committed logs (``tests/data/runs``) set to a value of the wrong type;
- every line it does not file is named once in ``problems``, and what it files is well-typed:
  finite numbers, 64-bit integers, encodable text, known fields of their types;
- the ``report`` command (text, ``--json``, ``--paper``, ``--model-card``) on any such log ends
  with exit status 0 and output (strict JSON for ``--json``) or status 2 and one error line:
  never a traceback;
- strings that look like code (Python, shell, YAML tags, a pickle) come back as the same strings
  and run nothing (a payload that would create a marker file does not);
- ``report`` reads no file outside the folder it is given: a ``*.jsonl`` link pointing out, a
  linked subfolder and a FIFO are skipped and said; a link to a log inside is read once;
- intensity cache files with NaN, infinities, negative intensities, empty or reversed slots,
  wrong types or deep nesting are refused (``load`` returns None), and no zone name can place a
  cache file outside the cache folder.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import pickle
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout, suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from carbon_callbacks import cli
from carbon_callbacks.intensity.base import IntensitySlot
from carbon_callbacks.intensity.cache import CACHE_VERSION, CachedSeries, IntensityCache
from carbon_callbacks.reporting.logs import ReportError
from carbon_callbacks.reporting.plot import NothingToPlot, plot_data
from carbon_callbacks.reporting.report import Report, build_report
from carbon_callbacks.runlog.reader import RunLog, read_run_log

RUNS = Path(__file__).resolve().parents[1] / "data" / "runs"
REAL_LOGS = sorted(RUNS.rglob("*.jsonl"))
KINDS = ("header", "window", "samples", "prediction", "summary")
FUZZ = settings(
    deadline=None,
    max_examples=200,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LINE = re.compile(r"^line (\d+): ")
SKIPPED = re.compile(r"^line (\d+): .*(; skipped|truncated last record \(the run was cut off\))$")

# Raw JSON text put in place of a field: wrong types, numbers JSON allows but a log cannot hold,
# literals Python's json accepts by default, code-looking text and deep nesting.
HOSTILE_JSON = (
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1" + "0" * 5000,
    "1" + "0" * 400,
    "9223372036854775808",
    "1e308",
    "-1e308",
    "5e-324",
    "-1",
    "-0.0",
    "0",
    "1.5",
    "true",
    "null",
    '""',
    '"1.5"',
    '"NaN"',
    '"\\ud800"',
    '"\\u001b[2J"',
    "[]",
    "{}",
    "[1, 2, 3]",
    '[1, "2", 3]',
    '[[1, 2], "x", null]',
    '{"id": [1]}',
    '{"g_per_kwh": "high"}',
    '{"distributed": {"global_rank": 0, "world_size": 1000000000000, "num_nodes": 1}}',
    "\"__import__('os').system('true')\"",
    "[" * 40 + "]" * 40,
    "[" * 100_000 + "]" * 100_000,
)


# -- helpers --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per module; each example overwrites the log in it (no fixture per example)."""
    return tmp_path_factory.mktemp("fuzz")


def real_records(path: Path) -> list[dict[str, Any]]:
    """The complete records of a committed log, read without the code under test."""
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # truncated.jsonl ends in half a record
    return out


def write_log(folder: Path, data: bytes) -> Path:
    """Make ``folder`` hold exactly one log with ``data``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / "run.jsonl"
    path.write_bytes(data)
    return path


def encode(records: list[Any], raw: dict[str, str] | None = None) -> bytes:
    """JSON lines; strings ``"@@RAW<i>@@"`` are replaced by ``raw[...]`` written as is."""
    text = "".join(json.dumps(record) + "\n" for record in records)
    for key, value in (raw or {}).items():
        text = text.replace(json.dumps(key), value)
    return text.encode("utf-8", "surrogatepass")


def paths_in(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every key path in a record (list entries too), the record itself excluded."""
    items: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value[:3]))
    for key, child in items:
        yield (*prefix, key)
        yield from paths_in(child, (*prefix, key))


def replace_at(record: Any, path: tuple[str | int, ...], value: Any, *, delete: bool) -> None:
    """Set (or delete) the value at ``path`` in place."""
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


def is_clean(value: Any, depth: int = 0) -> bool:
    """Finite numbers, 64-bit integers, encodable text, string keys, all the way down."""
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return abs(value) < 2**63
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if depth > 200:
        return False
    if isinstance(value, list):
        return all(is_clean(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_clean(k) for k in value) and all(
            is_clean(item, depth + 1) for item in value.values()
        )
    return False


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_well_typed(log: RunLog) -> None:
    """What the report and the plot rely on, checked independently of the reader's own tables."""
    records = [*log.windows, *log.predictions, *log.samples]
    records += [r for r in (log.header, log.summary) if r is not None]
    for record in records:
        assert isinstance(record, dict) and is_clean(record), record
    for record in [*log.windows, *([log.summary] if log.summary else [])]:
        for name in ("start_unix", "duration_s", "pue"):
            assert name not in record or number(record[name])
        for name in ("energy_j", "energy_kwh", "co2e_kg"):
            assert record.get(name) is None or number(record[name])
        assert record.get("steps") is None or type(record["steps"]) is int
        assert record.get("intensity") is None or isinstance(record["intensity"], dict)
        channels = record.get("channels", [])
        assert isinstance(channels, list) and all(isinstance(c, dict) for c in channels)
        for channel in channels:
            assert all(isinstance(channel.get(k, ""), str) for k in ("id", "kind", "method"))
            assert channel.get("energy_j") is None or number(channel["energy_j"])
            assert channel.get("fault") is None or isinstance(channel["fault"], str)
    if log.summary is not None:
        assert isinstance(log.summary["status"], str)
    for prediction in log.predictions:
        assert number(prediction["t_unix"])
        for name in ("energy_kwh", "duration_s"):
            triple = prediction.get(name, [0, 0, 0])
            assert isinstance(triple, list) and len(triple) == 3 and all(map(number, triple))
    for samples in log.samples:
        assert all(isinstance(c, str) for c in samples["channels"])
        assert isinstance(samples["t_s"], list) and isinstance(samples["joules"], list)
    if log.header is not None:
        channels = log.header.get("channels", [])
        assert isinstance(channels, list)
        assert all(isinstance(c, dict) and isinstance(c.get("id", ""), str) for c in channels)
        assert isinstance(log.header.get("context", {}), dict)


def check_read(data: bytes, log: RunLog) -> None:
    """Each non-blank line is filed or named once as skipped; what is filed is well-typed."""
    nonblank = [n for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]
    skipped = [int(m.group(1)) for m in map(SKIPPED.match, log.problems) if m]
    assert len(skipped) == len(set(skipped)), log.problems
    assert all(LINE.match(problem) for problem in log.problems), log.problems
    filed = len(log.windows) + len(log.predictions) + len(log.samples)
    filed += (log.header is not None) + (log.summary is not None)
    assert set(skipped) <= set(nonblank)
    assert filed + len(skipped) == len(nonblank), (filed, log.problems)
    check_well_typed(log)


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``cli.main`` with stdout and stderr as strict UTF-8 streams, as a pipe or terminal is."""
    out, err = io.BytesIO(), io.BytesIO()
    out_text = io.TextIOWrapper(out, encoding="utf-8", errors="strict")
    err_text = io.TextIOWrapper(err, encoding="utf-8", errors="strict")
    with redirect_stdout(out_text), redirect_stderr(err_text):
        code = cli.main(list(argv))
    out_text.flush()
    err_text.flush()
    return code, out.getvalue().decode(), err.getvalue().decode()


def check_report_path(target: Path) -> None:
    """Every output of ``carbon-callbacks report`` ends in output or one error line."""
    for mode in ((), ("--json",), ("--paper",), ("--model-card",)):
        code, out, err = run_cli("report", str(target), *mode)
        if code == 2:
            assert out == "" and err.startswith("carbon-callbacks: error: ")
            assert err.count("\n") == 1, err
            continue
        assert code == 0 and out.strip(), (mode, err)
        if mode == ("--json",):
            json.loads(out, parse_constant=reject_constant)  # strict JSON: no NaN, no Infinity


def reject_constant(name: str) -> None:
    raise AssertionError(f"{name} in report --json output")


def read_and_report(folder: Path, data: bytes) -> RunLog:
    """The whole check on one file's bytes: reader contract, report path, plot series."""
    path = write_log(folder, data)
    log = read_run_log(path)
    check_read(data, log)
    check_report_path(folder)
    with suppress(NothingToPlot):
        plot_data(log)
    return log


# -- the run-log reader and the report path -------------------------------------------------------


@FUZZ
@given(lines=st.lists(st.binary(max_size=60), max_size=8))
@example(lines=[b"\xff\xfe", b'{"type":"window"', b"\x00"])
@example(lines=[b'{"type":"header","schema":1}\r', b"\x0b", b'{"type": "summary"}'])
def test_random_bytes_never_break_the_reader(fuzz_dir: Path, lines: list[bytes]) -> None:
    read_and_report(fuzz_dir, b"\n".join(lines))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(KINDS),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "channels", "start_unix", "name", "t_unix", "status"])
            | st.text(max_size=6),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@FUZZ
@given(records=st.lists(json_values | st.builds(lambda k: {"type": k}, st.sampled_from(KINDS))))
def test_random_json_lines_never_break_the_reader(fuzz_dir: Path, records: list[Any]) -> None:
    data = "".join(json.dumps(record) + "\n" for record in records).encode("utf-8", "surrogatepass")
    read_and_report(fuzz_dir, data)


@st.composite
def mutated_logs(draw: st.DrawFn) -> bytes:
    """A committed log with fields replaced, deleted, records dropped or repeated, and cut."""
    records = real_records(draw(st.sampled_from(REAL_LOGS)))
    raw: dict[str, str] = {}
    for index in range(draw(st.integers(1, 4))):
        record = records[draw(st.integers(0, len(records) - 1))]
        paths = list(paths_in(record))
        top_level = [path for path in paths if len(path) == 1 and path != ("type",)]
        path = draw(st.sampled_from(top_level) | st.sampled_from(paths))
        placeholder = f"@@RAW{index}@@"
        replace_at(record, path, placeholder, delete=draw(st.integers(0, 4)) == 0)
        raw[placeholder] = draw(
            st.sampled_from(HOSTILE_JSON[:-1]) | json_values.map(lambda v: json.dumps(v))
        )
    order = draw(st.lists(st.integers(0, len(records) - 1), min_size=1, max_size=12))
    data = encode(records if draw(st.booleans()) else [records[i] for i in order], raw)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


@FUZZ
@given(data=mutated_logs())
def test_mutated_real_logs_reach_deep_and_never_break(fuzz_dir: Path, data: bytes) -> None:
    read_and_report(fuzz_dir, data)


def kind_field_pairs() -> list[tuple[str, str]]:
    """Every (record type, top-level field) the committed logs hold."""
    pairs = set()
    for path in REAL_LOGS:
        for record in real_records(path):
            pairs |= {(record["type"], name) for name in record if name != "type"}
    return sorted(pairs)


def first_of_kind(kind: str) -> tuple[Path, int]:
    for path in REAL_LOGS:
        for index, record in enumerate(real_records(path)):
            if record["type"] == kind:
                return path, index
    raise AssertionError(kind)


WRONG_TYPES = {
    "str": '"x"',
    "number": "1.5",
    "list": "[1]",
    "object": '{"a": 1}',
    "true": "true",
}


@pytest.mark.parametrize(("kind", "name"), kind_field_pairs())
def test_a_wrong_type_in_any_field_is_skipped_by_name_or_harmless(
    tmp_path: Path, kind: str, name: str
) -> None:
    path, index = first_of_kind(kind)
    for wrong in WRONG_TYPES.values():
        records = real_records(path)
        original = records[index][name]
        if json.dumps(original) == wrong:
            continue
        records[index][name] = "@@RAW@@"
        data = encode(records, {"@@RAW@@": wrong})
        log = read_and_report(tmp_path / "log", data)
        named = [p for p in log.problems if f"line {index + 1}:" in p]
        assert not named or name in named[0], (wrong, named)


CORE_FIELDS = [
    ("header", "channels"),
    ("header", "started_unix"),
    ("header", "run_name"),
    ("window", "start_unix"),
    ("window", "duration_s"),
    ("window", "channels"),
    ("window", "pue"),
    ("window", "steps"),
    ("window", "intensity"),
    ("samples", "channels"),
    ("samples", "t_s"),
    ("samples", "joules"),
    ("prediction", "t_unix"),
    ("prediction", "energy_kwh"),
    ("prediction", "steps_done"),
    ("summary", "status"),
    ("summary", "energy_j"),
    ("summary", "channels"),
]


@pytest.mark.parametrize(("kind", "name"), CORE_FIELDS)
def test_core_fields_of_the_wrong_type_skip_the_line_and_name_the_field(
    tmp_path: Path, kind: str, name: str
) -> None:
    path, index = first_of_kind(kind)
    records = real_records(path)
    records[index][name] = 1.5 if isinstance(records[index][name], str) else "x"
    log = read_and_report(tmp_path / "log", encode(records))
    (problem,) = [p for p in log.problems if p.startswith(f"line {index + 1}:")]
    assert name in problem and problem.endswith("skipped"), problem


@pytest.mark.parametrize(
    "literal",
    ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "1" + "0" * 5000, "1" + "0" * 400],
)
@pytest.mark.parametrize("field", ["energy_j", "duration_s", "start_unix", "pue", "steps"])
def test_numbers_a_log_cannot_hold_skip_the_line(tmp_path: Path, literal: str, field: str) -> None:
    records = real_records(RUNS / "single.jsonl")
    index = next(i for i, r in enumerate(records) if r["type"] == "window")
    records[index][field] = "@@RAW@@"
    log = read_and_report(tmp_path / "log", encode(records, {"@@RAW@@": literal}))
    (problem,) = log.problems
    assert problem.startswith(f"line {index + 1}: not valid JSON") and "skipped" in problem
    assert len(log.windows) == 1  # the other window is kept


EXTREME_FINITE = ("1e308", "-1e308", "5e-324", "-1", "0", "9223372036854775807", "1e20")


@pytest.mark.parametrize(
    "field",
    [
        "energy_j",
        "duration_s",
        "start_unix",
        "pue",
        "steps",
        "channels.energy_j",
        "intensity.g_per_kwh",
        "prediction",
    ],
)
@pytest.mark.parametrize("with_summary", [True, False], ids=["summary", "windows"])
def test_extreme_finite_numbers_keep_every_output_finite(
    tmp_path: Path, field: str, with_summary: bool
) -> None:
    """Values a log can hold but no run makes: figures stay finite, outputs end cleanly."""
    for value in EXTREME_FINITE:
        records = real_records(RUNS / "predicted.jsonl")
        if not with_summary:
            records = [r for r in records if r["type"] != "summary"]
        for record in records:
            if record["type"] == "prediction" and field == "prediction":
                record |= {"energy_kwh": ["@@RAW@@"] * 3, "total_steps": "@@RAW@@"}
            elif record["type"] not in ("window", "summary"):
                continue
            elif field == "channels.energy_j":
                for channel in record["channels"]:
                    channel["energy_j"] = "@@RAW@@"
            elif field == "intensity.g_per_kwh":
                record["intensity"]["g_per_kwh"] = "@@RAW@@"
            elif field in record:
                record[field] = "@@RAW@@"
        read_and_report(tmp_path / "log", encode(records, {"@@RAW@@": value}))
        for run in build_report(tmp_path / "log").runs:
            figures = run.measurement
            numbers = [] if figures is None else [figures.energy_kwh, figures.co2e_kg]
            assert all(math.isfinite(n) for n in numbers if n is not None), (value, numbers)


def test_deep_nesting_is_refused_not_recursed_into(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    lines = [
        deep,
        '{"type": "header", "schema": 1, "context": ' + deep + "}",
        '{"type": "window", "name": "w", "channels": ' + "[" * 500 + "]" * 500 + "}",
    ]
    log = read_and_report(tmp_path / "log", "\n".join(lines).encode() + b"\n")
    assert [p.split(":")[0] for p in log.problems] == ["line 1", "line 2", "line 3"]
    assert "not valid JSON" in log.problems[0] and "channels[0]" in log.problems[2]


def test_invalid_utf8_and_lone_surrogates_are_skipped(tmp_path: Path) -> None:
    records = real_records(RUNS / "single.jsonl")
    lines = encode(records).splitlines()
    lines[0] = lines[0].replace(b'"single"', b'"\xff\xfe single"')  # the header's run name
    lines[2] = lines[2].replace(b'"epoch 0"', b'"\\udc80 epoch"')  # a lone surrogate escape
    lines.append(b'{"type": "window", "name": "\\ud83d\\ude00 fine"}')  # a pair: an emoji
    log = read_and_report(tmp_path / "log", b"\n".join(lines) + b"\n")
    assert log.problems[0].startswith("line 1: not valid JSON") and log.header is None
    assert log.problems[1] == (
        "line 3: holds text that is not valid Unicode (a lone surrogate); skipped"
    )
    assert log.windows[-1]["name"] == "\U0001f600 fine"


@FUZZ
@given(cut=st.integers(min_value=0))
def test_a_log_cut_anywhere_is_read_up_to_the_cut(fuzz_dir: Path, cut: int) -> None:
    data = (RUNS / "single.jsonl").read_bytes()
    cut %= len(data) + 1
    log = read_and_report(fuzz_dir, data[:cut])
    whole_lines = data[:cut].count(b"\n")
    tail = data[:cut].split(b"\n")[-1]
    complete_tail = data[cut : cut + 1] == b"\n"  # only the newline was cut off
    filed = len(log.windows) + len(log.samples) + (log.header is not None)
    assert filed + (log.summary is not None) == whole_lines + (bool(tail) and complete_tail)
    assert log.problems == (
        [f"line {whole_lines + 1}: truncated last record (the run was cut off)"]
        if tail and not complete_tail
        else []
    )


def test_a_second_header_or_summary_is_skipped_and_said(tmp_path: Path) -> None:
    records = real_records(RUNS / "single.jsonl")
    header = records[0] | {"run_name": "intruder"}
    summary = records[-1] | {"status": "failed"}
    log = read_and_report(tmp_path / "log", encode([*records, header, summary]))
    assert log.header is not None and log.header["run_name"] == "single"
    assert log.summary is not None and log.summary["status"] == "completed"
    count = len(records)
    assert log.problems == [
        f"line {count + 1}: a second header record (the first is on line 1); skipped",
        f"line {count + 2}: a second summary record (the first is on line {count}); skipped",
    ]


def test_a_distributed_context_claiming_a_huge_world_is_reported_quickly(tmp_path: Path) -> None:
    records = real_records(RUNS / "ddp" / "rank0.jsonl")
    for record in records:
        if "context" in record:
            record["context"]["distributed"]["world_size"] = 2**62
    read_and_report(tmp_path / "log", encode(records))
    report = build_report(tmp_path / "log")
    (run,) = report.runs
    assert run.measurement is not None


# -- nothing is evaluated -------------------------------------------------------------------------


class _Touch:
    """Unpickling this would run ``touch``; it is only ever pickled here, never loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def payloads(marker: Path) -> list[str]:
    """Text that would create ``marker`` if any reader evaluated, expanded or loaded it."""
    shell = f"touch {marker}"
    return [
        f"__import__('os').system('{shell}')",
        f"eval(compile('open({str(marker)!r}, \"w\")', 'x', 'exec'))",
        f"$({shell})",
        f"`{shell}`",
        f"!!python/object/apply:os.system ['{shell}']",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "%(__import__)s ${jndi:ldap://127.0.0.1/a}",
        pickle.dumps(_Touch(marker), protocol=0).decode("latin-1"),
    ]


def test_code_looking_strings_come_back_as_strings_and_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    texts = payloads(marker)
    records = real_records(RUNS / "predicted.jsonl")
    header = records[0]
    header["run_name"] = texts[0]
    header["host"] = texts[4]
    header["context"] = {text: text for text in texts} | {"__reduce__": texts[7]}
    windows = [r for r in records if r["type"] == "window"]
    for window, text in zip(windows, texts[1:], strict=False):
        window["name"] = text
        window["channels"][0]["how"] = text
        window["channels"][0]["fault"] = text
    summary = records[-1]
    summary["status"] = texts[2]
    extra = [{"type": text} for text in texts] + [{"type": "window", "name": t} for t in texts]
    lines = encode([*records, *extra])
    lines += texts[7].encode("latin-1") + b"\n"  # a pickle as a raw line
    lines += f"!!python/object/apply:os.system ['touch {marker}']\n".encode()
    lines += f"__import__('os').system('touch {marker}')\n".encode()
    folder = tmp_path / "runs"
    log = read_and_report(folder, lines)
    code, _, _ = run_cli("plot", str(folder / "run.jsonl"), "-o", str(tmp_path / "plot.png"))
    assert code == 0
    assert not marker.exists()
    assert log.header is not None and log.header["run_name"] == texts[0]
    assert log.header["context"]["__reduce__"] == texts[7]
    assert all(log.header["context"][text] == text for text in texts)
    assert [w["name"] for w in log.windows[: len(windows)]] == texts[1 : 1 + len(windows)]
    assert [w["name"] for w in log.windows[len(windows) :]] == texts
    assert log.summary is not None and log.summary["status"] == texts[2]
    unknown = [p for p in log.problems if "unknown record type" in p]
    assert len(unknown) == len(texts)
    (run,) = build_report(folder).runs
    assert run.name == texts[0] and run.status == texts[2]


# -- what a folder lets the report read -----------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the one reported on, holding a log that must not be read."""
    folder = tmp_path / "outside"
    folder.mkdir()
    shutil.copy(RUNS / "predicted.jsonl", folder / "secret.jsonl")
    return folder


@pytest.fixture
def reported(tmp_path: Path) -> Path:
    """The folder reported on, holding one log of its own."""
    folder = tmp_path / "reported"
    folder.mkdir()
    shutil.copy(RUNS / "single.jsonl", folder / "single.jsonl")
    return folder


def test_a_log_link_pointing_outside_is_not_read(reported: Path, outside: Path) -> None:
    (reported / "leak.jsonl").symlink_to(outside / "secret.jsonl")
    (reported / "nested").mkdir()
    (reported / "nested" / "deeper.jsonl").symlink_to(Path("../../outside/secret.jsonl"))
    report = build_report(reported)
    assert [run.name for run in report.runs] == ["single"]
    assert [p.split(": ", 1)[0] for p in report.problems] == [
        str(reported / "leak.jsonl"),
        str(reported / "nested" / "deeper.jsonl"),
    ]
    assert all("outside" in problem and "not read" in problem for problem in report.problems)
    code, out, _ = run_cli("report", str(reported), "--json")
    assert code == 0 and "predicted" not in out


def test_a_linked_subfolder_is_not_followed(reported: Path, outside: Path) -> None:
    (reported / "linked").symlink_to(outside, target_is_directory=True)
    (reported / "loop").symlink_to(reported, target_is_directory=True)
    report = build_report(reported)
    assert [run.name for run in report.runs] == ["single"]
    assert sorted(report.problems) == [
        f"{reported / 'linked'}: a linked folder; not followed",
        f"{reported / 'loop'}: a linked folder; not followed",
    ]


def test_a_link_to_a_log_inside_is_read_once(reported: Path) -> None:
    (reported / "sub").mkdir()
    (reported / "sub" / "alias.jsonl").symlink_to(reported / "single.jsonl")
    report = build_report(reported)
    assert [run.name for run in report.runs] == ["single"] and report.problems == ()
    assert report.totals.runs == 1


def test_a_folder_given_as_a_link_is_the_fence_itself(tmp_path: Path, reported: Path) -> None:
    link = tmp_path / "link-to-reported"
    link.symlink_to(reported, target_is_directory=True)
    assert [run.name for run in build_report(link).runs] == ["single"]


def release_a_reader(fifo: Path) -> bool:
    """Whether someone has ``fifo`` open for reading; if so, give it end of file.

    A non-blocking open for writing fails with ENXIO exactly when no one has the FIFO open for
    reading (fifo(7)), also a reader still blocked in its ``open``; otherwise it wakes that reader,
    and closing the write end at once makes its reads return end of file.
    """
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as error:
        if error.errno == errno.ENXIO:
            return False
        raise
    return True


def test_a_fifo_named_like_a_log_is_not_opened(reported: Path) -> None:
    fifo = reported / "pipe.jsonl"
    os.mkfifo(fifo)
    result: list[Report] = []
    thread = threading.Thread(target=lambda: result.append(build_report(reported)), daemon=True)
    thread.start()
    # Whether the report opens the FIFO is seen directly, however slowly the report runs on a
    # loaded machine; a reader found is released, so the report finishes either way.
    opened = False
    while thread.is_alive():
        opened = release_a_reader(fifo) or opened
        thread.join(timeout=0.01)
    assert not opened, "report opened a FIFO (it would have blocked)"
    (report,) = result
    assert [run.name for run in report.runs] == ["single"]


def test_a_folder_holding_only_outside_links_fails_with_one_message(
    tmp_path: Path, outside: Path
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "leak.jsonl").symlink_to(outside / "secret.jsonl")
    with pytest.raises(ReportError, match="outside"):
        build_report(folder)
    code, out, err = run_cli("report", str(folder))
    assert code == 2 and out == "" and "outside" in err
    code, out, err = run_cli("plot", str(folder), "-o", str(tmp_path / "x.png"))
    assert code == 2 and out == "" and err.count("\n") == 1


# -- the intensity cache --------------------------------------------------------------------------

HOUR = 3600.0


def cache_for(directory: Path) -> IntensityCache:
    return IntensityCache(directory, "Electricity Maps", "DE")


def check_loaded(loaded: CachedSeries | None) -> None:
    """None, or only sane slots: finite, ordered, non-negative, typed."""
    if loaded is None:
        return
    assert isinstance(loaded.fetched_unix, float) and math.isfinite(loaded.fetched_unix)
    for slot in loaded.slots:
        assert all(isinstance(v, float) and math.isfinite(v) for v in slot_numbers(slot))
        assert slot.end_unix > slot.start_unix and slot.g_per_kwh >= 0
        assert isinstance(slot.forecast, bool)


def slot_numbers(slot: IntensitySlot) -> tuple[float, float, float]:
    return slot.start_unix, slot.end_unix, slot.g_per_kwh


def valid_document() -> dict[str, Any]:
    start = 1_700_000_000.0
    return {
        "version": CACHE_VERSION,
        "fetched_unix": start + 10,
        "slots": [[start + i * HOUR, start + (i + 1) * HOUR, 100.0 + i, i > 1] for i in range(4)],
    }


def test_a_saved_cache_loads_back(tmp_path: Path) -> None:
    cache = cache_for(tmp_path)
    slots = tuple(IntensitySlot(*row) for row in valid_document()["slots"])
    cache.save(1_700_000_010.0, slots)
    assert cache.load() == CachedSeries(1_700_000_010.0, slots)


def hostile_documents() -> list[tuple[str, str]]:
    def with_slot(row: str) -> str:
        return f'{{"version": 1, "fetched_unix": 1700000000, "slots": [{row}]}}'

    return [
        ("nan intensity", with_slot("[0, 1800, NaN, false]")),
        ("infinite intensity", with_slot("[0, 1800, Infinity, false]")),
        ("1e400 intensity", with_slot("[0, 1800, 1e400, false]")),
        ("negative intensity", with_slot("[0, 1800, -5, false]")),
        ("end before start", with_slot("[1800, 0, 100, false]")),
        ("empty slot", with_slot("[1800, 1800, 100, false]")),
        ("text number", with_slot('["0", "1800", "100", false]')),
        ("true as a number", with_slot("[0, 1800, true, false]")),
        ("text as the forecast flag", with_slot('[0, 1800, 100, "no"]')),
        ("number as the forecast flag", with_slot("[0, 1800, 100, 0]")),
        ("short slot", with_slot("[0, 1800, 100]")),
        ("slot as an object", with_slot('{"start": 0}')),
        ("huge integer", with_slot("[0, 1" + "0" * 400 + ", 100, false]")),
        ("nan fetched time", '{"version": 1, "fetched_unix": NaN, "slots": []}'),
        ("text fetched time", '{"version": 1, "fetched_unix": "now", "slots": []}'),
        ("slots not a list", '{"version": 1, "fetched_unix": 0, "slots": "[]"}'),
        ("other version", '{"version": 2, "fetched_unix": 0, "slots": []}'),
        ("true as the version", '{"version": true, "fetched_unix": 0, "slots": []}'),
        ("a list", "[1, 2]"),
        ("deep nesting", "[" * 100_000 + "]" * 100_000),
        ("deep nesting in slots", with_slot("[" * 100_000 + "]" * 100_000)),
        ("not json", "__import__('os').system('true')"),
    ]


@pytest.mark.parametrize(("what", "text"), hostile_documents(), ids=lambda v: str(v)[:30])
def test_a_hostile_cache_file_is_refused(tmp_path: Path, what: str, text: str) -> None:
    cache = cache_for(tmp_path)
    cache.path.write_text(text)
    assert cache.load() is None, what


def test_an_undecodable_or_unreadable_cache_file_is_refused(tmp_path: Path) -> None:
    cache = cache_for(tmp_path)
    cache.path.write_bytes(b'{"version": 1, "\xff": 0}')
    assert cache.load() is None
    cache.path.unlink()
    cache.path.mkdir()  # a folder where the file should be
    assert cache.load() is None


cache_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(["version", "fetched_unix", "slots"]), children)
    ),
    max_leaves=20,
)


@FUZZ
@given(document=cache_values, mutations=st.lists(st.tuples(st.integers(0, 3), cache_values)))
def test_fuzzed_cache_files_load_as_none_or_sane_slots(
    fuzz_dir: Path, document: Any, mutations: list[tuple[int, Any]]
) -> None:
    cache = cache_for(fuzz_dir)
    cache.path.parent.mkdir(parents=True, exist_ok=True)
    for text in (json.dumps(document), json.dumps(mutate_cache(mutations))):
        cache.path.write_text(text)
        check_loaded(cache.load())


def mutate_cache(mutations: list[tuple[int, Any]]) -> dict[str, Any]:
    """A valid document with some slot entries (or whole slots) replaced."""
    document = valid_document()
    for position, value in mutations:
        slot = document["slots"][position]
        if isinstance(slot, list) and len(slot) == 4 and isinstance(value, int | float):
            slot[position % 3] = value
        else:
            document["slots"][position] = value
    return document


@FUZZ
@given(provider=st.text(), zone=st.text())
@example(provider="Electricity Maps", zone="../../../etc/passwd")
@example(provider="..", zone="/")
@example(provider="", zone="\x00")
def test_no_zone_name_puts_the_cache_file_outside_its_folder(
    tmp_path_factory: pytest.TempPathFactory, provider: str, zone: str
) -> None:
    directory = tmp_path_factory.getbasetemp() / "cache-fence"
    cache = IntensityCache(directory, provider, zone)
    assert cache.path.parent == directory
    assert re.fullmatch(r"intensity-[a-z0-9-]*\.json", cache.path.name)


# -- the plot -------------------------------------------------------------------------------------


def test_the_plot_survives_samples_written_before_any_channel(tmp_path: Path) -> None:
    records = [
        {"type": "samples", "channels": [], "t_s": [0.0], "joules": [[]]},
        {"type": "samples", "channels": ["gpu:0"], "t_s": [1.0, 2.0], "joules": [[1.0], [2.0]]},
    ]
    log = read_and_report(tmp_path / "log", encode(records))
    plot_data(log)


def test_the_plot_shows_a_run_name_with_dollar_signs_as_written(tmp_path: Path) -> None:
    records = real_records(RUNS / "single.jsonl")
    records[0]["run_name"] = "budget $\\frac{1}{ to $5"
    path = write_log(tmp_path / "log", encode(records))
    code, _, err = run_cli("plot", str(path), "-o", str(tmp_path / "plot.png"))
    assert code == 0, err
