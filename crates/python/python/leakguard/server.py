"""jupyter_server hooks: mask secrets in notebooks and text files before they are saved.

Enable in ``jupyter_server_config.py``::

    c.ContentsManager.pre_save_hook = "leakguard.server.pre_save"

or on the command line ``--ContentsManager.pre_save_hook=leakguard.server.pre_save``.

Every cell's source (a saved notebook must not hold a secret, even one
typed into a cell), outputs (stream text, error fields, text MIME types as
strings, JSON MIME types as values; images and other binary types are never
touched), attachments' text types and metadata are masked, as are text files
saved through the contents API. Settings, modes and audit are the same as
the kernel's (channel ``jupyter``, the file's path as the notebook hint):
``log_only`` records and saves unchanged, ``block`` saves the masked text
(refusing to save would lose the user's work). Files under ALLOWLIST_PATHS
are saved as they are.
"""

import collections
import json
import os
import threading

from . import _CONTAINED
from ._native import Guard

_GUARDS = collections.OrderedDict()  # absolute path -> Guard (its audit events name the file)
_LOCK = threading.Lock()
_MAX_GUARDS = 32


def _guard(path):
    with _LOCK:
        g = _GUARDS.get(path)
        if g is not None:
            _GUARDS.move_to_end(path)
            return g
    g = Guard(channel="jupyter", notebook=path)
    with _LOCK:
        _GUARDS[path] = g
        while len(_GUARDS) > _MAX_GUARDS:
            _GUARDS.popitem(last=False)
    return g


def _abs_path(path, contents_manager):
    root = getattr(contents_manager, "root_dir", None) or os.getcwd()
    return os.path.abspath(os.path.join(root, (path or "").lstrip("/")))


def scrub_notebook(nb, guard):
    """Masks a notebook (nbformat v4 dict) in place; returns (verdict, rule ids).

    The walk is the native one the CLI scanner and the kernel proxy use."""
    verdict, masked, rules = guard.check_notebook(json.dumps(nb, ensure_ascii=False))
    if masked is not None:
        new = json.loads(masked)
        nb.clear()
        nb.update(new)
    return verdict, rules


def pre_save(model, path, contents_manager=None, **kwargs):
    """``ContentsManager.pre_save_hook``: masks the model in place.

    jupyter_server logs a failing hook and saves anyway, so an internal
    error refuses the save (HTTP 500) in block mode and is recorded."""
    if not isinstance(model, dict) or model.get("content") is None:
        return
    guard = None
    try:
        guard = _guard(_abs_path(path, contents_manager))
        _pre_save(model, guard)
    except _CONTAINED as e:
        block = True
        try:
            if guard is not None:
                guard.record("internal_error", reason=f"{type(e).__name__} while masking a file before saving")
                block = guard.mode == "block"
        except _CONTAINED:
            pass
        if block:
            from tornado.web import HTTPError

            raise HTTPError(500, "leakguard could not check this file for secrets; it was not saved") from None
        raise


def _pre_save(model, guard):
    if guard.allowlisted():
        return  # the file's path is under ALLOWLIST_PATHS
    if model.get("type") == "notebook" and isinstance(model["content"], dict):
        scrub_notebook(model["content"], guard)
    elif model.get("type") == "file" and model.get("format") == "text" and isinstance(model["content"], str):
        verdict, out, _ = guard.check(model["content"])
        if verdict in ("masked", "blocked"):
            model["content"] = out
