"""Masking: every way a cell shows text, on every layer and ipykernel line.

Cells load the test secrets from a file into ``S`` (name -> text), so no
cell's own code holds a secret here (input scanning has its own tests).
Every test checks every message of its request, and the joined stream text,
for any 12-character piece of any secret (:func:`conftest.assert_hidden`).
"""

import base64
import json
import zlib

import leakguard
import pytest

from conftest import assert_hidden, load_secrets
import tokens

N = len(tokens.ALL)
S_NAMES = [s.name for s in tokens.ALL]


@pytest.fixture
def k(kernel, secrets_file):
    load_secrets(kernel, secrets_file)
    return kernel


def masked(r, at_least=N, name=None):
    assert r.status == "ok", r
    assert_hidden(r)
    out = r.stream(name)
    assert out.count("[REDACTED]") >= at_least, out
    return out


# ----------------------------------------------------------------- streams
def test_print_stdout_and_stderr(k):
    r = k.execute("import sys\nfor name, s in S.items():\n    print(name, '=', s)\n    print(name, s, file=sys.stderr)")
    out = masked(r, name="stdout")
    assert "openai-project = [REDACTED]" in out
    assert "aws-secret-access-key = aws_secret_access_key = [REDACTED]" in out, "only the secret is masked"
    assert r.stream("stderr").count("[REDACTED]") >= N


def test_print_from_a_thread(k):
    r = k.execute(
        "import threading\n"
        "t = threading.Thread(target=lambda: [print('thread', s) for s in S.values()])\n"
        "t.start(); t.join()"
    )
    masked(r)


def test_large_output_with_secrets_inside(k):
    # One ~3 MB stream message with secrets at the start, middle and end.
    r = k.execute(
        "fill = '0.1234, ' * 130000 + '\\n'\n"
        "print(S['github-pat'] + '\\n' + fill + S['anthropic'] + '\\n' + fill + S['jwt'])"
    )
    assert r.status == "ok", r
    assert_hidden(r)
    assert r.stream().count("[REDACTED]") == 3
    assert len(r.stream()) > 2_000_000


# ------------------------------------------------------------ rich outputs
def test_display_text_mimetypes(k):
    r = k.execute(
        "from IPython.display import display, HTML, Markdown, Latex, JSON, SVG\n"
        "for name, s in S.items():\n"
        "    display(HTML(f'<b>{name}</b>: <code>{s}</code>'))\n"
        "    display(Markdown(f'**{name}**: `{s}`'))\n"
        "    display(Latex(f'$\\\\texttt{{{s}}}$'))\n"
        "    display(JSON({'name': name, 'nested': {'value': s, 'list': [s]}}))\n"
        "    display(SVG(f'<svg xmlns=\"http://www.w3.org/2000/svg\"><text>{s}</text></svg>'))\n"
    )
    assert r.status == "ok", r
    assert_hidden(r)
    data = [m["content"]["data"] for m in r.of_type("display_data")]
    assert len(data) == 5 * N
    html = [d["text/html"] for d in data if "text/html" in d]
    assert all("[REDACTED]" in h for h in html), html[:2]
    assert sum("[REDACTED]" in json.dumps(d.get("application/json")) for d in data) == N
    assert all("<svg" in d["image/svg+xml"] for d in data if "image/svg+xml" in d)


def test_custom_reprs_and_update_display(k):
    r = k.execute(
        "class Conf:\n"
        "    def __init__(self, s): self.s = s\n"
        "    def __repr__(self): return f'Conf(token={self.s!r})'\n"
        "    def _repr_html_(self): return f'<pre>{self.s}</pre>'\n"
        "    def _repr_json_(self): return {'token': self.s}\n"
        "h = display(Conf('x'), display_id=True)\n"
        "for s in S.values():\n"
        "    h.update(Conf(s))\n"
        "display({'k': S['stripe-live']}, metadata={'note': S['slack-bot']})\n"
        "Conf(S['huggingface'])"
    )
    assert r.status == "ok", r
    assert_hidden(r)
    assert len(r.of_type("update_display_data")) == N
    result = r.of_type("execute_result")[0]["content"]["data"]
    assert result["text/plain"] == "Conf(token='[REDACTED]')", result


def test_execute_result_of_a_dict(k):
    r = k.execute("dict(S)")
    assert r.status == "ok", r
    assert_hidden(r)
    text = r.of_type("execute_result")[0]["content"]["data"]["text/plain"]
    assert text.count("[REDACTED]") >= N, text


def test_binary_outputs_pass_byte_exact(k):
    # A real PNG (and a PDF) whose base64 text holds an AWS key id shape:
    # masking it would corrupt the file, so binary types are left alone.
    def png():
        def chunk(kind, data):
            body = kind + data
            return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

        raw = b"".join(b"\x00" + bytes([x * 40 % 256, 80, 160]) for x in range(4))
        img = (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", (4).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0]))
            + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b"")
        )
        return img

    # "/" around the key id make it a word of its own, so a text scan would match it.
    tail = base64.b64decode("////" + tokens.BY_NAME["aws-access-key-id"].text + "////")
    def with_tail(data):
        # Padded so that the base64 of the tail starts on a 4-character boundary.
        return base64.b64encode(data + b"\x00" * (-len(data) % 3) + tail).decode()

    png_b64 = with_tail(png())
    pdf_b64 = with_tail(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    assert leakguard.scan(png_b64) and leakguard.scan(pdf_b64), "the base64 text looks like it holds a key"
    bundle = {"image/png": png_b64, "application/pdf": pdf_b64, "text/plain": "key " + tokens.BY_NAME["jwt"].text}
    r = k.execute(f"display({bundle!r}, raw=True)")
    assert r.status == "ok", r
    data = r.of_type("display_data")[0]["content"]["data"]
    assert data["image/png"] == png_b64
    assert data["application/pdf"] == pdf_b64
    assert data["text/plain"] == "key [REDACTED]"


# ---------------------------------------------------------------- errors
def test_exception_and_ansi_traceback(k):
    r = k.execute("def connect(token):\n    raise ValueError('bad token ' + token)\nconnect(S['openai-project'])")
    assert r.status == "error"
    assert_hidden(r)
    err = r.errors[0]
    assert err["evalue"] == "bad token [REDACTED]"
    assert any("\x1b[" in line for line in err["traceback"]), "tracebacks keep their colours"
    assert r.reply["content"]["evalue"] == "bad token [REDACTED]"


def test_verbose_traceback_locals(k):
    k.execute("%xmode Verbose")
    try:
        r = k.execute("def use(tok, conf):\n    return 1 / 0\nuse(S['anthropic'], dict(S))")
    finally:
        k.execute("%xmode Context")
    assert r.status == "error"
    assert_hidden(r)
    tb = "\n".join(r.errors[0]["traceback"])
    assert "[REDACTED]" in tb and "tok" in tb, tb


# ------------------------------------------------------------ shelling out
def test_shell_escape(k):
    r = k.execute("tok = S['github-pat']\n!echo shell $tok\n!echo other {S['huggingface']}")
    out = masked(r, at_least=2)
    assert "shell [REDACTED]" in out


def test_os_system_and_subprocess(k):
    r = k.execute(
        "import os, subprocess\n"
        "for s in S.values():\n"
        "    os.system('printf \"%s\\\\n\" ' + repr(s))\n"
        "subprocess.run(['sh', '-c', 'echo sub \"$T\" >&2'], env={'T': S['slack-bot']})"
    )
    out = masked(r)
    assert "sub [REDACTED]" in r.stream("stderr")
    assert out.count("\n") >= N


def test_bash_cell_magic(k):
    r = k.execute(
        "%%bash -s \"{S['stripe-live']}\" \"{S['aws-access-key-id']}\"\n"
        "echo \"stripe $1\"\necho \"aws $2\" >&2"
    )
    assert r.status == "ok", r
    assert_hidden(r)
    assert "stripe [REDACTED]" in r.stream("stdout")
    assert "aws [REDACTED]" in r.stream("stderr")


def test_c_printf(k):
    r = k.execute(
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "for s in S.values():\n"
        "    libc.printf(b'c: %s\\n', s.encode())\n"
        "libc.fflush(None)"
    )
    masked(r)


def test_captured_shell_output_as_result(k):
    r = k.execute("out = !printf '%s\\n' {S['anthropic']} {S['huggingface']}\nout")
    assert r.status == "ok", r
    assert_hidden(r)
    assert r.of_type("execute_result")[0]["content"]["data"]["text/plain"].count("[REDACTED]") == 2


# ------------------------------------------------------------------ splits
def assert_split(r, at_least=N):
    assert len(r.of_type("stream")) > 1, "the secret went out in one message: nothing was split"
    return masked(r, at_least=at_least)


def test_split_write_flush_print(k):
    r = k.execute(
        "import sys, time\n"
        "for s in S.values():\n"
        "    sys.stdout.write(s[:10]); sys.stdout.flush(); time.sleep(0.05)\n"
        "    print(s[10:])"
    )
    assert_split(r)


def test_split_char_by_char(k):
    r = k.execute(
        "import time\n"
        "for s in S.values():\n"
        "    for ch in s:\n"
        "        print(ch, end='', flush=True)\n"
        "    print()\n"
        "    time.sleep(0.01)"
    )
    assert_split(r)


def test_split_in_forked_child(k):
    # A forked child's print is one stream message per write().
    r = k.execute(
        "import multiprocessing as mp\n"
        "def child():\n"
        "    for s in S.values():\n"
        "        print(s[:10], s[10:], sep='')\n"
        "p = mp.get_context('fork').Process(target=child); p.start(); p.join()\n"
        "import time; time.sleep(0.5)"
    )
    assert r.status == "ok", r
    k.settle(1.0)
    assert_hidden(r)
    assert_hidden(k.all)
    assert r.stream().count("[REDACTED]") >= N or sum(
        m["content"]["text"].count("[REDACTED]") for m in k.all if m["header"]["msg_type"] == "stream"
    ) >= N


def test_split_async_prints(k):
    r = k.execute(
        "import asyncio\n"
        "async def show(s):\n"
        "    print(s[:7], end='', flush=True)\n"
        "    await asyncio.sleep(0.02)\n"
        "    print(s[7:15], end='', flush=True)\n"
        "    await asyncio.sleep(0.02)\n"
        "    print(s[15:])\n"
        "for s in S.values():\n"
        "    await show(s)"
    )
    assert_split(r)


def test_private_key_line_by_line(k):
    r = k.execute(
        "import time\n"
        "for line in S['private-key'].splitlines():\n"
        "    print(line, flush=True); time.sleep(0.02)"
    )
    assert r.status == "ok", r
    assert_hidden(r)


@pytest.mark.parametrize(
    "inside",
    [
        pytest.param("'\\x1b[1m'", id="ansi-bold"),
        pytest.param("'\\x1b[31m\\x1b[0m'", id="ansi-colour-reset"),
        pytest.param("'zz\\b\\b'", id="backspace"),
        pytest.param("'\\u200b'", id="zero-width-space"),
        pytest.param("'\\u2060'", id="word-joiner"),
    ],
)
def test_control_characters_inside_a_token(k, inside):
    r = k.execute(f"for s in S.values():\n    print(s[:10] + {inside} + s[10:])")
    masked(r)


def test_carriage_return_redraw(k):
    # A progress line redrawn with \r, the secret typed in over it.
    r = k.execute("for s in S.values():\n    print(s[:10] + '\\r' + s)")
    masked(r)


def test_zero_width_between_every_character(k):
    r = k.execute("for s in S.values():\n    print('\\u200b'.join(s))")
    masked(r)


# ------------------------------------------------------- other channels
def test_inspect_reply(k):
    k.execute("tok = S['github-pat']; conf = dict(S)")
    for code in ("tok", "conf"):
        r = k.request("inspect", code, len(code), detail_level=0)
        assert r.reply["content"]["found"], r
        assert_hidden(r)
        assert "[REDACTED]" in r.reply["content"]["data"]["text/plain"]


def test_complete_reply(k):
    k.execute("keys = {s: 1 for s in S.values()}")
    r = k.request("complete", "keys['", 6)
    assert_hidden(r)
    matches = r.reply["content"]["matches"]
    assert any("[REDACTED]" in m for m in matches), matches


def test_history_reply(k):
    # A secret typed into a cell, then asked for through history_request.
    pat = tokens.BY_NAME["github-pat"].text
    r = k.execute(f"typed = {pat!r}")
    assert r.status == "ok", r
    assert_hidden(r)
    r = k.request("history", hist_access_type="tail", n=20, output=False, raw=True)
    assert r.reply["content"]["history"], r
    assert_hidden(r)


def test_user_expressions(k):
    r = k.execute("", user_expressions={name: f"S[{name!r}]" for name in S_NAMES})
    assert r.status == "ok", r
    assert_hidden(r)
    exprs = r.reply["content"]["user_expressions"]
    assert all(e["status"] == "ok" and "[REDACTED]" in e["data"]["text/plain"] for e in exprs.values()), exprs


def test_pager_payload(k):
    r = k.execute("tok = S['anthropic']\ntok?")
    assert r.status == "ok", r
    assert_hidden(r)
    pages = [p for p in r.reply["content"]["payload"] if p.get("source") == "page"]
    assert pages and "[REDACTED]" in json.dumps(pages), r.reply["content"]


def test_set_next_input_payload(k):
    r = k.execute("get_ipython().set_next_input('key = ' + repr(S['stripe-live']))")
    assert r.status == "ok", r
    assert_hidden(r)
    assert "[REDACTED]" in json.dumps(r.reply["content"]["payload"])


def test_input_prompt(k):
    r = k.execute("answer = input('token ' + S['huggingface'] + ': ')\nprint('got', answer)", stdin=["yes"])
    assert r.status == "ok", r
    assert_hidden(r)
    prompts = [m["content"]["prompt"] for m in r.stdin if m["header"]["msg_type"] == "input_request"]
    assert prompts == ["token [REDACTED]: "], prompts
    assert "got yes" in r.stream()


def test_debugger_variables(k):
    k.execute("tok = S['jwt']; conf = dict(S)")
    r = k.control("debug_request", {"type": "request", "seq": 1, "command": "inspectVariables", "arguments": {}})
    assert r.reply["content"]["success"], r
    assert_hidden(r)
    names = {v["name"]: v["value"] for v in r.reply["content"]["body"]["variables"]}
    assert names["tok"] == "'[REDACTED]'", names
    r = k.control(
        "debug_request",
        {"type": "request", "seq": 2, "command": "richInspectVariables", "arguments": {"variableName": "conf"}},
    )
    assert_hidden(r)
    assert "[REDACTED]" in r.reply["content"]["body"]["data"]["text/plain"]


def test_whole_session_traffic(k):
    """Last: nothing this kernel ever sent (late flushes, other parents) held a secret."""
    k.settle(0.5)
    assert_hidden(k.all)
