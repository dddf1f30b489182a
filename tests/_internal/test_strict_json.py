from __future__ import annotations

import pytest

from carbon_callbacks._internal import strict_json
from carbon_callbacks._internal.unique import unique


def test_plain_json_reads_as_the_standard_parser_reads_it() -> None:
    text = '{"a": [1, -2.5e3, 9223372036854775807, "x", null, true]}'
    assert strict_json.loads(text) == {"a": [1, -2500.0, 2**63 - 1, "x", None, True]}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[NaN]", "NaN is not allowed"),
        ("[-Infinity]", "-Infinity is not allowed"),
        ("[1e400]", "out of range"),
        ("[9223372036854775808]", "more than 64 bits"),
        ("[" + "9" * 5000 + "]", "more than 64 bits"),  # refused before conversion
    ],
)
def test_numbers_no_figure_can_be_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        strict_json.loads(text)


def test_unique_keeps_the_first_of_each_in_order() -> None:
    assert unique(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
