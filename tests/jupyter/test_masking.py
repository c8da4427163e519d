"""Masking: every way a cell shows text, on every layer and ipykernel line."""

import pytest

from conftest import assert_hidden, load_secrets
import tokens


@pytest.fixture
def k(kernel, secrets_file):
    load_secrets(kernel, secrets_file)
    return kernel


def test_print(k):
    r = k.execute("for name, s in S.items(): print(name, '=', s)")
    assert r.status == "ok", r
    assert_hidden(r)
    out = r.stream("stdout")
    assert out.count("[REDACTED]") >= len(tokens.ALL), out
    assert "openai-project = [REDACTED]" in out
