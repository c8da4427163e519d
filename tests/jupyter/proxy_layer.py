"""The kernel-proxy layers: kernels started behind ``leakguard kernel-proxy``
with the argv that ``jupyter leakguard install --enforce`` writes.

``PROXY`` runs the masking suite with the in-kernel extension NOT loaded (the
proxy alone must mask everything); ``PROXY_AND_EXTENSION`` has both, for the
tamper tests (user code switches the extension off, the proxy stays).
"""

from conftest import Layer, register_layer, support


def proxy_argv(argv, kernel):
    from leakguard.jupyter_cli import enforced_argv

    return enforced_argv(argv, support.binary())


PROXY = Layer("proxy", extension=False, wrap=proxy_argv)
PROXY_AND_EXTENSION = Layer("proxy+extension", extension=True, wrap=proxy_argv)
register_layer(PROXY)
