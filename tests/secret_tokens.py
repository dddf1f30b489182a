"""The API tokens the tests pass, in one place, so one test can prove none of them reached disk.

Each is distinctive enough that finding it in a file cannot be a coincidence, and fit for an HTTP
header (printable ASCII, no spaces), as the Electricity Maps client requires.
"""

from __future__ import annotations

TOKEN = "cc-test-token-7c1e5a9f-never-on-disk"
"""The token a test passes when it needs one."""

OTHER_TOKEN = "cc-test-token-3d8b42e0-also-secret"
"""A second one, for tests that need two (an argument beside a variable)."""

TEST_TOKENS = (TOKEN, OTHER_TOKEN)
"""Every token the tests use; ``tests/reliability/test_secrets.py`` greps the session for them."""
