"""Loaded at start-up by any interpreter with this folder first on ``PYTHONPATH``: fake GPUs.

NVIDIA's (``tests.meters.clocked_pynvml``) unless ``CLOCKED_FAKE_VENDOR`` is ``amd``
(``tests.meters.clocked_amdsmi``); ``CLOCKED_FAKE_HIDE`` hides modules with either.
"""

import os

from tests.meters import clocked_amdsmi, clocked_pynvml

if os.environ.get(clocked_pynvml.VENDOR_VARIABLE) == "amd":
    clocked_amdsmi.install()
    clocked_pynvml.hide_modules()
else:
    clocked_pynvml.install()
