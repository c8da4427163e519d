"""``jupyter leakguard``: enable the leakguard IPython extension for kernels,
and put kernels behind the leakguard kernel proxy.

    jupyter leakguard install [--user | --sys-prefix | --system] [--profile NAME]
    jupyter leakguard uninstall [--user | --sys-prefix | --system] [--profile NAME]
    jupyter leakguard install --enforce [--kernel NAME]... [--copy] [--leakguard PATH]
    jupyter leakguard uninstall --enforce [--kernel NAME]...
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

``install --enforce`` rewrites kernelspecs (every one Jupyter finds, or those
named with ``--kernel``) so that their ``argv`` starts ``leakguard
kernel-proxy``, which starts the real kernel and masks everything it sends
from outside the kernel process, where user code cannot switch it off. The
original ``kernel.json`` is kept beside it as ``kernel.json.leakguard-orig``
and put back by ``uninstall --enforce``. With ``--copy`` the original is left
alone and a wrapped copy named ``<name>-leakguard`` is installed instead (in
the user's, this environment's or the system's kernel directory: ``--user``,
``--sys-prefix``, ``--system``); that protects only sessions that choose it.
A bare ``python`` at the start of a kernel's ``argv`` becomes the interpreter
running this command, as jupyter_client does when it starts a kernel itself.
CurveZMQ is taken out of ``metadata.supported_encryption`` of a wrapped spec:
the proxy refuses encrypted connection files.
"""

import argparse
import json
import os
import re
import shutil
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

# ----------------------------------------------------------------- enforcement
PROXY_ARGS = ("kernel-proxy", "--connection-file", "{connection_file}")
ORIG_SUFFIX = ".leakguard-orig"
COPY_SUFFIX = "-leakguard"


class EnforceError(Exception):
    """A kernelspec that cannot be put behind the proxy."""


def find_leakguard(explicit=None):
    """The ``leakguard`` binary: ``--leakguard``, ``$LEAKGUARD_BIN``, or on PATH."""
    path = explicit or os.environ.get("LEAKGUARD_BIN") or shutil.which("leakguard")
    if not path or not os.access(path, os.X_OK):
        raise EnforceError(
            "the leakguard binary was not found (not on PATH, no $LEAKGUARD_BIN): pass --leakguard PATH"
            if not path
            else f"{path} is not an executable leakguard binary"
        )
    return os.path.abspath(path)


def _own_python(argv0):
    """jupyter_client's rule: a bare python of this version is this interpreter."""
    names = {"python", f"python{sys.version_info[0]}", "python%i.%i" % sys.version_info[:2]}
    return sys.executable if argv0 in names else argv0


def is_enforced(spec):
    argv = spec.get("argv") or []
    return len(argv) > 2 and argv[1:2] == ["kernel-proxy"]


def enforced_argv(argv, leakguard, interrupt_mode="signal"):
    """A kernel's argv with the kernel proxy in front of it."""
    if not any("{connection_file}" in a for a in argv):
        raise EnforceError(f"its argv {argv!r} does not name {{connection_file}}")
    inner = [a.replace("{connection_file}", "{inner_connection_file}") for a in argv]
    inner[0] = _own_python(inner[0])
    return [leakguard, *PROXY_ARGS, "--interrupt-mode", interrupt_mode, "--", *inner]


def enforced_spec(spec, leakguard):
    """A kernelspec (kernel.json as a dict) rewritten to run behind the proxy."""
    if is_enforced(spec):
        # Installing again points the spec at this binary (it may have moved).
        out = dict(spec)
        out["argv"] = [leakguard, *spec["argv"][1:]]
        return out
    mode = spec.get("interrupt_mode") or "signal"
    out = dict(spec)
    out["argv"] = enforced_argv(list(spec.get("argv") or []), leakguard, mode)
    md = dict(spec.get("metadata") or {})
    enc = md.get("supported_encryption")
    if isinstance(enc, str):
        enc = [enc]
    if isinstance(enc, list):
        kept = [e for e in enc if str(e).strip().lower() != "curve"]
        if kept:
            md["supported_encryption"] = kept
        else:
            md.pop("supported_encryption", None)
    md["leakguard"] = {"enforced": True}
    out["metadata"] = md
    return out


def _kernelspecs():
    """name -> resource directory of every kernelspec Jupyter finds."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager().find_kernel_specs()


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _dump(path, spec):
    _write(path, json.dumps(spec, indent=1) + "\n")


def _chosen(names):
    specs = _kernelspecs()
    if not names:
        return {n: d for n, d in specs.items() if not n.endswith(COPY_SUFFIX)}
    missing = [n for n in names if n not in specs]
    if missing:
        raise EnforceError(f"no kernelspec named {', '.join(missing)} (found: {', '.join(sorted(specs)) or 'none'})")
    return {n: specs[n] for n in names}


def _kernels_dir(scope):
    from jupyter_core import paths

    if scope == "sys-prefix":
        return os.path.join(sys.prefix, "share", "jupyter", "kernels")
    if scope == "system":
        return os.path.join(paths.SYSTEM_JUPYTER_PATH[0], "kernels")
    return os.path.join(paths.jupyter_data_dir(), "kernels")


def enforce(names=(), leakguard=None, copy=False, scope="user", out=sys.stdout):
    """Puts the chosen kernelspecs behind the proxy; returns the kernel.json paths written."""
    binary = find_leakguard(leakguard)
    written = []
    for name, d in sorted(_chosen(names).items()):
        path = os.path.join(d, "kernel.json")
        spec = _load(path)
        if copy:
            target = os.path.join(_kernels_dir(scope), name + COPY_SUFFIX)
            if os.path.abspath(target) != os.path.abspath(d):
                shutil.copytree(d, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("kernel.json*"))
            new = enforced_spec(spec, binary)
            new["display_name"] = f"{spec.get('display_name', name)} (leakguard)"
            new["metadata"]["leakguard"]["copy_of"] = name
            path = os.path.join(target, "kernel.json")
        else:
            backup = path + ORIG_SUFFIX
            if not is_enforced(spec) and not os.path.exists(backup):
                shutil.copy2(path, backup)
            new = enforced_spec(spec, binary)
        _dump(path, new)
        written.append(path)
        print(f"{name}: runs behind the leakguard kernel proxy ({path})", file=out)
    return written


def unenforce(names=(), out=sys.stdout):
    """Restores the chosen kernelspecs and removes wrapped copies."""
    specs = _kernelspecs()
    chosen = set(names) or set(specs)
    for name, d in sorted(specs.items()):
        path = os.path.join(d, "kernel.json")
        try:
            spec = _load(path)
        except (OSError, ValueError):
            continue
        copy_of = ((spec.get("metadata") or {}).get("leakguard") or {}).get("copy_of")
        if copy_of is not None and (copy_of in chosen or name in chosen):
            shutil.rmtree(d)
            print(f"{name}: removed (a wrapped copy of {copy_of})", file=out)
        elif name in chosen and os.path.exists(path + ORIG_SUFFIX):
            os.replace(path + ORIG_SUFFIX, path)
            print(f"{name}: restored ({path})", file=out)
        elif name in chosen and is_enforced(spec):
            print(f"{name}: enforced, but its original kernel.json is gone; reinstall the kernelspec", file=out)


def enforcement_status(out=sys.stdout):
    """Prints each kernelspec and whether it runs behind the proxy; returns how many do."""
    try:
        specs = _kernelspecs()
    except Exception as e:
        print(f"kernelspecs: cannot be listed: {e}", file=out)
        return 0
    print("kernelspecs (enforced = every session of it runs behind leakguard kernel-proxy):", file=out)
    n = 0
    for name, d in sorted(specs.items()):
        try:
            spec = _load(os.path.join(d, "kernel.json"))
        except (OSError, ValueError) as e:
            print(f"  {name}: unreadable ({e})", file=out)
            continue
        if is_enforced(spec):
            n += 1
            binary = spec["argv"][0]
            ok = "" if os.access(binary, os.X_OK) else f" -- {binary} is missing: kernels will not start"
            print(f"  {name}: enforced ({d}){ok}", file=out)
        else:
            print(f"  {name}: not enforced ({d})", file=out)
    return n



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
        s.add_argument("--enforce", action="store_true", help="kernelspecs: run kernels behind the leakguard kernel proxy")
        s.add_argument("--kernel", action="append", default=[], metavar="NAME", help="with --enforce: this kernelspec (repeatable; default: all)")
        if name == "install":
            s.add_argument("--copy", action="store_true", help="with --enforce: install wrapped copies NAME-leakguard, keep the originals")
            s.add_argument("--leakguard", metavar="PATH", help="with --enforce: the leakguard binary (default: $LEAKGUARD_BIN or on PATH)")
        s.set_defaults(scope="user")
    sub.add_parser("status", help="show where the extension is enabled")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "status":
        code = status()
        enforced = enforcement_status()
        return 0 if code == 0 or enforced else 1
    if args.enforce:
        try:
            if args.command == "install":
                enforce(args.kernel, args.leakguard, args.copy, args.scope)
            else:
                unenforce(args.kernel)
            return 0
        except (EnforceError, OSError) as e:
            print(f"jupyter leakguard {args.command} --enforce: {e}", file=sys.stderr)
            return 1
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
