"""Grid carbon intensity: the hook the tracker uses to turn energy into CO2e."""
