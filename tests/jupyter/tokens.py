"""Test secrets built at run time in the vendors' formats (research/token-formats.md).

Each :class:`Secret` has the text a cell prints (``text``, which may hold
context such as ``aws_secret_access_key=`` or a URL around the secret) and the
parts of it that must never be shown (``parts``). Values are random for each
test run; the seed is printed in the pytest header so a failure can be
replayed with ``LEAKGUARD_TEST_SEED``.
"""

import base64
import json
import os
import random
import string
import subprocess
import tempfile
import zlib
from dataclasses import dataclass

SEED = int(os.environ.get("LEAKGUARD_TEST_SEED") or random.SystemRandom().randrange(1 << 32))
_rng = random.Random(SEED)

B62 = string.ascii_letters + string.digits
B64URL = B62 + "-_"
B64 = B62 + "+/"
HEX = "0123456789abcdef"
BASE32 = string.ascii_uppercase + "234567"


def _pick(alphabet, n):
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _b62_num(n, width):
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = (string.digits + string.ascii_uppercase + string.ascii_lowercase)[r] + out
    return out.rjust(width, "0")


@dataclass(frozen=True)
class Secret:
    name: str
    text: str  # what a cell prints
    parts: tuple  # what must never be shown

    def windows(self, n=12):
        """Every run of ``n`` characters of each part (the part itself when shorter)."""
        out = set()
        for p in self.parts:
            k = min(n, len(p))
            out.update(p[i : i + k] for i in range(len(p) - k + 1))
        return out


def _plain(name, value):
    return Secret(name, value, (value,))


def openai_project():
    body = _pick(B64URL, 74) + "T3BlbkFJ" + _pick(B64URL, 74)
    return _plain("openai-project", "sk-proj-" + body)


def anthropic():
    return _plain("anthropic", "sk-ant-api03-" + _pick(B64URL, 93) + "AA")


def huggingface():
    return _plain("huggingface", "hf_" + _pick(string.ascii_letters, 34))


def aws_access_key_id():
    return _plain("aws-access-key-id", "AKIA" + _pick(BASE32, 16))


def aws_secret_access_key():
    # No prefix: only its key name makes it a secret.
    value = _pick(B64, 40)
    return Secret("aws-secret-access-key", f"aws_secret_access_key = {value}", (value,))


def github_pat():
    # 30 random base62 characters and their CRC32 in 6 base62 digits.
    body = _pick(B62, 30)
    return _plain("github-pat", "ghp_" + body + _b62_num(zlib.crc32(body.encode()), 6))


def slack_bot():
    return _plain("slack-bot", f"xoxb-{_pick(string.digits, 11)}-{_pick(string.digits, 12)}-{_pick(B62, 24)}")


def stripe_live():
    return _plain("stripe-live", "sk_live_" + _pick(B62, 99))


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt():
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": _pick(string.digits, 10), "name": "Test User", "iat": 1700000000 + _rng.randrange(10**7)}
    sig = _b64url(bytes(_rng.randrange(256) for _ in range(32)))
    return _plain("jwt", f"{header}.{_b64url(json.dumps(claims).encode())}.{sig}")


def db_url():
    password = _pick(B62, 12) + "!" + _pick(B62, 6)
    return Secret("db-url", f"postgresql://analytics:{password}@db.internal.example.net:5432/warehouse", (password,))


def prc_id():
    """An 18-character PRC resident ID with a real birth date and its MOD 11-2 check character."""
    region = _rng.choice(["110105", "310104", "440305", "330106", "510107"])
    birth = f"{_rng.randrange(1960, 2004)}{_rng.randrange(1, 13):02d}{_rng.randrange(1, 29):02d}"
    seq = f"{_rng.randrange(1000):03d}"
    first = region + birth + seq
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(first, weights)) % 11]
    value = first + check
    # A bare 18-digit number is too weak: a label confirms it is an ID.
    return Secret("prc-id", f"身份证号: {value}", (value,))


def private_key():
    """A fresh EC private key (openssl), PEM; its base64 body lines must never show."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.pem")
        subprocess.run(
            ["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", path],
            check=True,
            capture_output=True,
        )
        pem = open(path).read()
    body = tuple(line for line in pem.splitlines() if line and not line.startswith("-----"))
    return Secret("private-key", pem.rstrip("\n"), body)


BUILDERS = [
    openai_project,
    anthropic,
    huggingface,
    aws_access_key_id,
    aws_secret_access_key,
    github_pat,
    slack_bot,
    stripe_live,
    jwt,
    db_url,
    prc_id,
    private_key,
]


def make_all():
    return [b() for b in BUILDERS]


ALL = make_all()
BY_NAME = {s.name: s for s in ALL}
