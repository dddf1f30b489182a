"""Resuming a training from a checkpoint: the totals of the runs before it, carried on.

``state_dict`` / ``load_state_dict`` carry these totals and the id of the run that saved them;
the resumed run's log gets a ``resume`` record naming it, so a report links the segments of one
training, and forecasts cover the whole training with the earlier part stated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carbon_callbacks.tracking.measurement import JOULES_PER_KWH, Measurement


@dataclass(frozen=True)
class Earlier:
    """What earlier (resumed) runs contributed; added to this run's figures.

    Attributes:
        scope: ``"all ranks"`` when the totals are a distributed run's sums (global rank 0
            carries them on), else ``"this rank"``.
    """

    energy_j: float = 0.0
    co2e_kg: float = 0.0
    steps: int = 0
    samples: int = 0
    tokens: int = 0
    duration_s: float = 0.0
    run_id: str | None = None
    """The run that saved these totals: the one this run continues."""
    scope: str = "this rank"

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Earlier:
        """The totals a checkpoint's ``state_dict`` saved (none for an empty one)."""
        run_id = state.get("run_id")
        return cls(
            energy_j=float(state.get("energy_j", 0.0)),
            co2e_kg=float(state.get("co2e_kg", 0.0)),
            steps=int(state.get("steps", 0)),
            samples=int(state.get("samples", 0)),
            tokens=int(state.get("tokens", 0)),
            duration_s=float(state.get("duration_s", 0.0)),
            run_id=None if run_id is None else str(run_id),
            scope=str(state.get("scope", "this rank")),
        )

    @property
    def resumed(self) -> bool:
        """True when there is an earlier run to continue."""
        return self.run_id is not None or self.steps > 0

    @property
    def forecast_span(self) -> tuple[float, float, int, float]:
        """Facility joules, kg CO2e, steps and seconds: what a forecast adds to this run's."""
        return self.energy_j, self.co2e_kg, self.steps, self.duration_s

    def record(self) -> dict[str, object]:
        """The run log's ``resume`` record: which run this one continues, and its totals."""
        return {
            "resumes": self.run_id,
            "energy_kwh": self.energy_j / JOULES_PER_KWH,
            "co2e_kg": self.co2e_kg,
            "steps": self.steps,
            "duration_s": self.duration_s,
            "scope": self.scope,
        }

    def state(
        self,
        figures: Measurement | None,
        totals: tuple[float, float],
        scope: str,
        samples: int,
        tokens: int,
        run_id: str | None,
    ) -> dict[str, float | int | str | None]:
        """A checkpoint's state: these totals carried on by this run's.

        Args:
            figures: This run's figures so far (its steps and duration are added).
            totals: Facility J and kg CO2e of ``scope``, resumed runs included; NaN (unknown)
                keeps these totals' figure.
            scope: ``"all ranks"`` or ``"this rank"``.
            samples: This run's samples.
            tokens: This run's tokens.
            run_id: This run's id; None keeps the id of the run it continues.
        """
        energy_j, co2e_kg = totals
        return {
            "energy_j": energy_j if math.isfinite(energy_j) else self.energy_j,
            "co2e_kg": co2e_kg if math.isfinite(co2e_kg) else self.co2e_kg,
            "steps": self.steps + ((figures.steps or 0) if figures is not None else 0),
            "samples": self.samples + samples,
            "tokens": self.tokens + tokens,
            "duration_s": self.duration_s + (figures.duration_s if figures is not None else 0.0),
            "run_id": run_id if run_id is not None else self.run_id,
            "scope": scope,
        }
