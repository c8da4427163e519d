"""Fixtures for the system tests; the helpers live in tests/support.py."""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from support import binary  # noqa: E402


@pytest.fixture(scope="session")
def leakguard():
    """Path of the release binary (built by .ci/run before the tests)."""
    try:
        return binary()
    except FileNotFoundError as e:
        pytest.fail(str(e))


def require(*tools):
    missing = [t for t in tools if shutil.which(t) is None and not os.path.exists(t)]
    if missing:
        pytest.fail(f"missing system tools {missing}: .ci/run installs them")
