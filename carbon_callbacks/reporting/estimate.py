"""Estimates made without a run: CO2e of a given energy, or of hardware and hours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from carbon_callbacks._internal import strict_json
from carbon_callbacks._internal.env import checked_number
from carbon_callbacks._version import __version__
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.reporting.boards import hardware_energy
from carbon_callbacks.reporting.equivalents import (
    EEA_NEW_CARS_2023,
    CarBaseline,
    car_km,
)
from carbon_callbacks.runlog import decode
from carbon_callbacks.tracking.measurement import MAX_PUE

ESTIMATE_KIND = "carbon-callbacks estimate"
"""The ``kind`` field of a saved estimate file."""


@dataclass(frozen=True)
class Estimate:
    """A CO2e figure computed from an energy (given, or from hardware and hours), not measured.

    Attributes:
        device_energy_kwh: Energy at the devices, before PUE: the middle of the range when the
            GPU name fits several boards of different power.
        pue: Data-centre overhead applied.
        intensity: The carbon intensity used, with its provenance.
        car: The car baseline for the distance equivalent.
        assumptions: What the figure assumes, one sentence each.
        hardware: The hardware form's inputs (``HardwareEnergy.to_dict``); None for a given energy.
        library_version: The version that made it.
        device_energy_span_kwh: The lowest and highest device energy when the GPU name fits
            boards of different power; None when the estimate is one figure.
        subject: What the figure is of, for people (``"8 x A100 (250-400 W depending on the
            variant) for 10 h"``); empty for a given energy.
    """

    device_energy_kwh: float
    pue: float
    intensity: IntensityValue
    car: CarBaseline = EEA_NEW_CARS_2023
    assumptions: tuple[str, ...] = ()
    hardware: Mapping[str, object] | None = None
    library_version: str = __version__
    device_energy_span_kwh: tuple[float, float] | None = None
    subject: str = ""

    @property
    def energy_kwh(self) -> float:
        """Facility energy: device energy x PUE."""
        return self.device_energy_kwh * self.pue

    @property
    def co2e_kg(self) -> float:
        """Facility energy x intensity."""
        return self._co2e_kg(self.device_energy_kwh)

    @property
    def car_km(self) -> float:
        """The distance an average new car emits the same CO2 over."""
        return car_km(self.co2e_kg, self.car.g_per_km)

    @property
    def device_energy_range_kwh(self) -> tuple[float, float]:
        """The lowest and highest device energy (both the figure itself when it is not a range)."""
        return self.device_energy_span_kwh or (self.device_energy_kwh, self.device_energy_kwh)

    @property
    def energy_range_kwh(self) -> tuple[float, float]:
        """The lowest and highest facility energy."""
        low, high = self.device_energy_range_kwh
        return low * self.pue, high * self.pue

    @property
    def co2e_range_kg(self) -> tuple[float, float]:
        """The lowest and highest CO2e."""
        low, high = self.device_energy_range_kwh
        return self._co2e_kg(low), self._co2e_kg(high)

    @property
    def car_range_km(self) -> tuple[float, float]:
        """The car distances of the lowest and highest CO2e."""
        low, high = self.co2e_range_kg
        return car_km(low, self.car.g_per_km), car_km(high, self.car.g_per_km)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, also the format of a saved estimate file.

        Each figure has ``_low`` and ``_high`` beside it: the ends of the range when the GPU name
        fits several boards, else the figure itself.
        """
        device_low, device_high = self.device_energy_range_kwh
        energy_low, energy_high = self.energy_range_kwh
        co2e_low, co2e_high = self.co2e_range_kg
        car_low, car_high = self.car_range_km
        return {
            "kind": ESTIMATE_KIND,
            "estimated": True,
            "method": "energy given" if self.hardware is None else "hardware",
            "subject": self.subject,
            "device_energy_kwh": self.device_energy_kwh,
            "device_energy_kwh_low": device_low,
            "device_energy_kwh_high": device_high,
            "pue": self.pue,
            "energy_kwh": self.energy_kwh,
            "energy_kwh_low": energy_low,
            "energy_kwh_high": energy_high,
            "co2e_kg": self.co2e_kg,
            "co2e_kg_low": co2e_low,
            "co2e_kg_high": co2e_high,
            "intensity": self.intensity.to_dict(),
            "car_km": self.car_km,
            "car_km_low": car_low,
            "car_km_high": car_high,
            "car": self.car.to_dict(),
            "hardware": None if self.hardware is None else dict(self.hardware),
            "assumptions": list(self.assumptions),
            "library_version": self.library_version,
        }

    def _co2e_kg(self, device_energy_kwh: float) -> float:
        return device_energy_kwh * self.pue * self.intensity.g_per_kwh / 1000.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        """Read a saved estimate back (files written before ranges existed have no ``_low``).

        Raises:
            ValueError: Not an estimate file, or a field is missing or of the wrong type.
        """
        if data.get("kind") != ESTIMATE_KIND:
            raise ValueError(
                "not a saved estimate (write one with: carbon-callbacks estimate ... --save FILE)"
            )
        try:
            car = data["car"]
            hardware = data.get("hardware")
            device_kwh = decode.bounded_number(data["device_energy_kwh"])
            span = (
                decode.bounded_number(data.get("device_energy_kwh_low", device_kwh)),
                decode.bounded_number(data.get("device_energy_kwh_high", device_kwh)),
            )
            return cls(
                device_energy_kwh=device_kwh,
                pue=decode.bounded_number(data["pue"]),
                intensity=decode.intensity_from_dict(data["intensity"]),
                car=CarBaseline(
                    decode.bounded_number(car["g_per_km"]),
                    None if car["year"] is None else int(car["year"]),
                    str(car["test_cycle"]),
                    str(car["source"]),
                ),
                assumptions=tuple(str(line) for line in data["assumptions"]),
                hardware=dict(hardware) if isinstance(hardware, Mapping) else None,
                library_version=str(data.get("library_version", "")),
                device_energy_span_kwh=None if span == (device_kwh, device_kwh) else span,
                subject=str(data.get("subject", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"the estimate file is damaged ({error!r})") from None


def make_estimate(
    device_energy_kwh: float,
    intensity: IntensityValue,
    *,
    pue: float = 1.0,
    car: CarBaseline = EEA_NEW_CARS_2023,
    assumptions: Sequence[str] = (),
    hardware: Mapping[str, object] | None = None,
    device_energy_span_kwh: tuple[float, float] | None = None,
    subject: str = "",
) -> Estimate:
    """An estimate with the standing assumptions (PUE, intensity, car baseline) listed.

    ``device_energy_span_kwh`` is the range ``device_energy_kwh`` is the middle of, if any.

    Raises:
        ValueError: The energy is negative or not finite, the span does not hold it, or the PUE
            is below 1.
    """
    checked_number("energy_kwh", device_energy_kwh, minimum=0.0, example="120")
    if device_energy_span_kwh is not None:
        low, high = device_energy_span_kwh
        if not 0.0 <= low <= device_energy_kwh <= high:
            raise ValueError(
                f"the energy range {low!r}-{high!r} kWh must hold {device_energy_kwh!r} kWh"
            )
        if low == high:
            device_energy_span_kwh = None  # one figure, as a saved file reads back
    checked_number("pue", pue, minimum=1.0, maximum=MAX_PUE, example="1.2")
    standing = [
        f"PUE {pue:g}" + (" (the default: no data-centre overhead counted)" if pue == 1.0 else ""),
        f"carbon intensity {intensity.g_per_kwh:g} gCO2e/kWh ({intensity.source})",
        f"car distance at {car.describe()}",
    ]
    return Estimate(
        device_energy_kwh,
        pue,
        intensity,
        car,
        (*assumptions, *standing),
        hardware,
        device_energy_span_kwh=device_energy_span_kwh,
        subject=subject,
    )


def estimate_of(
    intensity: IntensityValue,
    *,
    energy_kwh: float | None = None,
    gpu: str | None = None,
    count: int | None = None,
    hours: float | None = None,
    utilization: float | None = None,
    cpu_watts: float | None = None,
    pue: float = 1.0,
    car: CarBaseline = EEA_NEW_CARS_2023,
) -> Estimate:
    """An estimate of a given energy, or of GPUs run for hours (``carbon-callbacks estimate``).

    Give ``energy_kwh``, or ``gpu`` with ``hours`` (and optionally ``count``, default 1,
    ``utilization``, default 1.0: an upper bound, and ``cpu_watts``); the hardware options go
    with ``gpu`` only. A ``gpu`` name that fits several boards gives the range over them.

    Raises:
        ValueError: The options do not fit together, a name fits no board, or a value is out of
            range; the message names the option and what to write.
    """
    if gpu is None:
        hardware_options = {
            "--count": count,
            "--hours": hours,
            "--utilization": utilization,
            "--host-watts": cpu_watts,
        }
        given = [name for name, value in hardware_options.items() if value is not None]
        if given:
            verb = "goes" if len(given) == 1 else "go"
            raise ValueError(f"{', '.join(given)} {verb} with --gpu, not with --energy-kwh")
        if energy_kwh is None:
            raise ValueError("an estimate needs an energy or a GPU: write --energy-kwh 120")
        return make_estimate(
            energy_kwh,
            intensity,
            pue=pue,
            car=car,
            assumptions=[f"energy at the devices given: {energy_kwh:g} kWh"],
        )
    if hours is None:
        raise ValueError("--gpu needs --hours: write e.g. --gpu 'H100 SXM' --hours 24")
    hardware = hardware_energy(
        gpu,
        1 if count is None else count,
        hours,
        1.0 if utilization is None else utilization,
        cpu_watts,
    )
    return make_estimate(
        hardware.energy_kwh,
        intensity,
        pue=pue,
        car=car,
        assumptions=hardware.assumptions(),
        hardware=hardware.to_dict(),
        device_energy_span_kwh=hardware.energy_kwh_range,
        subject=hardware.subject(),
    )


def load_estimate(path: str) -> Estimate:
    """Read an estimate saved by ``carbon-callbacks estimate --save``; the file is untrusted.

    Raises:
        OSError: The file cannot be read.
        ValueError: It is not JSON, or not a saved estimate.
    """
    try:
        with open(path, encoding="utf-8") as file:
            data = strict_json.loads(file.read())
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{path} is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a saved estimate")
    return Estimate.from_dict(data)
