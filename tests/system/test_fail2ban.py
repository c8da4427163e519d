"""The fail2ban filters in deploy/fail2ban ban a client after repeated leaks,
from the JSON-lines audit file and from syslog, with the real fail2ban."""
import os
import shutil
import subprocess
import time

import pytest

from conftest import require
from support import ROOT, isolated_env, stop, wait_for

SECRET = "GITHUB_TOKEN=ghp_R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p\n"


def fail2ban_dir(tmp, jail, logpath, maxretry):
    """A private fail2ban configuration: our filter, a dummy ban action."""
    conf = os.path.join(tmp, "f2b")
    shutil.copytree("/etc/fail2ban", conf)
    for f in os.listdir(os.path.join(conf, "jail.d")):
        os.remove(os.path.join(conf, "jail.d", f))
    for f in os.listdir(os.path.join(ROOT, "deploy/fail2ban/filter.d")):
        shutil.copy(os.path.join(ROOT, "deploy/fail2ban/filter.d", f), os.path.join(conf, "filter.d", f))
    banned = os.path.join(tmp, "banned.txt")
    with open(os.path.join(conf, "fail2ban.local"), "w") as f:
        f.write(f"[Definition]\nlogtarget = {tmp}/fail2ban.log\nsocket = {tmp}/f2b.sock\npidfile = {tmp}/f2b.pid\ndbfile = :memory:\n")
    with open(os.path.join(conf, "jail.local"), "w") as f:
        f.write(
            "[DEFAULT]\nbanaction = dummy\nbackend = polling\nignoreself = false\nignoreip =\n\n"
            f"[{jail}]\nenabled = true\nfilter = {jail}\nlogpath = {logpath}\nmaxretry = {maxretry}\n"
            f"findtime = 10m\nbantime = 1h\naction = dummy[target={banned}]\n"
        )
    return conf, banned


def leak(leakguard, tmp, times, **env):
    for _ in range(times):
        out = subprocess.run([leakguard, "redact"], input=SECRET.encode(), capture_output=True,
                             env=isolated_env(tmp, USER="mallory", SSH_CONNECTION="127.0.0.1 50022 127.0.0.1 2222", **env), check=True)
        assert b"[REDACTED]" in out.stdout


def run_fail2ban(conf, jail, banned):
    server = subprocess.Popen(["fail2ban-server", "-f", "-x", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for("the ban", lambda: os.path.exists(banned) and "+127.0.0.1" in open(banned).read(), timeout=60)
        status = subprocess.run(["fail2ban-client", "-c", conf, "status", jail], capture_output=True, text=True).stdout
        assert "127.0.0.1" in status, status
    finally:
        subprocess.run(["fail2ban-client", "-c", conf, "stop"], capture_output=True)
        stop(server)


def test_json_audit_file_bans_after_maxretry(tmp_path, leakguard):
    require("fail2ban-server", "fail2ban-client")
    tmp = str(tmp_path)
    log = os.path.join(tmp, "audit.jsonl")
    conf, banned = fail2ban_dir(tmp, "leakguard-json", log, maxretry=3)
    leak(leakguard, tmp, 2, LEAKGUARD_AUDIT_LOG=log)
    server = subprocess.Popen(["fail2ban-server", "-f", "-x", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for("fail2ban to start", lambda: subprocess.run(["fail2ban-client", "-c", conf, "ping"], capture_output=True).returncode == 0)
        time.sleep(2)
        assert not os.path.exists(banned) or "+127.0.0.1" not in open(banned).read(), "banned below maxretry"
    finally:
        subprocess.run(["fail2ban-client", "-c", conf, "stop"], capture_output=True)
        stop(server)
    leak(leakguard, tmp, 1, LEAKGUARD_AUDIT_LOG=log)
    run_fail2ban(conf, "leakguard-json", banned)


def test_syslog_lines_ban(tmp_path, leakguard):
    require("fail2ban-server", "rsyslogd")
    if os.geteuid() != 0:
        pytest.fail("the syslog test runs rsyslogd on /dev/log and needs root (CI runs as root)")
    tmp = str(tmp_path)
    auth_log = os.path.join(tmp, "auth.log")
    rconf = os.path.join(tmp, "rsyslog.conf")
    with open(rconf, "w") as f:
        f.write(f'module(load="imuxsock" SysSock.Name="/dev/log")\nauthpriv.* {auth_log}\n')
    rsyslog = subprocess.Popen(["rsyslogd", "-n", "-f", rconf, "-i", os.path.join(tmp, "rsyslog.pid")])
    try:
        wait_for("rsyslogd", lambda: os.path.exists("/dev/log"))
        time.sleep(0.5)
        leak(leakguard, tmp, 3, LEAKGUARD_AUDIT_SYSLOG="true")
        wait_for("syslog lines", lambda: os.path.exists(auth_log) and open(auth_log).read().count("event=secret_detected") >= 3)
        assert "ghp_" not in open(auth_log).read()
        conf, banned = fail2ban_dir(tmp, "leakguard", auth_log, maxretry=3)
        run_fail2ban(conf, "leakguard", banned)
    finally:
        stop(rsyslog)
