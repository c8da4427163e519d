"""``jupyter leakguard install / uninstall / status``: the config it writes is
the one kernels read (checked by starting kernels), with --user and
--sys-prefix, in temporary directories."""

import os
import subprocess

from conftest import LINES, PLAIN, Layer

IK7 = LINES["ik7"]
JUPYTER = os.path.join(IK7, "bin", "jupyter")
INSTALLED = Layer("installed", extension=True)


def cli(*args, python=None, env=None):
    """Runs ``jupyter leakguard ARGS`` (through jupyter's own dispatch when
    ``python`` is the test venv's), returns (exit code, output)."""
    cmd = [JUPYTER, "leakguard", *args] if python is None else [python, "-m", "leakguard.jupyter_cli", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60)
    return p.returncode, p.stdout + p.stderr


def config(path):
    with open(path) as f:
        return f.read()


def test_user_install_status_uninstall(kernels, tmp_path):
    ipydir = str(tmp_path / "ipython")
    env = {"IPYTHONDIR": ipydir}
    cfg = os.path.join(ipydir, "profile_default", "ipython_kernel_config.py")

    code, out = cli("status", env=env)
    assert code == 1 and "not enabled" in out, out

    code, out = cli("install", "--user", env=env)
    assert code == 0 and cfg in out, out
    code, out = cli("install", "--user", env=env)  # again: still one block
    assert config(cfg).count("c.InteractiveShellApp.extensions.append(\"leakguard\")") == 1
    code, out = cli("status", env=env)
    assert code == 0 and f"{cfg}: installed" in out and "redact_mode=mask" in out, out

    # A kernel with this IPYTHONDIR loads the extension (the harness checks
    # `extension_manager.loaded`) and masks.
    k = kernels.get("ik7", INSTALLED, options={"ipython_dir": ipydir, "install": False})
    r = k.execute("print('ghp_' + 'R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p')")
    assert r.stream() == "[REDACTED]\n"
    k.shutdown()

    code, out = cli("uninstall", "--user", env=env)
    assert code == 0 and "disabled" in out, out
    assert "leakguard" not in config(cfg)
    code, out = cli("uninstall", "--user", env=env)
    assert code == 0 and "was not enabled" in out, out
    k = kernels.get("ik7", PLAIN, options={"ipython_dir": ipydir, "install": False})
    assert k.alive()


def test_existing_settings_are_kept(tmp_path):
    ipydir = tmp_path / "ipython"
    profile = ipydir / "profile_default"
    profile.mkdir(parents=True)
    original = "c = get_config()\nc.InteractiveShellApp.extensions = ['autoreload']\nc.IPKernelApp.matplotlib = 'inline'"
    (profile / "ipython_kernel_config.py").write_text(original)
    env = {"IPYTHONDIR": str(ipydir)}
    assert cli("install", env=env)[0] == 0
    text = (profile / "ipython_kernel_config.py").read_text()
    assert text.startswith(original) and "extensions.append(\"leakguard\")" in text
    assert cli("uninstall", env=env)[0] == 0
    assert (profile / "ipython_kernel_config.py").read_text().rstrip("\n") == original


def test_sys_prefix_install_is_read_by_kernels_of_that_environment(kernels, tmp_path):
    # A throwaway environment whose sys.prefix is a temporary directory,
    # seeing the test venv's packages through a .pth file.
    env_dir = tmp_path / "env"
    py = os.path.join(IK7, "bin", "python")
    subprocess.run([py, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=60)
    python = str(env_dir / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    ik7_site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with open(os.path.join(site, "test-venv.pth"), "w") as f:
        f.write(ik7_site + "\n")

    code, out = cli("install", "--sys-prefix", python=python)
    cfg = str(env_dir / "etc" / "ipython" / "ipython_kernel_config.py")
    assert code == 0 and cfg in out, out
    code, out = cli("status", python=python, env={"IPYTHONDIR": str(tmp_path / "empty-ipython")})
    assert code == 0 and f"{cfg}: installed" in out, out

    # Its kernels load the extension, with an IPYTHONDIR that has no config.
    k = kernels.get("ik7", INSTALLED, options={"python": python, "install": False})
    r = k.execute("print('hf_' + 'kXqPzLmRtVwYsNbGcHjDfAeUoIiQpWxZaB')")
    assert r.stream() == "[REDACTED]\n"
    k.shutdown()

    assert cli("uninstall", "--sys-prefix", python=python)[0] == 0
    assert "leakguard" not in config(cfg)


def test_unwritable_target_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out = cli("install", "--user", env={"IPYTHONDIR": str(blocker / "ipython")})
    assert code == 1 and "cannot write" in out, out
