from __future__ import annotations

import errno
import json
import threading
import time
from pathlib import Path

import pytest

from carbon_callbacks import Tracker
from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
from carbon_callbacks.runlog.reader import read_run_log
from carbon_callbacks.runlog.writer import RunLogWriter
from tests.meters.fake_powercap import FakePowercap


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


HEADER = '{"type":"header","schema":1,"run_id":"r"}\n'
WINDOW = '{"type":"window","name":"epoch 0","energy_j":1.5}\n'


def test_writer_round_trips_through_the_reader(tmp_path: Path) -> None:
    writer = RunLogWriter(tmp_path / "nested" / "run.jsonl")
    writer.write({"type": "header", "schema": 1, "run_id": "x"})
    writer.write({"type": "window", "name": "epoch 0", "energy_j": 2.0})
    writer.write({"type": "summary", "status": "completed", "energy_j": 2.0})
    writer.close()
    writer.close()
    log = read_run_log(tmp_path / "nested" / "run.jsonl")
    assert log.problems == []
    assert log.header == {"type": "header", "schema": 1, "run_id": "x"}
    assert log.windows == [{"type": "window", "name": "epoch 0", "energy_j": 2.0}]
    assert log.summary is not None and log.summary["status"] == "completed"


def test_each_record_is_on_disk_before_close(tmp_path: Path) -> None:
    writer = RunLogWriter(tmp_path / "run.jsonl")
    writer.write({"type": "header", "schema": 1})
    assert json.loads((tmp_path / "run.jsonl").read_text())["type"] == "header"
    writer.close()


def test_truncated_last_line_is_tolerated(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.jsonl", HEADER + WINDOW + '{"type":"window","na')
    log = read_run_log(path)
    assert len(log.windows) == 1
    assert log.problems == ["line 3: truncated last record (the run was cut off)"]


def test_malformed_lines_are_skipped_with_a_reason(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "run.jsonl",
        HEADER
        + "not json\n"
        + "[1, 2]\n"
        + '{"type":"window","energy_j":NaN}\n'
        + '{"type":"exec","code":"import os"}\n'
        + WINDOW,
    )
    log = read_run_log(path)
    assert len(log.windows) == 1
    assert [p.split(":")[0] for p in log.problems] == ["line 2", "line 3", "line 4", "line 5"]
    assert "NaN is not allowed" in log.problems[2]
    assert "unknown record type 'exec'" in log.problems[3]


def test_invalid_utf8_and_newer_schema_are_reported(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.jsonl", b'{"type":"header","schema":99}\n\xff\xfe\n')
    log = read_run_log(path)
    assert "upgrade carbon-callbacks" in log.problems[0]
    assert log.problems[1].startswith("line 2: not valid JSON")


def test_disk_full_warns_once_and_stops_logging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = RunLogWriter(tmp_path / "run.jsonl")
    writer.write({"type": "header", "schema": 1})
    assert writer._file is not None

    def full(_: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer._file, "write", full)
    with pytest.warns(CarbonCallbacksWarning, match="No space left") as caught:
        writer.write({"type": "window"})
        writer.write({"type": "window"})
    assert len(caught) == 1
    assert writer.problem is not None and "cannot write the run log" in writer.problem
    writer.close()


def test_unwritable_folder_warns_instead_of_raising(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    writer = RunLogWriter(blocker / "run.jsonl")  # a folder that cannot be created
    with pytest.warns(CarbonCallbacksWarning, match="cannot write the run log"):
        writer.write({"type": "header"})
    assert writer.problem is not None and "cannot write the run log" in writer.problem


def test_samples_and_predictions_are_read_back(tmp_path: Path, powercap: FakePowercap) -> None:
    with Tracker(output_dir=tmp_path, interval_s=0.01) as tracker:
        tracker.record("prediction", {"steps_done": 1, "total_steps": 10})
        tracker.begin_window("epoch")
        powercap.add_energy("intel-rapl:0", 2_000_000)
        time.sleep(0.05)
        tracker.end_window("epoch")
    assert tracker.log_path is not None
    log = read_run_log(tracker.log_path)
    assert log.problems == []
    assert [p["total_steps"] for p in log.predictions] == [10]
    assert log.samples and log.samples[0]["channels"] == [c.id for c in tracker.channels]
    rows = [row for record in log.samples for row in record["joules"]]
    times = [t for record in log.samples for t in record["t_s"]]
    assert times == sorted(times) and len(rows) == len(times)
    assert max(row[0] for row in rows) == pytest.approx(2.0)  # the package counter's 2 J


def test_checkpoints_are_filed_in_order_and_malformed_ones_skipped(tmp_path: Path) -> None:
    checkpoint = '{"type":"checkpoint","t_unix":%s,"duration_s":%s,"channels":[]}\n'
    path = _write(
        tmp_path / "run.jsonl",
        HEADER
        + checkpoint % (100.0, 30.0)
        + '{"type":"checkpoint","duration_s":60.0,"channels":[]}\n'  # no time
        + checkpoint % ('"later"', 90.0)
        + checkpoint % (130.0, 60.0),
    )
    log = read_run_log(path)
    assert [c["duration_s"] for c in log.checkpoints] == [30.0, 60.0]
    assert log.problems == [
        "line 3: checkpoint record: t_unix is missing; skipped",
        "line 4: checkpoint record: t_unix is 'later', expected a number; skipped",
    ]
    assert log.summary is None and log.windows == []


def test_a_write_from_another_thread_is_never_interleaved(tmp_path: Path) -> None:
    """The sampler thread's checkpoints and the training thread's records share one writer.

    Without the writer's lock this interleaves some of the time (about one run in three here),
    so it guards the lock rather than proving it in every run.
    """
    writer = RunLogWriter(tmp_path / "run.jsonl")
    filler = "x" * 20_000  # longer than a buffered write: an unlocked pair would interleave

    def write_many() -> None:
        for n in range(200):
            writer.write({"type": "prediction", "run_id": filler, "t_unix": 1.0, "steps_done": n})

    threads = [threading.Thread(target=write_many) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    log = read_run_log(tmp_path / "run.jsonl")
    assert log.problems == []
    assert len(log.predictions) == 400
