"""The harness itself: without leakguard the secrets do show, so a passing
masking test means something."""

from conftest import PLAIN, leaks, load_secrets
import tokens


def test_unprotected_kernel_shows_every_secret(kernels, line, secrets_file):
    k = kernels.get(line, PLAIN)
    load_secrets(k, secrets_file)
    r = k.execute("import os\nfor s in S.values(): print(s)\nos.system('echo fd-level: ' + S['github-pat'])")
    shown = {name for name, _, _ in leaks(r.texts())}
    assert shown == {s.name for s in tokens.ALL}
    # fd output is captured by ipykernel here (PYTEST_CURRENT_TEST removed from its environment).
    assert "fd-level: " + tokens.BY_NAME["github-pat"].text in r.stream("stdout")
