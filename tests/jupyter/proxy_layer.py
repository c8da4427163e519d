"""The kernel-proxy layers: kernels started behind ``leakguard kernel-proxy``
with the argv that ``jupyter leakguard install --enforce`` writes.

``PROXY`` runs the masking suite with the in-kernel extension NOT loaded (the
proxy alone must mask everything); ``PROXY_AND_EXTENSION`` has both, for the
tamper tests (user code switches the extension off, the proxy stays).
"""

import os

from conftest import ROOT, Layer, register_layer


def binary():
    """The leakguard binary (built by ./test.sh before the tests)."""
    path = os.environ.get("LEAKGUARD_BIN", os.path.join(ROOT, "target", "release", "leakguard"))
    assert os.access(path, os.X_OK), f"{path} missing: run cargo build --release first"
    return path


def proxy_argv(argv, kernel):
    from leakguard.jupyter_cli import enforced_argv

    return enforced_argv(argv, binary())


PROXY = Layer("proxy", extension=False, wrap=proxy_argv)
PROXY_AND_EXTENSION = Layer("proxy+extension", extension=True, wrap=proxy_argv)
register_layer(PROXY)
