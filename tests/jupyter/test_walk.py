"""``Guard.check_message`` in this process: the native walk over a message's
Python objects that the IPython extension uses (copy on write, binary MIME
types and buffers untouched, widget state only when asked, and an error,
never a crash, for what it cannot walk)."""

import copy

import pytest
from leakguard._native import Guard

from conftest import assert_hidden, strings
import tokens

S = {s.name: s.text for s in tokens.ALL}
ENV = ("REDACT_MODE", "SCAN_INPUT", "LEAKGUARD_REDACT_MODE", "LEAKGUARD_SCAN_INPUT", "LEAKGUARD_CONFIG")


@pytest.fixture
def guard(tmp_path, monkeypatch):
    """A guard with the default settings but ``settings`` (environment names)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config.toml"
    config.write_text("")

    def make(**settings):
        for name, value in settings.items():
            monkeypatch.setenv(f"LEAKGUARD_{name.upper()}", value)
        return Guard(config=str(config))

    return make


def hidden(value):
    assert_hidden(list(strings(value)))


def test_clean_messages_come_back_as_they_were(guard):
    g = guard()
    content = {"data": {"text/plain": "nothing to see here", "application/json": {"a": [1, 2.5, None]}}}
    md = {"isolated": True}
    verdict, c, m, rules = g.check_message("display_data", content, md)
    assert (verdict, rules) == ("clean", [])
    assert c is content and m is md


def test_copy_on_write(guard):
    g = guard()
    untouched = {"rows": [["plain", 1]] * 3}
    conf = {
        "token": S["github-pat"],
        "nested": [S["jwt"], ("t", S["slack-bot"])],
        S["anthropic"]: 1,
        "other": untouched,
        3: "an int key",
    }
    content = {"data": {"application/json": conf, "text/plain": "conf"}, "metadata": {}}
    md = {"note": S["huggingface"]}
    before = copy.deepcopy((content, md))
    verdict, c, m, rules = g.check_message("display_data", content, md)
    assert verdict == "masked"
    assert len(rules) >= 4, rules
    assert (content, md) == before, "the objects given were changed"
    hidden((c, m))
    out = c["data"]["application/json"]
    # Keys keep their order (a masked key too); what did not change is the same object.
    assert list(out)[:2] == ["token", "nested"] and list(out)[3:] == ["other", 3]
    assert "[REDACTED]" in list(out)[2]
    assert out["other"] is untouched and out[3] == "an int key"
    assert c["data"]["text/plain"] is content["data"]["text/plain"]
    # A changed tuple comes back as a list (JSON has no tuples).
    assert out["nested"][1] == ["t", "[REDACTED]"]


def test_binary_types_and_bytes_are_left_alone(guard):
    g = guard()
    # base64 text that holds an AWS key id shape: changing it corrupts the image.
    png = "iVBORw0KGgo" + S["aws-access-key-id"] + "AAAA"
    content = {"data": {"image/png": png, "text/plain": S["aws-access-key-id"]}, "raw": b"\x00" + S["jwt"].encode()}
    verdict, c, _, _ = g.check_message("display_data", content)
    assert verdict == "masked"
    assert c["data"]["image/png"] is png and c["raw"] is content["raw"]
    assert "[REDACTED]" in c["data"]["text/plain"]


def test_widget_state_only_when_asked(guard):
    content = {"comm_id": "c1", "data": {"state": {"value": S["jwt"]}, "buffer_paths": []}}
    verdict, c, _, _ = guard().check_message("comm_msg", content)
    assert verdict == "clean" and c is content
    verdict, c, _, _ = guard(mask_widget_state="true").check_message("comm_msg", content)
    assert verdict == "masked" and c["data"]["state"]["value"] == "[REDACTED]"
    assert content["data"]["state"]["value"] == S["jwt"]


def test_kinds(guard):
    g = guard()
    # Stream text needs a carry buffer (Guard.stream): not walked here.
    stream = {"name": "stdout", "text": S["jwt"]}
    assert g.check_message("stream", stream)[:2] == ("clean", stream)
    # With no content (the extension checks execute_input code itself) the metadata is walked.
    verdict, c, m, _ = g.check_message("execute_input", None, {"k": S["jwt"]})
    assert verdict == "masked" and c is None and m == {"k": "[REDACTED]"}
    # Block mode: the verdict says so, the walk still masks (replies are masked, not withheld).
    verdict, c, _, _ = guard(redact_mode="block").check_message("inspect_reply", {"data": {"text/plain": S["jwt"]}})
    assert verdict == "blocked" and c["data"]["text/plain"] == "[REDACTED]"


def test_odd_strings(guard):
    g = guard()

    class Text(str):
        pass

    lone = "\ud800 " + S["github-pat"]  # a lone surrogate: not UTF-8
    verdict, c, _, _ = g.check_message("execute_result", {"data": {"text/plain": lone, "text/html": Text(S["jwt"])}})
    assert verdict == "masked"
    assert c["data"]["text/plain"].endswith("[REDACTED]") and c["data"]["text/html"] == "[REDACTED]"


def test_deep_nesting_is_walked_and_cycles_are_an_error(guard):
    g = guard()
    deep = S["jwt"]
    for _ in range(900):
        deep = [deep]
    verdict, c, _, _ = g.check_message("execute_result", {"data": {"application/json": deep}})
    assert verdict == "masked"
    x = c["data"]["application/json"]
    while isinstance(x, list):
        x = x[0]
    assert x == "[REDACTED]"

    looped = {"text": S["jwt"]}
    looped["self"] = looped
    with pytest.raises(RecursionError, match="nested deeper than"):
        g.check_message("execute_result", {"data": {"application/json": looped}})
    very_deep = []
    for _ in range(100_000):
        very_deep = [very_deep]
    with pytest.raises(RecursionError, match="nested deeper than"):
        g.check_message("execute_result", {"data": {"application/json": very_deep}})


class _PanickingWalk:
    """A guard whose native walk panics (as a Rust panic reaches Python)."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def check_message(self, *args, **kwargs):
        from leakguard._native import PanicException

        raise PanicException("the walk panicked")


@pytest.mark.parametrize("mode", ["mask", "block"])
def test_a_panic_in_the_walk_is_contained_by_the_filter(guard, mode):
    from leakguard.ipython import Filter

    flt = Filter(_PanickingWalk(guard(redact_mode=mode)), emit=lambda *args: None)
    msg = {
        "header": {"msg_type": "display_data", "msg_id": "m1"},
        "parent_header": {"msg_id": "p1"},
        "metadata": {},
        "content": {"data": {"text/plain": "a table"}, "metadata": {}},
    }
    out = flt.process(msg)
    if mode == "mask":
        assert out is msg  # passed through, as for any internal error
    else:
        assert out["header"]["msg_type"] == "error" and "could not be checked" in out["content"]["evalue"]
