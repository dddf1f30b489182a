"""Loaded at start-up by any interpreter with this folder first on ``PYTHONPATH``: fake GPUs."""

from tests.meters.clocked_pynvml import install

install()
