"""Carbon and energy budgets for a training run: limits, what reaching them means, checks.

A budget is checked against totals summed over all ranks, so every rank reaches the same decision
at the same collective point; stopping goes through the framework's own flag in each adapter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

OnBudget = Literal["warn", "stop"]


@dataclass(frozen=True)
class Budget:
    """Limits on a run's energy and CO2e.

    Attributes:
        max_energy_kwh: Facility energy (x PUE) the run may use, or None.
        max_co2e_kg: CO2e the run may emit, or None.
        on_budget: ``"warn"`` (default) warns when a limit is reached; ``"stop"`` also ends
            training gracefully through the framework's stop flag.
    """

    max_energy_kwh: float | None = None
    max_co2e_kg: float | None = None
    on_budget: OnBudget = "warn"

    def __post_init__(self) -> None:
        for name in ("max_energy_kwh", "max_co2e_kg"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, got {value!r}; write {name}=1.5")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}; write {name}=1.5")
        if self.on_budget not in ("warn", "stop"):
            raise ValueError(
                f"on_budget must be 'warn' or 'stop', got {self.on_budget!r}; "
                "write on_budget='stop' to end training when the budget is reached"
            )

    @property
    def active(self) -> bool:
        """True when any limit is set."""
        return self.max_energy_kwh is not None or self.max_co2e_kg is not None

    def reached(self, energy_kwh: float | None, co2e_kg: float | None) -> str | None:
        """Which limit the totals have reached, in words; None while within budget."""
        return self._over(energy_kwh, co2e_kg, "used")

    def predicted_over(self, energy_kwh: float | None, co2e_kg: float | None) -> str | None:
        """Which limit a forecast of the whole run exceeds, in words; None when within budget."""
        return self._over(energy_kwh, co2e_kg, "predicted to use")

    def _over(self, energy_kwh: float | None, co2e_kg: float | None, verb: str) -> str | None:
        limit = self.max_energy_kwh
        if limit is not None and energy_kwh is not None and energy_kwh >= limit:
            return f"{verb} {energy_kwh:.4g} kWh, budget max_energy_kwh={limit:g}"
        if self.max_co2e_kg is not None and co2e_kg is not None and co2e_kg >= self.max_co2e_kg:
            return f"{verb} {co2e_kg:.4g} kg CO2e, budget max_co2e_kg={self.max_co2e_kg:g}"
        return None
