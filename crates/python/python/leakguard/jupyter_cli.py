"""``jupyter leakguard``: enable the leakguard IPython extension for kernels.

    jupyter leakguard install [--user | --sys-prefix | --system] [--profile NAME]
    jupyter leakguard uninstall [--user | --sys-prefix | --system] [--profile NAME]
    jupyter leakguard status

``install`` adds ``leakguard`` to ``c.InteractiveShellApp.extensions`` in an
``ipython_kernel_config.py`` that every IPython kernel reads. It appends a
marked block at the end of the file (other settings and extensions are kept;
installing again replaces the block), using ``.append`` so extensions set in
other config files are kept too. ``uninstall`` removes the block.

Where (the IPython kernel reads its config from these directories, not from
jupyter_core's ``~/.jupyter``, which jupyter_core's own applications use):

- ``--user`` (default): ``$IPYTHONDIR/profile_<NAME>/`` (``~/.ipython/profile_default``);
- ``--sys-prefix``: ``<sys.prefix>/etc/ipython/`` (this environment's kernels);
- ``--system``: ``/etc/ipython/`` (every environment on the machine).

A kernel started with ``--profile``, ``--ipython-dir`` or its own
``IPYTHONDIR`` reads another profile directory; ``status`` shows what a
kernel started like this process would load.
"""

import argparse
import os
import re
import sys

CONFIG_NAME = "ipython_kernel_config.py"
BEGIN = "# >>> leakguard >>>"
END = "# <<< leakguard <<<"
BLOCK = (
    f"{BEGIN}\n"
    "# Added by `jupyter leakguard install`; removed by `jupyter leakguard uninstall`.\n"
    "# Masks secrets in everything the kernel sends (see `python -m leakguard.ipython`).\n"
    'c.InteractiveShellApp.extensions.append("leakguard")\n'
    f"{END}\n"
)
_BLOCK_RE = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)


def _ipython_dir():
    # IPython falls back to a temporary directory when IPYTHONDIR cannot be
    # written; a config written there would be lost, so use it as given.
    env = os.environ.get("IPYTHONDIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    try:
        from IPython.paths import get_ipython_dir

        return get_ipython_dir()
    except Exception:
        return os.environ.get("IPYTHONDIR") or os.path.join(os.path.expanduser("~"), ".ipython")


def _env_dirs():
    try:
        from IPython.core.application import ENV_CONFIG_DIRS

        return list(ENV_CONFIG_DIRS)
    except Exception:
        return [os.path.join(sys.prefix, "etc", "ipython")]


def _system_dirs():
    try:
        from IPython.core.application import SYSTEM_CONFIG_DIRS

        return list(SYSTEM_CONFIG_DIRS)
    except Exception:
        return ["/usr/local/etc/ipython", "/etc/ipython"]


def _jupyter_dirs():
    """jupyter_core's config directories (shown by status; kernels do not read them)."""
    try:
        from jupyter_core.paths import jupyter_config_path

        return jupyter_config_path()
    except Exception:
        return []


def target_dir(scope, profile="default"):
    if scope == "user":
        return os.path.join(_ipython_dir(), f"profile_{profile}")
    if scope == "sys-prefix":
        return os.path.join(sys.prefix, "etc", "ipython")
    if scope == "system":
        dirs = _system_dirs()
        return dirs[-1] if dirs else "/etc/ipython"
    raise ValueError(scope)


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".leakguard-tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def install(directory):
    """Adds (or refreshes) the block; returns the config file path."""
    path = os.path.join(directory, CONFIG_NAME)
    text = _read(path)
    if text is None:
        text = "# Configuration of the IPython kernel.\nc = get_config()  # noqa\n\n"
    text = _BLOCK_RE.sub("", text)
    if text and not text.endswith("\n"):
        text += "\n"
    _write(path, text + BLOCK)
    return path


def uninstall(directory):
    """Removes the block; returns (path, whether it was there)."""
    path = os.path.join(directory, CONFIG_NAME)
    text = _read(path)
    if text is None or not _BLOCK_RE.search(text):
        return path, False
    _write(path, _BLOCK_RE.sub("", text))
    return path, True


def _state(path):
    text = _read(path)
    if text is None:
        return "no file"
    if _BLOCK_RE.search(text):
        return "installed"
    if re.search(r"""["']leakguard["']""", text):
        return "mentions leakguard (not managed by this command)"
    return "not installed"


def status(out=sys.stdout):
    try:
        from . import __version__

        print(f"leakguard {__version__} (native module loads)", file=out)
    except Exception as e:  # the native module does not load in this Python
        print(f"leakguard: the native module does not load: {type(e).__name__}: {e}", file=out)
    print(f"python: {sys.executable}", file=out)
    print("kernel config files (IPython kernels read these, highest priority first):", file=out)
    dirs = [os.path.join(_ipython_dir(), "profile_default")] + _env_dirs() + _system_dirs()
    found = False
    for d in dirs:
        path = os.path.join(d, CONFIG_NAME)
        st = _state(path)
        found |= st == "installed"
        print(f"  {path}: {st}", file=out)
    extra = [d for d in _jupyter_dirs() if os.path.exists(os.path.join(d, CONFIG_NAME))]
    for d in extra:
        print(f"  {os.path.join(d, CONFIG_NAME)}: {_state(os.path.join(d, CONFIG_NAME))} (a Jupyter config dir: kernels do not read it)", file=out)
    try:
        from ._native import Guard

        g = Guard(channel="jupyter")
        print(f"settings: redact_mode={g.mode} scan_input={str(g.scan_input).lower()} mask_widget_state={str(g.mask_widget_state).lower()}", file=out)
    except Exception as e:
        print(f"settings: cannot be loaded: {e}", file=out)
    print("enabled for kernels started from this environment" if found else "not enabled: run `jupyter leakguard install`", file=out)
    return 0 if found else 1


def _parser():
    p = argparse.ArgumentParser(prog="jupyter leakguard", description="Enable leakguard's secret masking in IPython kernels.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (("install", "enable the extension for kernels"), ("uninstall", "disable it")):
        s = sub.add_parser(name, help=help_)
        g = s.add_mutually_exclusive_group()
        g.add_argument("--user", dest="scope", action="store_const", const="user", help="the user's IPython profile (default)")
        g.add_argument("--sys-prefix", dest="scope", action="store_const", const="sys-prefix", help=f"this environment ({sys.prefix}/etc/ipython)")
        g.add_argument("--system", dest="scope", action="store_const", const="system", help="every environment (/etc/ipython)")
        s.add_argument("--profile", default="default", help="IPython profile for --user (default: default)")
        s.set_defaults(scope="user")
    sub.add_parser("status", help="show where the extension is enabled")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "status":
        return status()
    directory = target_dir(args.scope, args.profile)
    try:
        if args.command == "install":
            path = install(directory)
            print(f"leakguard enabled in {path}")
            return 0
        path, was = uninstall(directory)
        print(f"leakguard disabled in {path}" if was else f"leakguard was not enabled in {path}")
        return 0
    except OSError as e:
        print(f"jupyter leakguard {args.command}: cannot write {directory}: {e.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
