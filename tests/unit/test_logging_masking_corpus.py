"""Issue 12: a corpus of secrets by class (none may leave the process) and a corpus of look-alike
numbers and ids (fewer than 1 in 1 000 may be masked).

The secrets are generated from a seeded RNG in each format rather than copied from vendors' docs,
so the detectors are held to the format, not to a handful of famous examples. A leak is any run of
8 characters of a secret's random part (or the whole of a shorter secret) in the output, so a
detector that masks half a token fails too.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import logging
import random
import re
import string
import uuid
from collections import namedtuple
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from watchfloor.logging import Masker
from watchfloor.logging.masking_detectors import IBAN_LENGTHS, luhn_valid

RNG = random.Random(20240611)
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"
MASKER = Masker()


def rand(length: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(length))


def password() -> str:
    return rand(RNG.randint(10, 24), ALNUM + "!#$%^*()_+-[]~")


def serialised(value: Any) -> str:
    """What the writer ships for a value: masked, then orjson with str() for the rest."""
    if isinstance(value, str):
        return MASKER.mask_text(value)
    return orjson.dumps(
        MASKER.mask_value(value), default=str, option=orjson.OPT_NON_STR_KEYS
    ).decode()


def leaked(output: str, secret: str) -> bool:
    if len(secret) < 12:
        return secret in output
    return any(secret[i : i + 8] in output for i in range(len(secret) - 7))


@dataclasses.dataclass(frozen=True)
class Case:
    kind: str
    value: Any
    secrets: tuple[str, ...]


CASES: list[Case] = []


def case(kind: str, value: Any, *secrets: str) -> None:
    CASES.append(Case(kind, value, secrets))


# --- keys with prefixes, camelCase and all the ways text writes key = value ----------------------

KEY_NAMES = [
    "AWS_SECRET_ACCESS_KEY",
    "DATABASE_PASSWORD",
    "db_password",
    "dbPassword",
    "clientSecret",
    "accessToken",
    "REDIS_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "x-api-key",
    "X-Auth-Token",
    "refresh_token",
    "privateKey",
    "SMTP_PASS",
    "jwtSecret",
    "webhookSecret",
    "signingKey",
    "STRIPE_SECRET_KEY",
    "sessionToken",
    "authToken",
    "encryption_key",
    "broker.api_key",
    "FIX_LOGON_PASSWORD",
    "passphrase",
    "client_secret",
    "apiKey",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "pgpass",
    "Ocp-Apim-Subscription-Key",
]
KV_FORMS: list[Callable[[str, str], str]] = [
    lambda k, v: f"{k}={v}",
    lambda k, v: f"starting with {k}: {v} and more",
    lambda k, v: json.dumps({"config": {k: v}}),
    lambda k, v: str({k: v, "region": "eu-west-1"}),
    lambda k, v: f'export {k}="{v}"',
    lambda k, v: f"{k} = '{v}'",
    lambda k, v: json.dumps(json.dumps({k: v})),  # JSON inside a JSON string: \"k\": \"v\"
    lambda k, v: f"<{k}>{v}</{k}>",
    lambda k, v: f"env: {k}={v}; other=1",
]
for index, key in enumerate(KEY_NAMES):
    for form in (KV_FORMS[index % len(KV_FORMS)], KV_FORMS[(index + 4) % len(KV_FORMS)]):
        secret = password()
        case("key=value", form(key, secret), secret)
case("key=value", "run: psql --db-password " + (s := password()) + " -h db", s)
case("key=value", "CREATE USER trader IDENTIFIED BY '" + (s := password()) + "'", s)
case("key=value", "ALTER ROLE oms WITH PASSWORD '" + (s := password()) + "'", s)

# --- credentials inside URLs and connection strings ----------------------------------------------

URL_TEMPLATES = [
    "postgresql://trader:{p}@db:5432/oms",
    "postgres://oms_rw:{p}@10.0.3.17/oms?sslmode=require",
    "mysql+pymysql://root:{p}@mysql.internal:3306/risk",
    "mongodb+srv://svc-marketdata:{p}@cluster0.ab1cd.mongodb.net/ticks?retryWrites=true",
    "redis://:{p}@redis:6379/0",
    "rediss://default:{p}@cache.example.com:6380",
    "amqp://guest:{p}@rabbitmq:5672/%2F",
    "amqps://fills:{p}@mq.internal/trading",
    "https://deploy:{p}@git.internal/org/repo.git",
    "ftp://reports:{p}@ftp.broker.example/eod/",
    "jdbc:postgresql://db:5432/oms?user=trader&password={p}",
    "https://api.example.com/v1/orders?api_key={p}&limit=10",
    "https://storage.blob.core.windows.net/c/f.csv?sv=2022-11-02&se=2025-01-01&sp=r&sig={p}",
    "https://bucket.s3.amazonaws.com/k?X-Amz-Credential=AKIA/x&X-Amz-Signature={p}",
    "https://auth.example.com/cb#access_token={p}&token_type=bearer",
    "kafka://svc:{p}@broker-1:9093",
]
for index, template in enumerate(URL_TEMPLATES):
    secret = password().replace("#", "!")
    url = template.format(p=secret)
    case("url", f"connecting to {url}", secret)
    secret = rand(18, ALNUM + "@:/")  # unencoded @, : and / inside the password
    url = template.format(p=secret)
    case("url", f"pool error for {url} after 3 retries", secret) if "@" in template else None
    case(
        "url in exception",
        ConnectionError(f"could not connect to {template.format(p=(s := password()))}"),
        s,
    )
    if index % 3 == 0:
        case("url in dict", {"settings": {"dsn": template.format(p=(s := password()))}}, s)
case(
    "connection string",
    "Server=tcp:sql.internal,1433;Database=oms;User Id=sa;Password=" + (s := password()) + ";",
    s,
)
case(
    "connection string",
    "DefaultEndpointsProtocol=https;AccountName=trades;AccountKey="
    + (s := rand(86, B64) + "==")
    + ";EndpointSuffix=core.windows.net",
    s,
)
case(
    "connection string",
    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey="
    + (s := rand(43, B64) + "=")
    + ";EntityPath=fills",
    s,
)
case(
    "connection string", "host=db port=5432 dbname=oms user=trader password=" + (s := password()), s
)
case("connection string", "jdbc:oracle:thin:scott/" + (s := password()) + "@//db:1521/ORCL", s)
case("connection string", "could not reach trader:" + (s := rand(14)) + "@db:5432 (timeout)", s)

# --- PEM and other private key blocks ------------------------------------------------------------


def pem(label: str, lines: int = 8) -> tuple[str, list[str]]:
    body = [rand(64, B64) for _ in range(lines)] + [rand(24, B64) + "=="]
    block = f"-----BEGIN {label}-----\n" + "\n".join(body) + f"\n-----END {label}-----"
    return block, body


for label in (
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "PRIVATE KEY",
    "DSA PRIVATE KEY",
    "PGP PRIVATE KEY BLOCK",
):
    block, body = pem(label)
    case("private key", f"loaded key:\n{block}\nok", *body)
    case(
        "private key in JSON", json.dumps({"type": "service_account", "private_key": block}), *body
    )
    case("private key cut off", f"bad key {block[: len(block) // 2]}", *body[:3])
    case("private key in bytes", block.encode(), *body)
putty_private = [rand(64, B64) for _ in range(4)]
case(
    "private key",
    "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPublic-Lines: 2\nAAAA\nPrivate-Lines: 4\n"
    + "\n".join(putty_private)
    + "\nPrivate-MAC: "
    + rand(64, HEX),
    *putty_private,
)
case(
    "private key footer only",
    "\n".join(tail := [rand(64, B64) for _ in range(3)]) + "\n-----END RSA PRIVATE KEY-----",
    *tail,
)

# --- well-known token formats without a keyword --------------------------------------------------

TOKENS: list[tuple[str, str]] = [
    ("AKIA", rand(16, string.ascii_uppercase + string.digits)),
    ("ASIA", rand(16, string.ascii_uppercase + string.digits)),
    ("ghp_", rand(36)),
    ("gho_", rand(36)),
    ("ghs_", rand(36)),
    ("github_pat_", rand(22) + "_" + rand(59)),
    ("glpat-", rand(20, URLSAFE)),
    ("GR1348941", rand(20, URLSAFE)),
    ("xoxb-", f"{RNG.randint(10**11, 10**12)}-{RNG.randint(10**11, 10**12)}-{rand(24)}"),
    ("xoxp-", f"{RNG.randint(10**11, 10**12)}-{rand(24).lower()}"),
    ("xapp-", f"1-A{rand(10).upper()}-{RNG.randint(10**12, 10**13)}-{rand(64, HEX)}"),
    ("sk_live_", rand(24)),
    ("rk_live_", rand(24)),
    ("sk_test_", rand(24)),
    ("whsec_", rand(32)),
    ("SG.", rand(22, URLSAFE) + "." + rand(43, URLSAFE)),
    ("npm_", rand(36)),
    ("AIza", rand(35, URLSAFE)),
    ("ya29.", rand(120, URLSAFE)),
    ("GOCSPX-", rand(28, URLSAFE)),
    ("sk-proj-", rand(48, URLSAFE) + "T3BlbkFJ" + rand(48, URLSAFE)),
    ("sk-ant-api03-", rand(93, URLSAFE) + "AA"),
    ("hf_", rand(34)),
    ("pypi-AgEIcHlwaS5vcmc", rand(70, URLSAFE)),
    ("dckr_pat_", rand(27, URLSAFE)),
    ("dop_v1_", rand(64, HEX)),
    ("shpat_", rand(32, HEX)),
    ("sq0atp-", rand(22, URLSAFE)),
    ("hvs.", rand(90, URLSAFE)),
    ("key-", rand(32, HEX)),
    ("SK", rand(32, HEX)),
    ("glsa_", rand(32) + "_" + rand(8, HEX)),
    ("sntrys_", rand(60, B64)),
    ("ATATT3", rand(180, URLSAFE)),
    ("", f"{RNG.randint(10**8, 10**9)}:AA{rand(33, URLSAFE)}"),  # Telegram bot
    ("", f"MT{rand(24, URLSAFE)}.{rand(6, URLSAFE)}.{rand(38, URLSAFE)}"),  # Discord bot
    ("", f"{rand(3)}8Q~{rand(34, URLSAFE + '~.')}"),  # Azure AD client secret
    ("", f"{rand(32, HEX)}-us{RNG.randint(1, 21)}"),  # Mailchimp
    ("", rand(40, B64)),  # AWS secret access key on its own
    ("", rand(88, B64)),  # Azure storage key on its own
]
TOKEN_CONTEXTS: list[Callable[[str], Any]] = [
    lambda t: f"using {t}",
    lambda t: f"request failed: 401 for credential {t!r}",
    lambda t: {"note": f"rotated to {t} today"},
    lambda t: [f"{t}"],
    lambda t: f"curl -H 'X-Custom: {t}' https://api.example.com",
]
for index, (prefix, core) in enumerate(TOKENS):
    context = TOKEN_CONTEXTS[index % len(TOKEN_CONTEXTS)]
    case("token format", context(prefix + core), core)
    case("token format", f"{prefix}{core},next", core)


def jwt() -> tuple[str, str]:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    payload = part({"sub": rand(12), "exp": 1718000000, "scope": "orders:write"})
    signature = rand(43, URLSAFE)
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{payload}.{signature}", signature


for template in ("jwt={}", "got token {} from idp", "Authorization: Bearer {}", "{}"):
    token, signature = jwt()
    case("jwt", template.format(token), signature, token.split(".")[1])

# --- webhook URLs ---------------------------------------------------------------------------------

WEBHOOKS = [
    "https://hooks.slack.com/services/T{a}/B{b}/{c}",
    "https://hooks.slack.com/workflows/T{a}/A{b}/{d}/{c}",
    "https://acme.webhook.office.com/webhookb2/{u}@{v}/IncomingWebhook/{c}/{v}",
    "https://outlook.office.com/webhook/{u}@{v}/IncomingWebhook/{c}/{v}",
    "https://discord.com/api/webhooks/{d}/{c}",
    "https://discordapp.com/api/webhooks/{d}/{c}",
    "https://chat.googleapis.com/v1/spaces/AAAA{a}/messages?key=AIza{c}&token={c}",
    "https://mattermost.internal/hooks/{c}",
    "https://api.telegram.org/bot{d}:AA{c}/sendMessage",
    "https://hooks.zapier.com/hooks/catch/{d}/{c}/",
    "https://prod-12.westeurope.logic.azure.com:443/workflows/{u}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig={c}",
]
for template in WEBHOOKS:
    secret = rand(32, URLSAFE)
    url = template.format(
        a=rand(8).upper(), b=rand(10).upper(), c=secret, d=RNG.randint(10**17, 10**18),
        u=uuid.uuid4(), v=uuid.uuid4(),
    )  # fmt: skip
    case("webhook", f"alert sent to {url}", secret)
    case("webhook", {"channel": {"url": url}}, secret)

# --- headers: text, lists of pairs, mappings -----------------------------------------------------

for _ in range(2):
    bearer, cookie, basic_user = rand(40, URLSAFE), rand(32), password()
    basic = base64.b64encode(f"svc:{basic_user}".encode()).decode()
    case("header list", [("Authorization", f"Bearer {bearer}"), ("Accept", "json")], bearer)
    case("header list", [(b"authorization", f"Basic {basic}".encode())], basic, basic_user)
    case("header list", (("Cookie", f"session={cookie}; csrftoken={rand(24)}"),), cookie)
    case("header list", {"headers": [["set-cookie", f"sid={cookie}; Path=/; HttpOnly"]]}, cookie)
    case("header text", f"GET /orders HTTP/1.1\r\nCookie: theme=dark; sid={cookie}\r\n", cookie)
    case("header text", f"Set-Cookie: JSESSIONID={cookie}; Path=/; Secure", cookie)
    case("header text", f"headers={{'Authorization': 'Basic {basic}'}}", basic)
    case("header text", f"proxy-authorization: Bearer {bearer}", bearer)
    case("header text", f"X-Vault-Token: hvs.{bearer}", bearer)
    case("header text", f"sending with Authorization: Basic {basic}", basic)

# --- values that are not strings ------------------------------------------------------------------


@dataclasses.dataclass
class BrokerCredentials:
    username: str
    password: str


@dataclasses.dataclass
class FeedConfig:
    venue: str
    url: str
    note: bytes


class Sensitive(enum.Enum):
    TOKEN = "ghp_" + rand(36)


Creds = namedtuple("Creds", "user secret")


class Opaque:
    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return f"Opaque({self.text})"


for _ in range(3):
    secret = password()
    case("bytes", f"password={secret}".encode(), secret)
    case("bytes", {"payload": f"token: {secret}".encode()}, secret)
    case("dataclass", BrokerCredentials("trader", secret), secret)
    token = rand(36)
    case(
        "dataclass",
        FeedConfig("XNAS", f"redis://:{secret}@r:6379", f"ghp_{token}".encode()),
        secret,
        token,
    )
    case("named tuple", Creds("trader", secret), secret)
    case("exception object", {"error": PermissionError(f"login failed, password={secret}")}, secret)
    case("exception object", RuntimeError({"user": "x", "password": secret}), secret)
    case("object with str", Opaque(f"api_key={secret}"), secret)
    case("dict key", {f"ghp_{token}": "seen"}, token)
    case("dict key", {("db", f"password={secret}"): 1}, secret)
case("enum", {"which": Sensitive.TOKEN}, Sensitive.TOKEN.value[4:])

# --- card numbers ----------------------------------------------------------------------------------


def card(prefix: str, length: int) -> str:
    body = prefix + rand(length - len(prefix) - 1, string.digits)
    for check in string.digits:
        if luhn_valid(body + check):
            return body + check
    raise AssertionError


def grouped(pan: str, separator: str) -> str:
    sizes = {15: (4, 6, 5), 14: (4, 6, 4)}.get(len(pan), (4,) * (len(pan) // 4) + (len(pan) % 4,))
    parts, position = [], 0
    for size in sizes:
        if size:
            parts.append(pan[position : position + size])
            position += size
    return separator.join(parts)


BRANDS = [
    ("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16),
    ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("644", 16), ("3528", 16), ("3589", 19),
    ("36", 14), ("300", 14), ("62", 16), ("62", 19), ("6759", 16), ("2200", 16), ("9792", 16),
]  # fmt: skip
FAMOUS = ["4111111111111111", "4242424242424242", "5555555555554444", "2223003122003222",
          "378282246310005", "6011111111111117", "3566002020360505", "30569309025904",
          "6200000000000005", "4000056655665556"]  # fmt: skip
CARD_CONTEXTS: list[Callable[[str], Any]] = [
    lambda p: f"charged {p} ok",
    lambda p: f"card {grouped(p, ' ')} declined",
    lambda p: f"pan={grouped(p, '-')}",
    lambda p: f"cc{p}exp1227",  # in text, no word boundary
    lambda p: f"{grouped(p, ' ')} 12/27 cvv 123",  # followed by more digits
    lambda p: f"track {p}1227101",  # contiguous with expiry and service code
    lambda p: f"ref:{p}/12/27",
    lambda p: {"amount": 12.5, "instrument": int(p)},  # an int
    lambda p: {int(p): "seen"},  # an int dict key
    lambda p: f'{{"card": {{"number": "{p}"}}}}',
]
for index, (prefix, length) in enumerate(BRANDS):
    for offset in range(2):
        pan = card(prefix, length)
        case("card", CARD_CONTEXTS[(index + offset * 5) % len(CARD_CONTEXTS)](pan), pan[:-4])
for index, pan in enumerate(FAMOUS):
    case("card", CARD_CONTEXTS[index % len(CARD_CONTEXTS)](pan), pan[:-4])

# --- IBANs and broker accounts ---------------------------------------------------------------------


def iban(country: str) -> str:
    bban = rand(IBAN_LENGTHS[country] - 4, string.digits)
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


for country in ("DE", "GB", "FR", "NL", "CH", "ES", "IT", "BE", "NO", "PL"):
    number = iban(country)
    spaced = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    case("iban", f"payout to {spaced} today", number[4:12], spaced[5:15])
    case("iban", f"iban:{number}ref{RNG.randint(100, 999)}", number[4:])
    case("iban", {"beneficiary": {"name": "ACME", "note": f"acct {number}"}}, number[4:])

for account in ("U" + rand(7, string.digits), "DU" + rand(6, string.digits),
                "XK-" + rand(5, string.digits) + "-B", rand(2, string.ascii_uppercase) + rand(8, string.digits)):  # fmt: skip
    case("broker account", f"order routed to account {account} on XNAS", account)
    case("broker account", f"acct#{account} debited", account)
    case("broker account", {"accountId": account, "qty": 100}, account)
    case("broker account", {"order": {"broker_account": account}}, account)
    case("broker account", f"8=FIX.4.4\x019=112\x0135=D\x011={account}\x0155=AAPL\x01", account)
    case("broker account", f'{{"clearingAccount": "{account}"}}', account)
case("fix logon", "8=FIX.4.4|35=A|553=oms|554=" + (s := password()) + "|98=0|", s)


# --- the tests -------------------------------------------------------------------------------------


def test_corpus_covers_every_class_with_enough_cases():
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 150
    assert {
        "key=value", "url", "url in exception", "connection string", "private key", "token format",
        "jwt", "webhook", "header list", "header text", "bytes", "dataclass", "exception object",
        "dict key", "card", "iban", "broker account",
    } <= kinds  # fmt: skip


def test_no_secret_of_the_corpus_leaves_the_masker():
    leaks = []
    for item in CASES:
        output = serialised(item.value)
        digits_only = re.sub(r"[^0-9]", "", output)
        for secret in item.secrets:
            if leaked(output, secret) or (secret.isdigit() and secret in digits_only):
                leaks.append((item.kind, repr(item.value)[:160], output[:200]))
    assert leaks == [], f"{len(leaks)}/{len(CASES)} leaked:\n" + "\n".join(map(str, leaks))


def test_secrets_in_exceptions_and_tracebacks_do_not_leave_the_pipeline(ecs_lines):
    log = logging.getLogger("tests.masking.corpus")
    url_secret, cause_secret, extra_secret, note_secret = (
        password().replace("#", "") for _ in "1234"
    )
    token = "sk_live_" + rand(24)
    try:
        try:
            raise ConnectionError(f"redis://:{cause_secret}@cache:6379 refused")
        except ConnectionError as cause:
            error = RuntimeError(f"engine for postgresql://trader:{url_secret}@db:5432/oms failed")
            error.add_note(f"retry with api_key={note_secret}")
            raise error from cause
    except RuntimeError as exc:
        log.exception("startup failed", extra={"last_error": exc, "headers": [("Authorization", f"Bearer {extra_secret}")], "stripe": token})  # fmt: skip
    (document,) = ecs_lines()
    text = json.dumps(document)
    for secret in (url_secret, cause_secret, extra_secret, note_secret, token[8:]):
        assert not leaked(text, secret), secret
    assert "postgresql://trader:[REDACTED]@db:5432/oms" in document["error"]["message"]
    assert "The above exception was the direct cause" in document["error"]["stack_trace"]


# --- look-alikes: ids, timestamps and numbers that must survive -----------------------------------

EPOCH_2000, EPOCH_2035 = 946_684_800, 2_051_222_400


def look_alikes() -> Iterator[tuple[str, Any]]:
    rng = random.Random(7)
    for _ in range(1500):
        seconds = rng.uniform(EPOCH_2000, EPOCH_2035)
        yield "epoch ms", f"ts={int(seconds * 1e3)} order accepted"
        yield "epoch us", f"recv_time_us {int(seconds * 1e6)}"
        yield "epoch ns", f'{{"ts_ns": {int(seconds * 1e9)}}}'
        yield "epoch ns int", {"ts": int(seconds * 1e9), "ms": int(seconds * 1e3)}
    base = rng.randrange(10**12, 10**13)
    for index in range(1500):
        yield "sequential id", f"order {base + index} filled"
        yield "sequential id int", {"order_id": 10**17 + base + index, "exec_id": 10**15 + index}
        # Twitter-style: milliseconds since 2010-11-04 shifted by 22 bits, made 2020-2030.
        snowflake = (rng.randrange(3_100_000_000_00, 6_300_000_000_00) << 22) | rng.randrange(
            1 << 22
        )
        yield "snowflake id", f"msg {snowflake} from venue"
    for _ in range(1500):
        moment = datetime.datetime.fromtimestamp(rng.uniform(EPOCH_2000, EPOCH_2035), datetime.UTC)
        stamp = moment.strftime("%Y%m%d-%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
        compact = moment.strftime("%Y%m%d%H%M%S%f")
        yield (
            "FIX 52=",
            f"8=FIX.4.4\x019=178\x0135=8\x0134={rng.randrange(10**6)}\x0152={stamp}\x0160={stamp}123\x01",
        )
        yield "FIX 52= compact", f"52={compact[:17]}|60={compact}|"
        yield (
            "ISO timestamp",
            f"at {moment.isoformat()} and {moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}",
        )
    for _ in range(1000):
        yield (
            "price qty",
            f"px={rng.uniform(1, 5000):.4f} qty={rng.randrange(1, 10**7)} notional={rng.uniform(1e3, 1e9):.2f}",
        )
        yield "uuid", f"request {uuid.UUID(int=rng.getrandbits(128), version=4)} done"
        yield (
            "trace ids",
            f"trace_id={rng.getrandbits(128):032x} span_id={rng.getrandbits(64):016x}",
        )
        yield "git sha", f"build {rng.getrandbits(160):040x} deployed"
        yield (
            "order id",
            f"clOrdId=ORD-{rng.randrange(10**9, 10**10)}-{rng.randrange(10**4)} status=NEW",
        )
        yield (
            "symbol",
            f"{rng.choice(['AAPL', 'MSFT', 'BRK.B', 'ESZ4', 'EURUSD', 'US0378331005'])} bid {rng.uniform(1, 500):.2f}",
        )


def test_fewer_than_one_in_a_thousand_look_alikes_is_masked():
    samples = list(look_alikes())
    masked = [
        (kind, value)
        for kind, value in samples
        if (
            serialised(value) != (value if isinstance(value, str) else orjson.dumps(value).decode())
        )
    ]
    assert len(samples) >= 10_000
    assert len(masked) / len(samples) < 1 / 1000, masked[:20]


@pytest.mark.parametrize(
    "text",
    [
        "token_type=bearer expires_in=3600",
        "password_length=12 secret_name=oms/db",
        "account_type: margin, account_currency: USD",
        "signal generated for AAPL: momentum",
        "spinning up 4 workers; company=ACME",
        "risk-management-framework-version-2024 loaded",
        "tokenizer ready",
        'File "/usr/lib/python3.11/site-packages/sqlalchemy/engine/base.py", line 1967',
        "com.acme.trading.OrderRouterServiceImplementation.execute(OrderRouter.java:42)",
        "ssh://git@github.com/acme/oms.git",
        "basic validation passed",
    ],
)
def test_everyday_text_with_trigger_words_survives(text):
    assert MASKER.mask_text(text) == text
