"""The IPython extension's own features: modes, input scanning and history,
the allowlist, audit events and containment of its own errors.

These run on both ipykernel lines with the extension layer only (a proxy
cannot interrupt a cell from inside or scrub the kernel's history).
"""

import json
import os
import time

import pytest

from conftest import EXTENSION, assert_hidden, leaks, load_secrets
import tokens

PAT = tokens.BY_NAME["github-pat"]


@pytest.fixture
def kernel_with(kernels, line, secrets_file):
    """A kernel of this line with these settings, ``S`` loaded."""

    def get(tag=None, **settings):
        k = kernels.get(line, EXTENSION, tag=tag, **settings)
        load_secrets(k, secrets_file)
        return k

    return get


def defined(k, name):
    return k.eval(f"{name!r} in globals()") == "True"


def events(k, kind=None, parent=None):
    return [
        e for e in k.audit() if (kind is None or e["event"] == kind) and (parent is None or e.get("parent") == parent)
    ]


def assert_audit_clean(k):
    """The audit log holds metadata only: no piece of any secret."""
    found = leaks([("audit log", k.audit_text())])
    assert not found, found


def withheld_error(r):
    blocked = [e for e in r.errors if e["ename"] == "SecretBlocked"]
    assert blocked, r
    return blocked[0]["evalue"]


# ------------------------------------------------------------------- block
@pytest.mark.parametrize(
    "code, rule",
    [
        pytest.param("print('token', S['github-pat'])\ntime.sleep(30)", "github-pat", id="python-print"),
        pytest.param(
            "print(S['anthropic'], flush=True)\nsubprocess.run(['sleep', '30'])",
            "anthropic-api-key",
            id="blocking-subprocess",
        ),
        pytest.param(
            "os.system('echo child ' + repr(S['huggingface']))\ntime.sleep(30)",
            "huggingface-access-token",
            id="child-fd-output",
        ),
    ],
)
def test_block_withholds_output_and_interrupts_the_cell(kernel_with, code, rule):
    k = kernel_with(REDACT_MODE="block")
    k.execute("import os, subprocess, time\ntry:\n    del after\nexcept NameError:\n    pass")
    t = time.monotonic()
    r = k.execute(code + "\nafter = 1")
    took = time.monotonic() - t
    assert r.status == "error", r
    assert took < 15, f"the cell was not interrupted ({took:.1f}s)"
    assert_hidden(r)
    evalue = withheld_error(r)
    assert rule in evalue, evalue
    assert "[REDACTED]" not in r.stream(), "block mode withholds; it does not mask"
    assert not defined(k, "after")
    assert k.execute("print('still', 'alive')").stream() == "still alive\n"
    assert events(k, "blocked", parent=r.msg_id)
    assert_audit_clean(k)


def test_block_display_stops_the_cell_where_it_is(kernel_with):
    k = kernel_with(REDACT_MODE="block")
    r = k.execute("from IPython.display import display, HTML\ndisplay(HTML(S['stripe-live']))\nafter_display = 1")
    assert r.status == "error", r
    assert_hidden(r)
    assert "stripe-secret-key" in withheld_error(r)
    assert r.reply["content"]["ename"] == "SecretBlocked"
    assert not defined(k, "after_display")
    # The traceback shows neither the secret nor leakguard's own code.
    tb = "\n".join(r.errors[-1]["traceback"])
    assert "leakguard/ipython.py" not in tb, tb


def test_block_result_and_error(kernel_with):
    k = kernel_with(REDACT_MODE="block")
    r = k.execute("S['slack-bot']")
    assert r.status == "error", r
    assert_hidden(r)
    assert not r.of_type("execute_result")
    r = k.execute("raise RuntimeError('login failed for ' + S['db-url'])")
    assert r.status == "error"
    assert_hidden(r)
    assert "url-credentials" in withheld_error(r)


def test_block_leaves_clean_output_alone(kernel_with):
    k = kernel_with(REDACT_MODE="block")
    r = k.execute("print('fine'); 6 * 7")
    assert r.status == "ok" and r.stream() == "fine\n"
    assert r.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "42"


# ---------------------------------------------------------------- log_only
def test_log_only_passes_output_and_records_it(kernel_with):
    k = kernel_with(REDACT_MODE="log_only")
    r = k.execute("for name, s in S.items(): print(name, s)")
    assert r.status == "ok"
    assert {name for name, _, _ in leaks(r.texts())} == {s.name for s in tokens.ALL}, "log_only changes nothing"
    assert "[REDACTED]" not in r.stream()
    found = events(k, "secret_detected", parent=r.msg_id)
    rules = {e["rule"] for e in found}
    assert {"github-pat", "openai-project-api-key", "private-key", "prc-resident-id"} <= rules, rules
    assert all(e["action"] == "log_only" and e["channel"] == "jupyter" for e in found), found
    assert_audit_clean(k)


# -------------------------------------------------------------- SCAN_INPUT
def dump_inputs(k, tmp_path):
    """``In`` and ``_ih`` as the kernel holds them (written to a file: a
    reply would be masked on its way out)."""
    path = tmp_path / "inputs.json"
    k.execute(f"import json as _j; _j.dump({{'In': In, '_ih': _ih}}, open({str(path)!r}, 'w'))", store_history=False)
    return json.loads(path.read_text())


def assert_history_scrubbed(k, tmp_path, secret=PAT):
    rows = k.history_db()
    assert rows, "history.sqlite has the session's cells"
    found = leaks([(f"history.sqlite row {i}", " | ".join(row)) for i, row in enumerate(rows)], [secret])
    assert not found, found
    inputs = dump_inputs(k, tmp_path)
    found = leaks([("In", "\n".join(inputs["In"])), ("_ih", "\n".join(inputs["_ih"]))], [secret])
    assert not found, found
    return rows


def test_scan_input_mask_runs_the_cell_and_scrubs_history(kernel_with, tmp_path):
    k = kernel_with(tag="scan-input")
    r = k.execute(f"tok = {PAT.text!r}\nlen(tok)")
    assert r.status == "ok", r
    assert r.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "40", "the cell ran with the real value"
    assert_hidden(r)
    assert "[REDACTED]" in r.of_type("execute_input")[0]["content"]["code"]
    rows = assert_history_scrubbed(k, tmp_path)
    assert any("tok = '[REDACTED]'" in src for src, _ in rows), rows
    hist = k.request("history", hist_access_type="tail", n=50, output=False, raw=True)
    assert_hidden(hist)
    assert [e["rule"] for e in events(k, "input_secret_detected", parent=r.msg_id)] == ["github-pat"]
    assert_audit_clean(k)


def test_scan_input_block_refuses_the_cell(kernel_with, tmp_path):
    k = kernel_with(REDACT_MODE="block")
    r = k.execute(f"refused = {PAT.text!r}")
    assert r.status == "error", r
    assert_hidden(r)
    evalue = withheld_error(r)
    assert "did not run" in evalue and "github-pat" in evalue, evalue
    assert not defined(k, "refused")
    assert_history_scrubbed(k, tmp_path)
    assert events(k, "input_secret_detected", parent=r.msg_id)
    # Cells after it run.
    assert k.execute("print(1 + 1)").stream() == "2\n"


def test_scan_input_log_only_still_scrubs_history(kernel_with, tmp_path):
    k = kernel_with(REDACT_MODE="log_only")
    r = k.execute(f"logged = {PAT.text!r}")
    assert r.status == "ok", r
    assert defined(k, "logged")
    assert_history_scrubbed(k, tmp_path)
    assert [e["action"] for e in events(k, "input_secret_detected", parent=r.msg_id)] == ["log_only"]


def test_scan_input_off_records_no_input_event(kernel_with):
    k = kernel_with(SCAN_INPUT="false")
    r = k.execute(f"unscanned = {PAT.text!r}")
    assert r.status == "ok", r
    assert_hidden(r)  # the execute_input echo is output, and masked as such
    assert not events(k, "input_secret_detected")


# -------------------------------------------------------- ALLOWLIST_PATHS
def test_allowlisted_notebook_is_not_filtered(kernel_with, tmp_path_factory):
    trusted = str(tmp_path_factory.mktemp("trusted"))
    k = kernel_with(JPY_SESSION_NAME=os.path.join(trusted, "team", "nb.ipynb"), ALLOWLIST_PATHS=trusted + "/")
    r = k.execute("print(S['github-pat'])")
    assert r.stream() == PAT.text + "\n"
    starts = events(k, "session_start")
    assert starts and "allowlisted" in starts[0].get("reason", ""), starts


def test_notebook_outside_the_allowlist_is_filtered(kernel_with, tmp_path_factory):
    trusted = str(tmp_path_factory.mktemp("trusted"))
    work = str(tmp_path_factory.mktemp("work"))
    nb = os.path.join(work, "nb.ipynb")
    k = kernel_with(JPY_SESSION_NAME=nb, ALLOWLIST_PATHS=trusted + "/")
    r = k.execute("print(S['github-pat'])")
    assert r.stream() == "[REDACTED]\n"
    found = events(k, "secret_detected", parent=r.msg_id)
    assert found and all(e["notebook"] == nb and e["channel"] == "jupyter" for e in found), found


# ------------------------------------------------------------------- audit
def test_audit_events_name_rule_request_and_notebook(kernel_with):
    k = kernel_with(JPY_SESSION_NAME="/srv/notebooks/analysis.ipynb")
    r = k.execute("from IPython.display import display, HTML\nprint(S['aws-access-key-id'])\ndisplay(HTML(S['jwt']))")
    assert r.status == "ok"
    found = events(k, "secret_detected", parent=r.msg_id)
    assert {e["rule"] for e in found} == {"aws-access-key-id", "jwt"}, found
    for e in found:
        assert e["channel"] == "jupyter" and e["action"] == "mask" and e["notebook"] == "/srv/notebooks/analysis.ipynb"
        assert e["fingerprint"] and e["fingerprint"] not in tokens.BY_NAME["jwt"].text
    assert events(k, "session_start")
    assert_audit_clean(k)


# ------------------------------------------------------------ containment
INJECT = (
    "import leakguard.ipython as _lg\n"
    "_flt = _lg._active.filter\n"
    "def _broken(*a, **k):\n"
    "    raise RuntimeError('injected failure')\n"
    "_flt._walker = _broken\n"
    "_flt._stream = _broken\n"
)
RESTORE = "del _flt._walker, _flt._stream"


@pytest.mark.parametrize("mode", ["mask", "block"])
def test_an_internal_error_is_contained(kernel_with, mode):
    k = kernel_with(tag="internal-error", REDACT_MODE=mode)
    # (In block mode the reply to this cell is already withheld: it passes the broken filter.)
    k.execute(INJECT)
    try:
        r = k.execute("from IPython.display import display, HTML\nprint('out', S['jwt'])\ndisplay(HTML(S['jwt']))")
    finally:
        k.execute(RESTORE)
    assert k.alive()
    assert k.execute("print('after')").stream() == "after\n"
    errors = events(k, "internal_error", parent=r.msg_id)
    assert errors and all("RuntimeError" in e["reason"] for e in errors), errors
    shown = leaks(r.texts(), [tokens.BY_NAME["jwt"]])
    if mode == "block":
        assert not shown, "block mode fails closed"
        assert any("could not be checked" in e["evalue"] for e in r.errors), r
    else:
        assert shown, "mask mode passes the message through (and records why)"
    assert_audit_clean(k)


# ------------------------------------------------------------ widget state
WIDGET = (
    "from comm import create_comm\n"
    "c = create_comm(target_name='leakguard.test', data={'state': {'value': S['huggingface']}, 'buffer_paths': []})\n"
    "c.send({'method': 'update', 'state': {'value': S['huggingface']}})"
)


def test_widget_state_is_left_alone_by_default(kernel_with):
    # Masking it would break two-way binding: the front end would send [REDACTED] back.
    k = kernel_with(tag="widgets")
    r = k.execute(WIDGET)
    assert r.status == "ok", r
    comms = r.of_type("comm_open", "comm_msg")
    assert len(comms) == 2
    assert all(tokens.BY_NAME["huggingface"].text in json.dumps(m["content"]["data"]) for m in comms)


def test_widget_state_is_masked_when_asked(kernel_with):
    k = kernel_with(LEAKGUARD_MASK_WIDGET_STATE="true")
    r = k.execute(WIDGET)
    assert r.status == "ok", r
    assert len(r.of_type("comm_open", "comm_msg")) == 2
    assert_hidden(r)
