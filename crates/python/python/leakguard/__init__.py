"""leakguard for Python and Jupyter: masks secrets in kernel output.

``redact`` and ``scan`` use the built-in rules; ``Guard`` applies the same
settings, modes and audit trail as the ``leakguard`` command. Loading the
IPython extension (``%load_ext leakguard``) filters every message the kernel
sends.
"""
from ._native import Finding, Guard, PanicException, Stream, __version__, redact, scan

# What the filters contain rather than let reach a kernel or the server:
# errors, and a panic of the native code (a BaseException, not an Exception).
_CONTAINED = (Exception, PanicException)

__all__ = ["Finding", "Guard", "Stream", "redact", "scan", "__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython):
    from . import ipython as _ext

    _ext.load(ipython)


def unload_ipython_extension(ipython):
    from . import ipython as _ext

    _ext.unload(ipython)
