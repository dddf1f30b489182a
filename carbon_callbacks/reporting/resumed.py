"""What a checkpoint carried on to a resumed run: the totals of the runs before it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carbon_callbacks.runlog import decode
from carbon_callbacks.tracking.measurement import JOULES_PER_KWH


@dataclass(frozen=True)
class Resumed:
    """What the runs before a resumed one contributed, as its checkpoint carried it on.

    Attributes:
        run_id: The run it continues (the one that saved the checkpoint), when known.
        energy_kwh: Facility energy of the runs before.
        co2e_kg: Their CO2e, when known.
        steps: Their optimizer steps.
        duration_s: Their measured time.
    """

    run_id: str | None
    energy_kwh: float
    co2e_kg: float | None
    steps: int
    duration_s: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: every field."""
        return dataclasses.asdict(self)


def resumed_from_record(record: Mapping[str, Any]) -> Resumed:
    """What a ``resume`` record (or a forecast's ``resumed``) says the earlier runs contributed.

    Raises:
        KeyError, TypeError, ValueError: A field is missing, of the wrong type or out of range.
    """
    co2e = record.get("co2e_kg")
    return Resumed(
        run_id=decode.text(record.get("resumes")),
        energy_kwh=decode.bounded_number(
            record["energy_kwh"], 0.0, decode.MAX_ENERGY_J / JOULES_PER_KWH
        ),
        co2e_kg=None if co2e is None else decode.bounded_number(co2e, 0.0, decode.MAX_CO2E_KG),
        steps=decode.count(record["steps"]),
        duration_s=decode.bounded_number(record["duration_s"], 0.0, decode.MAX_DURATION_S),
    )
