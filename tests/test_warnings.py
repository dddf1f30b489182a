"""One warning per distinct problem, and a bounded number of them per owner."""

from __future__ import annotations

import warnings

from carbon_callbacks._internal.warnings import (
    MAX_DISTINCT_PROBLEMS,
    CarbonCallbacksWarning,
    WarnOnce,
)


def test_a_repeated_problem_warns_once() -> None:
    warn_once = WarnOnce()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            warn_once("fault:gpu:0", "gpu:0 is lost")
        warn_once("fault:gpu:1", "gpu:1 is lost")
    assert [str(w.message) for w in caught] == ["gpu:0 is lost", "gpu:1 is lost"]
    assert all(w.category is CarbonCallbacksWarning for w in caught)


def test_problems_whose_text_keeps_changing_cannot_flood_the_console() -> None:
    warn_once = WarnOnce()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for number in range(10 * MAX_DISTINCT_PROBLEMS):
            warn_once(f"fault:{number}", f"problem {number}")
    assert len(caught) == MAX_DISTINCT_PROBLEMS + 1
    assert "further ones are not shown" in str(caught[-1].message)
    assert len(warn_once._seen) == MAX_DISTINCT_PROBLEMS + 1
