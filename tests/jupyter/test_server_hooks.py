"""The jupyter_server save hook: a notebook saved through the contents API
never holds a secret, whatever the front end sent."""

import base64
import json
import os
import subprocess
import urllib.request

import pytest

import tokens
from conftest import LINES, leaks, support

GH = tokens.BY_NAME["github-pat"]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    python = os.path.join(LINES["ik7"], "bin", "python")
    port = support.free_port()
    token = "test-token-" + os.urandom(8).hex()
    env = support.isolated_env(str(root))
    env.update(LEAKGUARD_AUDIT_LOG=str(root / "audit.jsonl"), ALLOWLIST_PATHS="[]", JUPYTER_CONFIG_DIR=str(root / "config"),
               JUPYTER_DATA_DIR=str(root / "data"), JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    (root / "notebooks").mkdir()
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(
        [python, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root / 'notebooks'}",
         "--ContentsManager.pre_save_hook=leakguard.server.pre_save"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def call(method, path, body=None):
        req = urllib.request.Request(base + path, method=method, headers={"Authorization": f"token {token}"},
                                     data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")

    def up():
        try:
            return call("GET", "/api/status")[0] == 200
        except OSError:
            return False

    try:
        support.wait_for("jupyter_server to answer", up, timeout=60)
        yield call, root
    finally:
        support.stop(proc)
        log.close()


def notebook():
    s = GH.text
    return {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": [
            {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": 1,
             "source": ["import os\n", "print(os.environ['TOKEN'])"],
             "outputs": [
                 {"output_type": "stream", "name": "stdout", "text": [f"{s[:12]}", f"{s[12:]}\n"]},
                 {"output_type": "display_data", "metadata": {},
                  "data": {"text/plain": [f"'{s}'"], "image/png": PNG, "application/json": {"token": s}}},
                 {"output_type": "error", "ename": "ValueError", "evalue": f"bad token {s}",
                  "traceback": [f"\x1b[0;31mValueError\x1b[0m: bad token {s}"]},
             ]},
            {"cell_type": "code", "id": "c2", "metadata": {}, "execution_count": 2,
             "source": f"token = {s!r}", "outputs": []},
        ],
    }


def test_saved_notebooks_hold_no_secret(server):
    call, root = server
    status, _ = call("PUT", "/api/contents/secret.ipynb", {"type": "notebook", "format": "json", "content": notebook()})
    assert status in (200, 201)
    on_disk = (root / "notebooks" / "secret.ipynb").read_text()
    assert not leaks([("file on disk", on_disk)], [GH]), on_disk
    _, model = call("GET", "/api/contents/secret.ipynb?content=1")
    nb = model["content"]
    outs = nb["cells"][0]["outputs"]
    assert "".join(outs[0]["text"]) == "[REDACTED]\n", "a secret split over two lines of a stream is still found"
    assert outs[1]["data"]["image/png"] == PNG, "binary outputs are never changed"
    assert outs[1]["data"]["application/json"] == {"token": "[REDACTED]"}
    assert nb["cells"][1]["source"] == "token = '[REDACTED]'", "typed secrets are masked in cell sources too"
    audit = (root / "audit.jsonl").read_text()
    assert '"secret_detected"' in audit and "secret.ipynb" in audit
    assert not leaks([("audit", audit)], [GH])


def test_clean_notebooks_are_saved_unchanged(server):
    call, root = server
    nb = notebook()
    nb["cells"] = [{"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "just text"}]
    call("PUT", "/api/contents/clean.ipynb", {"type": "notebook", "format": "json", "content": nb})
    _, model = call("GET", "/api/contents/clean.ipynb?content=1")
    assert model["content"]["cells"] == nb["cells"]
