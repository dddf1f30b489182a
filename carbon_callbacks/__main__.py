"""``python -m carbon_callbacks``: the same as the ``carbon-callbacks`` command."""

from __future__ import annotations

from carbon_callbacks.cli import main

raise SystemExit(main())
