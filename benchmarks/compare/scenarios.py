"""The synthetic hardware's power over time: the traces and scenarios of the accuracy harness.

Each scenario gives the power both fake GPUs and the fake CPU package draw over time since the
tool's start; ``accuracy.py`` integrates them for the truth and its fakes report them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass(frozen=True)
class Trace:
    """Piecewise-constant power over time since the origin.

    Attributes:
        segments: (seconds, watts) in order.
        repeat: True: the segments repeat forever; False: ``tail_w`` follows them.
        tail_w: Power after the segments when they do not repeat.
    """

    segments: tuple[tuple[float, float], ...]
    repeat: bool = True
    tail_w: float = 0.0

    def power_w(self, t: float) -> float:
        """Watts at ``t`` seconds after the origin (the first segment's before it)."""
        if t < 0:
            return self.segments[0][1]
        period = sum(seconds for seconds, _ in self.segments)
        if self.repeat:
            t %= period
        elif t >= period:
            return self.tail_w
        ends = _ends(self.segments)
        return self.segments[min(bisect.bisect_right(ends, t), len(ends) - 1)][1]

    def energy_j(self, t: float) -> float:
        """Joules from the origin to ``t`` (negative before the origin)."""
        if t < 0:
            return self.segments[0][1] * t
        period = sum(seconds for seconds, _ in self.segments)
        per_period = sum(seconds * watts for seconds, watts in self.segments)
        if self.repeat:
            whole, t = divmod(t, period)
            base = whole * per_period
        elif t >= period:
            return per_period + (t - period) * self.tail_w
        else:
            base = 0.0
        for seconds, watts in self.segments:
            step = min(seconds, t)
            base += step * watts
            t -= step
            if t <= 0:
                break
        return base


def _ends(segments: tuple[tuple[float, float], ...]) -> list[float]:
    ends, total = [], 0.0
    for seconds, _ in segments:
        total += seconds
        ends.append(total)
    return ends


@dataclass(frozen=True)
class Scenario:
    """The GPU trace (both GPUs follow it), the CPU package trace, and whose GPUs, of one run.

    ``vendor`` says which fake binding has the GPUs: ``nvidia`` (``fakes/pynvml.py``) or ``amd``
    (``fakes/amdsmi.py``); the other binding's import then fails as on a machine without it.
    """

    name: str
    description: str
    gpu: Trace
    cpu: Trace
    vendor: str = "nvidia"


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario("constant", "GPU 200 W, CPU 45 W", Trace(((1.0, 200.0),)), Trace(((1.0, 45.0),))),
        Scenario(
            "bursty",
            "GPU 60 W with 150 ms spikes to 320 W every 0.7 s; CPU 20 W with 100 ms spikes to "
            "95 W every 0.45 s",
            Trace(((0.55, 60.0), (0.15, 320.0))),
            Trace(((0.35, 20.0), (0.10, 95.0))),
        ),
        Scenario(
            "idle_tail",
            "GPU 250 W for 4 s then 25 W; CPU 70 W for 4 s then 8 W",
            Trace(((4.0, 250.0),), repeat=False, tail_w=25.0),
            Trace(((4.0, 70.0),), repeat=False, tail_w=8.0),
        ),
    )
}
for _name in ("constant", "bursty"):
    _same = SCENARIOS[_name]
    SCENARIOS[f"amd_{_name}"] = Scenario(
        f"amd_{_name}", f"AMD GPUs (amdsmi), else as {_name}", _same.gpu, _same.cpu, "amd"
    )
