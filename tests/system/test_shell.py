"""`leakguard shell` on a local pseudo-terminal (no sshd): how the design
document's settings change what a terminal user sees and what is recorded."""
import json
import os

import pexpect

from support import isolated_env

PASSWORD = "Qv7pLw2xZr9Kd3"


def shown_value(leakguard, tmp, **settings):
    """Pastes a password assignment into a command that reads a line and
    prints its value; returns the value shown and the audit event kinds."""
    audit = os.path.join(tmp, "audit.jsonl")
    env = isolated_env(tmp, LEAKGUARD_AUDIT_LOG=audit, LEAKGUARD_AUDIT_SYSLOG="false", **settings)
    script = 'echo ready; IFS= read -r line; echo "val""ue=${line#*=}"'
    child = pexpect.spawn(leakguard, ["shell", "-c", script], env=env, dimensions=(24, 80), timeout=20)
    try:
        child.expect("ready")  # the proxy owns the terminal: type now, in one write as a paste arrives
        child.send(f"DB_PASSWORD={PASSWORD}\r")
        child.expect(r"value=(\S*)\r\n")
        value = child.match.group(1).decode(errors="replace")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    events = [json.loads(line) for line in open(audit)] if os.path.exists(audit) else []
    return value, {e["event"] for e in events}


def test_scan_input_masks_later_echoes_of_typed_secrets(leakguard, tmp_path):
    value, events = shown_value(leakguard, str(tmp_path))
    assert PASSWORD not in value and set(value) <= set("[REDACTED]*"), value
    assert "input_secret_detected" in events


def test_scan_input_false_leaves_input_alone(leakguard, tmp_path):
    value, events = shown_value(leakguard, str(tmp_path), SCAN_INPUT="false")
    assert value == PASSWORD, "with SCAN_INPUT=false the typed value is not remembered"
    assert "input_secret_detected" not in events


def test_redact_mode_log_only_shows_and_records(leakguard, tmp_path):
    value, events = shown_value(leakguard, str(tmp_path), REDACT_MODE="log_only")
    assert value == PASSWORD
    assert "input_secret_detected" in events


def test_allowlisted_working_directory_is_not_filtered(leakguard, tmp_path):
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    cwd = os.getcwd()
    os.chdir(trusted)
    try:
        value, _ = shown_value(leakguard, str(tmp_path), ALLOWLIST_PATHS=str(trusted))
    finally:
        os.chdir(cwd)
    assert value == PASSWORD
