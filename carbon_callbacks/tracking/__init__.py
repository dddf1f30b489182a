"""Runs over the meters: the sampler thread, the tracker, measurements and configuration."""
