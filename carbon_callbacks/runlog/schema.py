"""The run log's format: its version, its record types, and what each record must look like.

A run log is JSON Lines, one file per run, written append-only; each line is one record with a
``"type"``:

- ``header``: run id, host, library version, channels and how they are measured, configuration,
  the absolute folder of the log (``log_dir``: a launcher such as Ray may change the working
  directory, so a relative ``output_dir`` alone does not say where the log went);
- ``window``: one finished window (an epoch, a validation pass, ...), a ``Measurement`` as a dict;
- ``samples``: cumulative joules per channel over time, written at window ends (for plots);
- ``checkpoint``: the run from its start until ``t_unix``, a ``Measurement`` as a dict (name
  ``"so far"``), written every 30 s or more and at window ends, so a run killed before its
  summary still has figures; readers use the last one only when there is no summary;
- ``prediction``: a forecast of the whole run made during it;
- ``resume``: for a run resumed from a checkpoint, the run it continues and the totals carried on;
- ``summary``: the whole run, with how it ended (``status``).

Versions: ``SCHEMA_VERSION`` rises only when a record a reader knows changes in a way that reader
would misread. New fields and new record types leave it as it is: older readers keep fields they
do not know unchecked, and skip a record type they do not know, saying so once a line (so a log
with ``checkpoint`` records read by a version before them lists those lines as skipped and still
gives every figure it gave before). Readers take a record's listed fields as optional unless
``required``, and new writers only ever add.

A check takes a value and where it is (``"channels[2].energy_j"``) and returns what is wrong, or
None. A record's listed fields are checked when present (readers supply defaults for missing
ones); ``required`` ones must be there. Fields not listed are kept unchecked (newer writers).
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping

SCHEMA_VERSION = 1
"""The header's ``schema``: raised when a record changes in a way older readers misread."""

SHOWN = reprlib.Repr()
"""Shows a value from a log in a message, cut short (a hostile log may hold anything)."""
SHOWN.maxstring = SHOWN.maxother = 40
SHOWN.maxlevel = 2

Check = Callable[[object, str], str | None]


def _describe(where: str, value: object, expected: str) -> str:
    return f"{where} is {SHOWN.repr(value)}, expected {expected}"


def _kind(expected: str, test: Callable[[object], bool]) -> Check:
    def check(value: object, where: str) -> str | None:
        return None if test(value) else _describe(where, value, expected)

    return check


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TEXT = _kind("text", lambda value: isinstance(value, str))
_NUMBER = _kind("a number", _is_number)
_INTEGER = _kind("an integer", lambda value: isinstance(value, int) and not isinstance(value, bool))
_FLAG = _kind("true or false", lambda value: isinstance(value, bool))
_OBJECT = _kind("an object", lambda value: isinstance(value, dict))
_LIST = _kind("a list", lambda value: isinstance(value, list))
_TRIPLE = _kind(
    "[low, mid, high] numbers",
    lambda value: isinstance(value, list) and len(value) == 3 and all(map(_is_number, value)),
)


def _nullable(inner: Check) -> Check:
    def check(value: object, where: str) -> str | None:
        problem = None if value is None else inner(value, where)
        return None if problem is None else f"{problem} or null"

    return check


def _list_of(item: Check) -> Check:
    def check(value: object, where: str) -> str | None:
        if not isinstance(value, list):
            return _describe(where, value, "a list")
        for index, entry in enumerate(value):
            problem = item(entry, f"{where}[{index}]")
            if problem is not None:
                return problem
        return None

    return check


def _fields(spec: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    def check(value: object, where: str) -> str | None:
        if not isinstance(value, dict):
            return _describe(where or "the record", value, "an object")
        prefix = f"{where}." if where else ""
        for name in required:
            if name not in value:
                return f"{prefix}{name} is missing"
        for name, field_check in spec.items():
            if name in value:
                problem = field_check(value[name], prefix + name)
                if problem is not None:
                    return problem
        return None

    return check


_CHANNEL = {"id": _TEXT, "kind": _TEXT, "device": _TEXT, "method": _TEXT, "how": _TEXT}
_INTENSITY = _fields(
    {
        "g_per_kwh": _NUMBER,
        "source": _TEXT,
        "zone": _nullable(_TEXT),
        "basis": _nullable(_TEXT),
        "year": _nullable(_INTEGER),
        "estimated": _FLAG,
        "guessed_location": _FLAG,
        "fallback": _nullable(_TEXT),
    }
)
_MEASUREMENT = {
    "run_id": _TEXT,
    "name": _TEXT,
    "start_unix": _NUMBER,
    "duration_s": _NUMBER,
    "steps": _nullable(_INTEGER),
    "energy_j": _nullable(_NUMBER),
    "energy_kwh": _nullable(_NUMBER),
    "pue": _NUMBER,
    "co2e_kg": _nullable(_NUMBER),
    "intensity": _nullable(_INTENSITY),
    "partial": _FLAG,
    "estimated": _FLAG,
    "mean_power_w": _nullable(_NUMBER),
    "channels": _list_of(
        _fields(
            _CHANNEL | {"energy_j": _nullable(_NUMBER), "partial": _FLAG, "fault": _nullable(_TEXT)}
        )
    ),
    "unmeasured": _list_of(_TEXT),
}
_RESUMED = {
    "energy_kwh": _NUMBER,
    "co2e_kg": _nullable(_NUMBER),
    "steps": _INTEGER,
    "duration_s": _NUMBER,
}
"""What the runs before a resumed one contributed."""
_CLEANER_START = {
    "start_unix": _NUMBER,
    "g_per_kwh": _NUMBER,
    "run_start_unix": _NUMBER,
    "started_g_per_kwh": _NUMBER,
    "saving_fraction": _NUMBER,
}
"""A later start the live forecast said would have emitted a fifth less or better (information)."""
RECORD_FIELDS: dict[str, Check] = {
    "header": _fields(
        {
            "run_id": _TEXT,
            "run_name": _nullable(_TEXT),
            "started_unix": _NUMBER,
            "restarted_unix": _NUMBER,
            "host": _TEXT,
            "pid": _INTEGER,
            "library_version": _TEXT,
            "python": _TEXT,
            "platform": _TEXT,
            "cpu": _fields({"model": _nullable(_TEXT), "cores": _nullable(_INTEGER)}),
            "channels": _list_of(_fields(_CHANNEL | {"host_level": _FLAG, "scope": _TEXT})),
            "unavailable": _list_of(_OBJECT),
            "sampler_interval_s": _NUMBER,
            "config": _OBJECT,
            "log_dir": _nullable(_TEXT),
            "intensity": _OBJECT,
            "context": _OBJECT,
        }
    ),
    "window": _fields(_MEASUREMENT, required=("name",)),
    "checkpoint": _fields(
        _MEASUREMENT | {"t_unix": _NUMBER}, required=("t_unix", "duration_s", "channels")
    ),
    "summary": _fields(_MEASUREMENT | {"status": _TEXT, "context": _OBJECT}, required=("status",)),
    "prediction": _fields(
        {
            "run_id": _TEXT,
            "t_unix": _NUMBER,
            "steps_done": _INTEGER,
            "total_steps": _INTEGER,
            "warmup_steps": _nullable(_INTEGER),
            "energy_kwh": _TRIPLE,
            "co2e_kg": _nullable(_TRIPLE),
            "duration_s": _TRIPLE,
            "interval": _nullable(_NUMBER),
            "resumed": _nullable(_fields(_RESUMED)),
            "cleaner_start": _nullable(_fields(_CLEANER_START)),
        },
        required=("t_unix",),
    ),
    "resume": _fields(
        _RESUMED | {"run_id": _TEXT, "t_unix": _NUMBER, "resumes": _nullable(_TEXT)},
        required=("energy_kwh", "steps", "duration_s"),
    ),
    # Rows (``t_s``, ``steps``, ``joules``) are checked one by one where they are used: a bad row
    # costs that row, not the record.
    "samples": _fields(
        {
            "run_id": _TEXT,
            "channels": _list_of(_TEXT),
            "t_s": _LIST,
            "steps": _LIST,
            "joules": _LIST,
        },
        required=("channels", "t_s", "joules"),
    ),
}
