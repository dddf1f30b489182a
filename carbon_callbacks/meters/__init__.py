"""Meters: one module per hardware source, each turning its source into cumulative joules."""
