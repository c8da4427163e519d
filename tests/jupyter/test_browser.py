"""End to end: a real JupyterLab page in headless Chromium runs a notebook
that prints secrets; what the page shows, what reaches it over the
websocket and the saved .ipynb hold [REDACTED] and no piece of a secret.

Run twice: the kernel loads the extension (installed in the server's
IPYTHONDIR, as `jupyter leakguard install` does), or the extension is off
and the kernelspec runs the kernel behind `leakguard kernel-proxy` (as
`jupyter leakguard install --enforce` writes it). The server masks cell
sources on save (`leakguard.server.pre_save`). The screenshot is kept in
target/jupyter/lab.png.
"""

import json
import os
import secrets
import shutil
import subprocess
import urllib.request

import pytest

from conftest import HERE, TARGET, LINES, assert_hidden, strings, support
import tokens

JUPYTER = os.path.join(LINES["ik7"], "bin", "jupyter")
SCREENSHOT = os.path.join(TARGET, "lab.png")
PAT = tokens.BY_NAME["github-pat"].text


class Lab:
    def __init__(self, base, token, root, proc, log):
        self.base, self.token, self.root, self.proc, self.log = base, token, root, proc, log

    def api(self, method, path, body=None):
        req = urllib.request.Request(
            f"{self.base}/api/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            data = r.read()
            return json.loads(data) if data else None

    def server_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-4000:]


@pytest.fixture(params=["extension", "enforced"])
def lab(tmp_path, request):
    missing = [t for t in ("/usr/bin/chromium", "node") if not shutil.which(t)]
    if missing:
        pytest.fail(f"{missing} missing: tests/jupyter/setup.sh installs them")
    port = support.free_port()
    token = secrets.token_hex(16)
    root = tmp_path / "root"
    root.mkdir()
    ipydir = tmp_path / "ipython"
    from leakguard import jupyter_cli

    kernels = tmp_path / "jupyter-path" / "kernels" / "python3"
    if request.param == "extension":
        jupyter_cli.install(str(ipydir / "profile_default"))
    else:
        spec = {"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python 3",
                "language": "python", "metadata": {"supported_encryption": ["curve"]}}
        kernels.mkdir(parents=True)
        (kernels / "kernel.json").write_text(json.dumps(jupyter_cli.enforced_spec(spec, support.binary())))
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No "Jupyter news" question in the screenshot.
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = support.isolated_env(str(tmp_path))
    for k in ("PYTEST_CURRENT_TEST", "JPY_SESSION_NAME"):
        env.pop(k, None)
    env.update(
        IPYTHONDIR=str(ipydir),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_PATH=str(tmp_path / "jupyter-path"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
        LEAKGUARD_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
        ALLOWLIST_PATHS="[]",
    )
    log = str(tmp_path / "server.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                JUPYTER, "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True",
                "--ContentsManager.pre_save_hook=leakguard.server.pre_save",
            ],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(root), start_new_session=True,
        )  # fmt: skip
    lab = Lab(f"http://127.0.0.1:{port}", token, root, proc, log)
    lab.mode = request.param
    try:

        def up():
            if proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited:\n{lab.server_log()}")
            try:
                return lab.api("GET", "status") is not None
            except OSError:
                return False

        support.wait_for("jupyter lab to listen", up, timeout=90, interval=0.3)
        yield lab
    finally:
        try:
            for k in lab.api("GET", "kernels") or []:
                lab.api("DELETE", f"kernels/{k['id']}")
        except Exception:
            pass
        support.stop(proc)


def notebook(secrets_path):
    cells = [
        f"import json\nS = json.load(open({secrets_path!r}))\nprint('loaded', len(S), 'secrets')",
        "for name, s in S.items():\n    print(name, '=', s)",
        "from IPython.display import display, HTML, Markdown\n"
        "display(HTML('<b>token</b> ' + S['anthropic']))\n"
        "display(Markdown('**key** `' + S['openai-project'] + '`'))\n"
        "S['github-pat']",
        f"typed = {PAT!r}  # a secret typed into a cell\nprint('typed', len(typed), 'characters')",
        "raise ValueError('bad credentials ' + S['db-url'])",
    ]
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
            for i, src in enumerate(cells)
        ],
    }


def test_jupyterlab_shows_and_saves_no_secret(lab, secrets_file):
    # Written to disk, not through the contents API: its save hook would mask
    # the secret typed into cell 4 before the kernel ever ran it.
    (lab.root / "work").mkdir()
    (lab.root / "work" / "secrets.ipynb").write_text(json.dumps(notebook(secrets_file)))
    p = subprocess.run(
        [
            "node", os.path.join(HERE, "lab_driver.mjs"), "--url", lab.base, "--token", lab.token,
            "--path", "work/secrets.ipynb", "--screenshot", SCREENSHOT, "--timeout", "120",
        ],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert p.returncode == 0, f"driver failed:\n{p.stderr[-3000:]}\nserver log:\n{lab.server_log()}"
    seen = json.loads(p.stdout.strip().split("\n")[-1])  # not splitlines: frames may hold U+2028
    assert seen["cells"] == 5

    outputs = seen["outputs"]
    shown = "\n".join(outputs)
    assert "loaded 12 secrets" in shown, shown
    assert "github-pat = [REDACTED]" in shown and "typed 40 characters" in shown, shown
    assert "ValueError: bad credentials [REDACTED]" in shown, shown
    assert_hidden([(f"rendered output {i}", t) for i, t in enumerate(outputs)])
    assert seen["frames"], "no websocket frames were seen"
    assert_hidden([(f"websocket frame {i}", f) for i, f in enumerate(seen["frames"])])

    with open(lab.root / "work" / "secrets.ipynb") as f:
        saved = json.load(f)
    assert_hidden(list(strings(saved, "saved notebook")))
    assert "[REDACTED]" in "".join(saved["cells"][3]["source"]), "the typed secret is masked in the saved source"
    assert any("[REDACTED]" in json.dumps(c["outputs"]) for c in saved["cells"])
    with open(SCREENSHOT, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    if lab.mode == "enforced":
        audit = (lab.root.parent / "audit.jsonl").read_text()
        assert '"enforced":true' in audit and '"secret_detected"' in audit, "the proxy masked the outputs"
