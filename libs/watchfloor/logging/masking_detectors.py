"""What counts as a secret in log text: the detectors behind `Masker`, each returning spans.

Why hand-written rather than detect-secrets' plugins (measured on this 2-core box with a
130-character order log line): `detect_secrets.core.scan.scan_line` costs about 1.2 ms per line
and its 46 plugin regexes run one after another still cost about 65 µs per line, while the writer
thread has to build, mask and serialise 20 000 events/s. The plugins also report the secret's
value, not its position, detect a PEM key by its BEGIN line only (the body would leak), and miss the
shapes issue 12 found leaking (prefixed and camelCase key names, URL credentials, cards followed by
more digits). The token shapes below follow detect-secrets' and gitleaks' published patterns; what
is ours is how they are run: every detector sits behind a check that costs a substring search or one
scan by a regex that starts with a literal or a character class, so a line with no candidate costs a
few microseconds in total.

Card numbers (PAN): a 13-19 digit number is a card when it passes Luhn AND its leading digits and
length belong to a card scheme's issuer range (see `_BRANDS`). One number in ten passes Luhn by
chance; the issuer ranges are what excludes epoch timestamps: seconds, milliseconds, microseconds
and nanoseconds between 2000 and 2035 start with 1 or 20 (or 9 with 15/18 digits), and no scheme
issues 13-19 digit numbers there (UATP's 15-digit "1" range is deliberately left out: airline
billing cards do not reach a trading platform, and it would catch ids in that range). Sequential ids
starting 1…, snowflake ids and FIX timestamps (YYYYMMDD…) survive for the same reason. Context
settles the rest: a number right after an id or time key (`order_id=`, `ts:`, a FIX tag) or an int
under such a key is that id; digits inside a hexadecimal id (trace ids, SHAs, UUIDs) are not
candidates. Anywhere else a 13-19 digit number in an issuer range that passes Luhn is masked: by its
digits alone it is a card. Printed groups (4111 1111 1111 1111, Amex 4-6-5) and numbers followed by
more digits (a PAN then expiry or CVV) are checked window by window.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable

Span = tuple[int, int, str]
KeyClass = Callable[[str], int]

REDACTED = "[REDACTED]"

# What one key name means for its value: not sensitive, the whole value, or (HTTP headers that carry
# several credentials, Cookie and Authorization) everything to the end of the line.
NOT_SENSITIVE, SENSITIVE, SENSITIVE_LINE = 0, 1, 2

_VALUE_LIMIT = 4096

# --- key names -----------------------------------------------------------------------------------

# A word that makes a key sensitive wherever it stands, unless only benign words follow it
# (token_type, password_length, secret_name).
_STRONG = frozenset(
    {
        "password",
        "passwort",
        "passwd",
        "passphrase",
        "passcode",
        "pass",
        "pwd",
        "pw",
        "secret",
        "secrets",
        "token",
        "credential",
        "credentials",
        "creds",
        "cred",
        "authorization",
        "auth",
        "cookie",
        "cookies",
        "apikey",
        "privkey",
        "pin",
        "cvv",
        "cvc",
        "otp",
        "totp",
        "jwt",
        "bearer",
        "iban",
        "pan",
        "sig",
        "signature",
        "dsn",
        "sas",
        "sessionid",
        "jsessionid",
        "phpsessid",
    }
)
# Run-together spellings (dbpassword, clientsecret, awsaccesskey) end with one of these.
_STRONG_SUFFIXES = (
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "pwd",
    "secret",
    "token",
    "cookie",
    "credentials",
    "credential",
    "authorization",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "accountkey",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "clientkey",
    "sharedkey",
    "cardnumber",
    "creditcard",
    "pass",  # dbpass, pgpass; see _NOT_PASSWORDS
)
_NOT_PASSWORDS = frozenset({"bypass", "compass", "surpass", "overpass", "underpass", "trespass"})
# "key" and "number" alone are everyday words; after these words they name a secret.
_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("private", "key"),
        ("priv", "key"),
        ("account", "key"),
        ("signing", "key"),
        ("encryption", "key"),
        ("decryption", "key"),
        ("master", "key"),
        ("client", "key"),
        ("auth", "key"),
        ("app", "key"),
        ("consumer", "key"),
        ("ssh", "key"),
        ("storage", "key"),
        ("subscription", "key"),
        ("license", "key"),
        ("session", "key"),
        ("shared", "key"),
        ("hmac", "key"),
        ("webhook", "key"),
        ("card", "number"),
        ("card", "no"),
        ("card", "num"),
        ("cc", "number"),
        ("cc", "num"),
        ("credit", "card"),
        ("debit", "card"),
        ("security", "code"),
        ("verification", "code"),
        ("recovery", "code"),
        ("backup", "code"),
        ("access", "code"),
        ("mfa", "code"),
    }
)
# Words that are sensitive only as the name of an identifier: "account" and "account_id" hold a
# broker account, "account_type" and "account_currency" do not.
_WEAK = frozenset({"account", "accounts", "acct", "session", "card"})
_WEAK_SUFFIXES = ("account", "acct")
_ID_TRAILING = frozenset(
    {"id", "ids", "no", "num", "number", "nr", "ref", "code", "value", "val", "str", "raw", "data"}
)
_BENIGN_TRAILING = frozenset(
    {
        "count",
        "counts",
        "len",
        "length",
        "size",
        "type",
        "types",
        "kind",
        "ttl",
        "expiry",
        "expires",
        "expire",
        "expired",
        "expiration",
        "in",
        "at",
        "age",
        "max",
        "min",
        "policy",
        "enabled",
        "disabled",
        "required",
        "present",
        "provided",
        "set",
        "valid",
        "validity",
        "version",
        "name",
        "names",
        "arn",
        "label",
        "alias",
        "url",
        "uri",
        "endpoint",
        "path",
        "file",
        "dir",
        "location",
        "env",
        "var",
        "method",
        "mode",
        "scheme",
        "provider",
        "source",
        "status",
        "state",
        "strength",
        "complexity",
        "algorithm",
        "alg",
        "format",
        "prefix",
        "hint",
        "rotation",
        "rotated",
        "changed",
        "updated",
        "created",
        "last",
        "used",
        "usage",
        "issuer",
        "audience",
        "scope",
        "scopes",
        "field",
        "fields",
        "error",
        "errors",
        "failed",
        "failure",
        "failures",
        "attempt",
        "attempts",
        "retries",
        "lifetime",
        "duration",
        "timeout",
        "interval",
        "seconds",
        "ms",
        "days",
        "window",
        "limit",
        "user",
        "username",
        "login",
        "domain",
        "brand",
    }
)
_HEADER_WORDS = frozenset({"cookie", "cookies", "authorization"})
# Query parameters that carry a credential though their name alone says little.
_URL_SECRET_PARAMS = frozenset({"key", "code", "sig", "sv_sig", "k", "apikey", "api-key"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def key_words(key: str) -> list[str]:
    """`dbPassword`, `DB_PASSWORD`, `x-api-key` -> ["db", "password"], …, ["x", "api", "key"]."""
    words = []
    for word in _NON_ALNUM.split(_CAMEL.sub("_", key[:128]).lower()):
        stem = word.rstrip("0123456789")  # password2, cvv2, X-Hub-Signature-256
        if stem:
            words.append(stem)
    return words


def classify_key(key: str) -> int:
    """NOT_SENSITIVE, SENSITIVE or SENSITIVE_LINE for the value named by `key`."""
    words = key_words(key)
    last, weak, header = -1, False, False
    for index, word in enumerate(words):
        if (
            word in _STRONG
            or (word.endswith(_STRONG_SUFFIXES) and word not in _NOT_PASSWORDS)
            or (index and (words[index - 1], word) in _PAIRS)
        ):
            last, weak, header = index, False, word in _HEADER_WORDS
        elif word in _WEAK or word.endswith(_WEAK_SUFFIXES):
            last, weak, header = index, True, False
    if last < 0:
        return NOT_SENSITIVE
    trailing = words[last + 1 :]
    if weak:
        return SENSITIVE if all(word in _ID_TRAILING for word in trailing) else NOT_SENSITIVE
    if trailing and all(word in _BENIGN_TRAILING for word in trailing):
        return NOT_SENSITIVE
    return SENSITIVE_LINE if header and not trailing else SENSITIVE


# --- key = value in text -------------------------------------------------------------------------

# Run over the lower-cased text: a trigger word, the rest of the key, then an assignment. The key's
# start is found by scanning left, so the regex never starts inside a long word.
_TRIGGER = (
    r"(?:p(?:ass|wd|in|an|w)|s(?:ecret|ess|ig)|token|key|a(?:uth|cc(?:oun)?t)"
    r"|c(?:red|ookie|vv|vc|ard|ode)|iban|jwt|otp|dsn)"
)
# Whether a lower-cased text may hold a sensitive key at all.
KEY_TRIGGER = re.compile(_TRIGGER)
_KV = re.compile(
    _TRIGGER + r"[a-z0-9_.\-]{0,64}"
    r"(?P<sep>\\?[\"']?[ \t]{0,4}(?:=>|:=|[=:])[ \t]{0,4}|[\"'][ \t]*,[ \t]*(?=b?[\"']))"
)
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-$")
_VALUE = re.compile(
    rf"b?\"(?P<dq>(?:[^\"\\\r\n]|\\.){{0,{_VALUE_LIMIT}}})"
    rf"|b?'(?P<sq>[^'\r\n]{{0,{_VALUE_LIMIT}}})"
    rf"|\\\"(?P<edq>(?:[^\"\\]|\\[^\"]){{0,{_VALUE_LIMIT}}})"
    rf"|\{{(?P<brace>[^{{}}\r\n]{{0,{_VALUE_LIMIT}}})\}}"
    r"|(?:(?i:bearer|basic|digest|token|negotiate|ntlm|hmac|apikey|ssws|aws4-hmac-sha256)[ \t]+)?"
    rf"(?P<bare>[^\s,;&\"'<>]{{1,{_VALUE_LIMIT}}})"
)
_VALUE_GROUPS = ("dq", "sq", "edq", "brace", "bare")
# How far an unquoted value reaches: to the next blank (key=value pairs), to the end of the phrase
# after "key: " (YAML, prose: "passphrase: correct horse battery"), to the line's end (headers).
_WORD, _PHRASE, _LINE = 0, 1, 2
_VALUE_END = {_PHRASE: re.compile(r"[^\r\n,;\"'}\])]*"), _LINE: re.compile(r"[^\r\n\"']*")}


def _value_span(text: str, at: int, reach: int = _WORD) -> tuple[int, int] | None:
    match = _VALUE.match(text, at)
    if match is None:
        return None
    for group in _VALUE_GROUPS:
        start = match.start(group)
        if start >= 0:
            end = match.end(group)
            if reach != _WORD and group == "bare":
                end = _VALUE_END[reach].match(text, end).end()  # type: ignore[union-attr]
            return (start, end) if end > start else None
    return None


def find_key_values(text: str, low: str, classify: KeyClass, spans: list[Span]) -> None:
    """`password=…`, `"clientSecret": "…"`, `DB_PASSWORD=…`, `('Authorization', '…')`."""
    position = 0
    search = _KV.search
    while (match := search(low, position)) is not None:
        position = match.end()
        key_end = match.start("sep")
        start = match.start()
        floor = max(0, start - 64)
        while start > floor and text[start - 1] in _KEY_CHARS:
            start -= 1
        kind = classify(text[start:key_end])
        if kind == NOT_SENSITIVE and start > 0:
            before = text[start - 1]
            if before in "?&;" and low[start:key_end] in _URL_SECRET_PARAMS:
                kind = SENSITIVE  # a query string without its URL: "…/v1/quotes?key=…"
            elif before == " ":  # "api key: …", "client secret = …"
                word_start = start - 1
                while word_start > max(0, start - 24) and text[word_start - 1].isalpha():
                    word_start -= 1
                kind = classify(text[word_start:key_end])
        if kind == NOT_SENSITIVE:
            continue
        reach = _LINE if kind == SENSITIVE_LINE else _WORD
        if reach == _WORD and ":" in match.group("sep") and "=" not in match.group("sep"):
            reach = _PHRASE
        span = _value_span(text, match.end(), reach)
        if span is not None:
            spans.append((span[0], span[1], REDACTED))
            position = max(position, span[1])


_CLI_FLAG = re.compile(r"(?<!\S)--([A-Za-z][\w-]{0,63})(?:=|[ \t]+)(?=[^\s-])")
_XML = re.compile(r"<([A-Za-z][\w:.\-]{0,63})>([^<]{1,4096})</")
_SQL_PASSWORD = re.compile(r"(?:identified[ \t]+by|password)[ \t]+(?=['\"])")


def find_flags_and_markup(text: str, low: str, classify: KeyClass, spans: list[Span]) -> None:
    """`--db-password secret`, `<password>…</password>`, SQL `IDENTIFIED BY '…'`."""
    if "--" in text:
        for match in _CLI_FLAG.finditer(text):
            if classify(match.group(1)):
                span = _value_span(text, match.end())
                if span is not None:
                    spans.append((span[0], span[1], REDACTED))
    if "</" in text:
        for match in _XML.finditer(text):
            if classify(match.group(1).rpartition(":")[2]):
                spans.append((match.start(2), match.end(2), REDACTED))
    if "identified" in low or "password " in low:
        for match in _SQL_PASSWORD.finditer(low):
            span = _value_span(text, match.end())
            if span is not None:
                spans.append((span[0], span[1], REDACTED))


# Broker account ids: "account U1234567", "acct#987654321", "A/C no. 12-345-678", any value with a
# digit after an account word (the key-value detector covers account=…, accountId: …).
_ACCOUNT = re.compile(
    r"(?:accounts?|acct|a/c)(?:[ _\-]?(?:no\.?|number|num|nr|id|#))?(?:[ \t]*[:#=][ \t]*|[ \t]+)"
    r"(?P<value>[a-z0-9][a-z0-9\-/]{3,63})"
)


_MORE_ACCOUNTS = re.compile(r"[ \t]*,[ \t]*(?P<value>[a-z0-9][a-z0-9\-/]{3,63})")


def find_accounts(low: str, spans: list[Span]) -> None:
    for match in _ACCOUNT.finditer(low):
        value, end = match.group("value"), match.end("value")
        if any(char.isdigit() for char in value):
            spans.append((match.start("value"), end, REDACTED))
            # "accounts: U1234567, U7654321"
            while (more := _MORE_ACCOUNTS.match(low, end)) is not None:
                if not any(char.isdigit() for char in more.group("value")):
                    break
                spans.append((more.start("value"), more.end("value"), REDACTED))
                end = more.end("value")


# FIX tags: 1 Account, 79 AllocAccount, 96 RawData (logon credentials), 554 Password,
# 925 NewPassword, 1402/1404 EncryptedPassword/EncryptedNewPassword.
_FIX_SECRET = re.compile(
    r"(?:^|(?<=[\x01|^\s;]))(?:1|79|96|554|925|1402|1404)=(?P<value>[^\x01|^\s;\\]+)"
)


def find_fix_fields(text: str, spans: list[Span]) -> None:
    for match in _FIX_SECRET.finditer(text):
        spans.append((match.start("value"), match.end("value"), REDACTED))


# --- URLs and connection strings -----------------------------------------------------------------

_URL_REST = re.compile(r"://(?P<rest>[^\s\"'<>`]+)")
_QUERY_PARAM = re.compile(r"[?&;#]([^=&;#?]{1,64})=([^&;#]*)")
_SCHEMELESS_CREDENTIALS = re.compile(
    r"(?<![\w.%+\-/:@])[A-Za-z0-9._%+\-]{1,64}:(?P<password>[^\s:@/\"'<>]{1,256})@[A-Za-z0-9.\-]"
)
_ORACLE_LOGIN = re.compile(
    r"(?:thin:|sqlplus[ \t]+(?:-\S+[ \t]+)*|conn(?:ect)?[ \t]+)[A-Za-z][\w$#]{0,29}/"
    r"(?P<password>[^\s/@\"']{1,128})@"
)


def _url_userinfo(rest: str) -> tuple[int, int] | None:
    """Span of the credential in `user:password@host` (or a bare token@host), relative to rest."""
    boundary = len(rest)
    for char in "/?#":
        index = rest.find(char)
        if 0 <= index < boundary:
            boundary = index
    at = rest.rfind("@", 0, boundary)
    if at < 0:
        head = rest[:boundary]
        colon = head.find(":")
        # `user:pa/ss@host`: an unencoded "/" in the password; `host:8080/x@y` is a port.
        if colon < 0 or head[colon + 1 :].isdigit() or (at := rest.find("@", boundary)) < 0:
            return None
    userinfo = rest[:at]
    colon = userinfo.find(":")
    if colon >= 0:
        return (colon + 1, at) if at > colon + 1 else None
    return (0, at) if at >= 16 else None  # a token as the user (https://<token>@host); not "git@"


def find_urls(text: str, classify: KeyClass, spans: list[Span]) -> None:
    """Credentials in URLs, webhook URLs, and secrets in query strings."""
    for match in _URL_REST.finditer(text):
        rest = match.group("rest")
        base = match.start("rest")
        userinfo = _url_userinfo(rest)
        path_start = 0
        if userinfo is not None:
            spans.append((base + userinfo[0], base + userinfo[1], REDACTED))
            path_start = userinfo[1] + 1
        slash = rest.find("/", path_start)
        host = rest[path_start : slash if slash >= 0 else len(rest)].lower()
        path = rest[slash:].lower() if slash >= 0 else ""
        if (
            slash >= 0
            and len(path) > 1
            and (
                "hook" in host
                or "hook" in path
                or (host.endswith("telegram.org") and "/bot" in path)
            )
        ):
            spans.append((base + slash + 1, base + len(rest), "[REDACTED:webhook]"))
            continue
        for param in _QUERY_PARAM.finditer(rest, path_start):
            name = param.group(1)
            if param.end(2) > param.start(2) and (
                name.lower() in _URL_SECRET_PARAMS or classify(name)
            ):
                spans.append((base + param.start(2), base + param.end(2), REDACTED))


def find_bare_credentials(text: str, low: str, spans: list[Span]) -> None:
    """`trader:secret@db:5432` without a scheme, Oracle's `scott/tiger@db`."""
    for match in _SCHEMELESS_CREDENTIALS.finditer(text):
        spans.append((match.start("password"), match.end("password"), REDACTED))
    if "thin:" in low or "sqlplus" in low or "conn" in low:
        for match in _ORACLE_LOGIN.finditer(text):
            spans.append((match.start("password"), match.end("password"), REDACTED))


# --- private keys --------------------------------------------------------------------------------

_PEM_LABEL = r"[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?"
_PRIVATE_KEY = re.compile(
    rf"-{{2,5}} ?BEGIN {_PEM_LABEL} ?-{{2,5}}.*?(?:-{{2,5}} ?END {_PEM_LABEL} ?-{{2,5}}|\Z)"
    r"|PuTTY-User-Key-File-\d+:.*?(?:Private-MAC: *[0-9a-fA-F]+|\Z)",
    re.DOTALL,
)
_PEM_END = re.compile(rf"-{{2,5}} ?END {_PEM_LABEL} ?-{{2,5}}")


def find_private_keys(text: str, spans: list[Span]) -> None:
    """PEM/OpenSSH/PGP/PuTTY private keys, header to footer (to the end when cut off)."""
    covered_to = 0
    for match in _PRIVATE_KEY.finditer(text):
        spans.append((match.start(), match.end(), "[REDACTED:private_key]"))
        covered_to = match.end()
    # The head was cut off (a truncated or split message): everything before the footer is key.
    end = _PEM_END.search(text, covered_to)
    if end is not None:
        spans.append((covered_to, end.end(), "[REDACTED:private_key]"))


# --- well-known token formats --------------------------------------------------------------------

# (label, literal prefixes, pattern). A token-like run is tested for the prefixes with one
# str.startswith; the token's own pattern is tried only where one occurs.
_TOKENS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "aws_key",
        (
            "AKIA",
            "ASIA",
            "ABIA",
            "ACCA",
            "AGPA",
            "AIDA",
            "AIPA",
            "ANPA",
            "ANVA",
            "AROA",
            "APKA",
            "A3T",
        ),
        r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16,}",
    ),
    (
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"gh[pousr]_[A-Za-z0-9_]{20,}|github_pat_[A-Za-z0-9_]{20,}",
    ),
    (
        "gitlab_token",
        (
            "glpat-",
            "gldt-",
            "glft-",
            "glsoat-",
            "glrt-",
            "glcbt-",
            "glimt-",
            "glptt-",
            "glagent-",
            "gloas-",
            "glffct-",
            "glcf-",
            "GR1348941",
        ),
        r"gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas|ffct|cf)-[A-Za-z0-9_\-]{20,}"
        r"|GR1348941[A-Za-z0-9_\-]{20,}",
    ),
    (
        "slack_token",
        ("xoxa", "xoxb", "xoxp", "xoxo", "xoxs", "xoxr", "xoxe", "xapp-"),
        r"xox[abposre][.\-][A-Za-z0-9.\-]{8,}|xapp-[A-Za-z0-9\-]{10,}",
    ),
    (
        "webhook",
        (
            "hooks.slack.com/",
            "discord.com/api/webhooks/",
            "discordapp.com/api/webhooks/",
            "webhook.office.com/",
            "outlook.office.com/webhook",
            "outlook.office365.com/webhook",
            "api.telegram.org/bot",
            "chat.googleapis.com/v1/spaces/",
            "hooks.zapier.com/",
        ),
        r"(?:hooks\.slack\.com|discord(?:app)?\.com/api/webhooks|webhook\.office\.com"
        r"|outlook\.office(?:365)?\.com/webhook|api\.telegram\.org/bot"
        r"|chat\.googleapis\.com/v1/spaces|hooks\.zapier\.com)/?(?P<webhook_value>[^\s\"'<>`]+)",
    ),
    (
        "stripe_key",
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "pk_test_", "whsec_"),
        r"[srp]k_(?:live|test)_[A-Za-z0-9]{8,}|whsec_[A-Za-z0-9+/=]{16,}",
    ),
    ("sendgrid_key", ("SG.",), r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),
    ("npm_token", ("npm_",), r"npm_[A-Za-z0-9]{30,}"),
    (
        "google_key",
        ("AIza", "ya29.", "GOCSPX-", "1//0"),
        r"AIza[0-9A-Za-z_\-]{30,}|ya29\.[0-9A-Za-z_\-]{20,}|GOCSPX-[A-Za-z0-9_\-]{20,}"
        r"|1//0[0-9A-Za-z_\-]{30,}",
    ),
    ("api_key", ("sk-",), r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{20,}"),
    ("huggingface_token", ("hf_",), r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}"),
    ("pypi_token", ("pypi-AgE",), r"pypi-AgE[A-Za-z0-9_\-]{50,}"),
    ("docker_token", ("dckr_pat_",), r"dckr_pat_[A-Za-z0-9_\-]{20,}"),
    ("digitalocean_token", ("dop_v1_", "doo_v1_", "dor_v1_"), r"do[por]_v1_[a-f0-9]{32,}"),
    (
        "shopify_token",
        ("shpat_", "shpca_", "shppa_", "shpss_"),
        r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
    ),
    ("square_token", ("sq0atp-", "sq0csp-"), r"sq0(?:atp|csp)-[0-9A-Za-z_\-]{22,}"),
    ("vault_token", ("hvs.", "hvb.", "hvr."), r"hv[sbr]\.[A-Za-z0-9_\-]{20,}"),
    # A PEM block in base64, as Kubernetes secrets and env vars carry it.
    ("private_key", ("LS0tLS1CRUdJTi",), r"LS0tLS1CRUdJTi[A-Za-z0-9+/=]+"),
    ("jwt", ("eyJ",), r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}(?:\.[A-Za-z0-9_\-]*)*"),
    ("mailgun_key", ("key-",), r"key-[0-9a-f]{32}"),
    ("sentry_token", ("sntrys_", "sntryu_"), r"sntry[su]_[A-Za-z0-9_=+/]{30,}"),
    ("grafana_token", ("glc_", "glsa_"), r"gl(?:c|sa)_[A-Za-z0-9_=+/]{30,}"),
    ("doppler_token", ("dp.",), r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}"),
    ("postman_key", ("PMAK-",), r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}"),
    ("newrelic_key", ("NRAK-",), r"NRAK-[A-Z0-9]{27}"),
    ("linear_key", ("lin_api_",), r"lin_api_[A-Za-z0-9]{40}"),
    ("age_key", ("AGE-SECRET-KEY-1",), r"AGE-SECRET-KEY-1[A-Z0-9]{50,}"),
    ("databricks_token", ("dapi",), r"dapi[a-f0-9]{32}"),
    ("alibaba_key", ("LTAI",), r"LTAI[A-Za-z0-9]{12,20}"),
    ("twilio_key", ("SK",), r"SK[0-9a-fA-F]{32}"),
    ("atlassian_token", ("ATATT3",), r"ATATT3[A-Za-z0-9_\-=]{50,}"),
)
# Tokens of which only a part is the secret: the part's group and what replaces it.
_VALUE_GROUP_OF = {"webhook": ("webhook_value", "[REDACTED:webhook]")}
# Credentials after an HTTP authentication scheme, wherever they appear in text.
_AUTH_SCHEME = re.compile(
    r"(?i:(?P<scheme>bearer|basic|ssws|token))[ \t]+(?P<value>[A-Za-z0-9\-._~+/]{6,}=*)"
)


_TOKEN_PREFIXES = tuple(sorted({prefix for _, prefixes, _ in _TOKENS for prefix in prefixes}))
_PREFIX_HEADS = frozenset(prefix[:2] for prefix in _TOKEN_PREFIXES)
_TOKEN = re.compile("|".join(f"(?P<{label}>{pattern})" for label, _, pattern in _TOKENS))

# Shapes without a distinctive prefix, each behind a cheap substring check.
_GATED_TOKENS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (":AA", "telegram_token", re.compile(r"\d{8,10}:AA[A-Za-z0-9_\-]{30,}")),
    ("-us", "mailchimp_key", re.compile(r"[0-9a-f]{32}-us\d{1,2}")),
    ("Q~", "azure_secret", re.compile(r"[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}")),
)


def _basic_credentials(value: str) -> bool:
    """`Basic <base64>` is a credential when it decodes to `user:password`."""
    try:
        decoded = binascii.a2b_base64(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


# Where a token can be: a run of token characters at least as long as the shortest token.
_CANDIDATE = re.compile(r"(?<![A-Za-z0-9+/_\-.~])[A-Za-z0-9+/_\-.~]{16,}")


def find_tokens(text: str, spans: list[Span]) -> None:
    """API keys and tokens by their vendor prefix, JWTs, and long random-looking strings (unknown
    formats), all found in one scan for token-like runs."""
    for candidate in _CANDIDATE.finditer(text):
        start, end = candidate.span()
        # A token starts a run or a path segment (https://hooks.slack.com/…, /bot<token>/…).
        piece = start
        while piece >= 0:
            if text[piece : piece + 2] in _PREFIX_HEADS and text.startswith(
                _TOKEN_PREFIXES, piece, end
            ):
                match = _TOKEN.match(text, piece)
                if match is not None:
                    _token_span(match, spans)
            slash = text.find("/", piece, end)
            piece = slash + 1 if slash >= 0 else -1
        # Lower-case hex (trace ids, SHAs) and paths have one case; a generated secret has both.
        if end - start >= 32 and not (candidate.group().islower() or candidate.group().isupper()):
            _random_parts(candidate.group(), start, spans)


def find_scheme_credentials(text: str, low: str, spans: list[Span]) -> None:
    """`Bearer …`, `Basic …` wherever they appear, and token shapes without a prefix."""
    if "bearer" in low or "basic" in low or "ssws" in low or "token " in low:
        for match in _AUTH_SCHEME.finditer(text):
            value = match.group("value")
            scheme = match.group("scheme").lower()
            if scheme == "basic" and not _basic_credentials(value):
                continue
            if scheme != "basic" and not _token_like(value):
                continue  # "token_type=bearer expires_in=3600", "token expired"
            spans.append((match.start("value"), match.end("value"), REDACTED))
    for needle, label, pattern in _GATED_TOKENS:
        if needle in text:
            for match in pattern.finditer(text):
                spans.append((match.start(), match.end(), f"[REDACTED:{label}]"))


def _token_span(match: re.Match[str], spans: list[Span]) -> None:
    label = match.lastgroup or "token"
    if label == "api_key" and not _mixed(match.group()[3:]):
        return  # sk-learn-style names; OpenAI/Anthropic keys mix cases and digits
    value_group, replacement = _VALUE_GROUP_OF.get(label, ("", f"[REDACTED:{label}]"))
    start, end = match.span(value_group) if value_group else match.span()
    spans.append((start, end, replacement))


def _mixed(token: str) -> bool:
    return any(c.isdigit() for c in token) and any(c.isupper() for c in token)


def _token_like(token: str) -> bool:
    return len(token) >= 20 or any(c.isdigit() for c in token) or not token.islower()


# --- unknown formats: long random-looking tokens -------------------------------------------------

_SEGMENT = re.compile(r"[A-Za-z0-9+/_\-~]{32,}")
_SEGMENT_NO_SLASH = re.compile(r"[A-Za-z0-9+_\-~]{32,}")
_DISCORD_BOT = re.compile(r"[MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,40}")
_CLASSES = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-~",
    "U" * 26 + "l" * 26 + "d" * 10 + "s" * 5,
)
_RUN = re.compile(r"U+|l+|d+|s+")


def looks_random(token: str) -> bool:
    """A generated secret (40 base64 characters, say) rather than an identifier or a path.

    Calibrated on random base64/base62 strings (missed: under 1 % at 32 characters, 0.3 % at 40,
    0.01 % at 64) against CamelCase class names, snake_case constants and paths. Lower-case hex
    (trace ids, SHAs, UUIDs) never qualifies: it has no upper case.
    """
    token = token.rstrip("=")
    length = len(token)
    classes = token.translate(_CLASSES)
    upper, lower = classes.count("U"), classes.count("l")
    if upper < 0.1 * length or lower < 0.1 * length or "d" not in classes:
        return False
    if classes.count("s") > max(3, length // 8):
        return False
    return len(_RUN.findall(classes)) - 1 >= 0.36 * (length - 1)


def _random_parts(candidate: str, base: int, spans: list[Span]) -> None:
    if "." in candidate:
        for discord in _DISCORD_BOT.finditer(candidate):
            spans.append((base + discord.start(), base + discord.end(), "[REDACTED:discord_token]"))
    # A path has several slashes between words; split it and judge each part.
    segment = _SEGMENT_NO_SLASH if candidate.count("/") >= 3 else _SEGMENT
    for part in segment.finditer(candidate):
        if looks_random(part.group()):
            spans.append((base + part.start(), base + part.end(), "[REDACTED:secret]"))


# --- checksummed numbers -------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn checksum used by payment cards."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# (first digits low, high, lengths): issuer ranges of the card schemes that issue 13-19 digit PANs.
# Mastercard 51-55 and 2221-2720, Visa 4, Amex 34/37, Discover 6011/644-649/65, UnionPay 62/81,
# JCB 3528-3589, Diners 300-305/3095/36/38/39, Maestro 50/56-69, Mir 2200-2204,
# RuPay 60/65/81/82/508, Troy 9792. UATP (1, 15 digits) is left out, see the module docstring.
_BRANDS: tuple[tuple[int, int, int, frozenset[int]], ...] = (
    (4, 4, 1, frozenset({13, 16, 19})),
    (51, 55, 2, frozenset({16})),
    (2221, 2720, 4, frozenset({16})),
    (2200, 2204, 4, frozenset(range(16, 20))),
    (34, 34, 2, frozenset({15})),
    (37, 37, 2, frozenset({15})),
    (300, 305, 3, frozenset(range(14, 20))),
    (3095, 3095, 4, frozenset(range(14, 20))),
    (36, 36, 2, frozenset(range(14, 20))),
    (38, 39, 2, frozenset(range(14, 20))),
    (3528, 3589, 4, frozenset(range(16, 20))),
    (50, 50, 2, frozenset(range(13, 20))),
    (56, 69, 2, frozenset(range(13, 20))),
    (81, 82, 2, frozenset(range(16, 20))),
    (9792, 9792, 4, frozenset({16})),
)


_BRAND_FIRST_DIGITS = frozenset("2345689")


def is_card_number(digits: str) -> bool:
    """A PAN: a scheme's issuer range and length, and the Luhn checksum."""
    length = len(digits)
    if not 13 <= length <= 19 or digits[0] not in _BRAND_FIRST_DIGITS:
        return False
    for low, high, width, lengths in _BRANDS:
        if length in lengths and low <= int(digits[:width]) <= high:
            return luhn_valid(digits)
    return False


_DIGIT_RUN = re.compile(r"[0-9][0-9 \-.]{11,}")
_GROUP = re.compile(r"[0-9]+")
_HEX = frozenset("0123456789abcdefABCDEF")
# Span ids, ObjectIds, trace ids, SHA-1 and SHA-256: "4111111111111111abc" is a card and text.
_HEX_ID_LENGTHS = frozenset({16, 24, 32, 40, 64})
_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _card_in(groups: list[str]) -> str | None:
    """The PAN within digit groups: a window of whole groups, or the head of a longer group."""
    for first in range(len(groups)):
        digits = ""
        for index in range(first, len(groups)):
            group = groups[index]
            # Printed cards group digits by 4 (Amex 4-6-5, Diners 4-6-4, the last group shorter:
            # 4-4-4-1); "ORD-5678378846-909" is one number and a suffix, not a card.
            if index > first and not (len(group) <= 6 and 3 <= len(groups[index - 1]) <= 6):
                break
            digits += group
            if len(digits) > 19:
                break
            if len(digits) >= 13 and is_card_number(digits):
                return digits
        group = groups[first]
        # A PAN followed by more digits (4111111111111111 + 1227), unless the whole is 19 digits
        # from 1 or 2: epoch nanoseconds (2001-2065) and snowflake ids (Twitter since 2020).
        if len(group) > 13 and not (len(group) == 19 and group[0] in "12"):
            for length in range(13, min(len(group), 19) + 1):
                if is_card_number(group[:length]):
                    return group[:length]
    return None


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _inside_hex_id(text: str, start: int, end: int) -> bool:
    """Digits that are part of a trace id, a SHA or a UUID, not a number of their own."""
    left, right = start, end
    while left > 0 and text[left - 1] in _ALNUM:
        left -= 1
    while right < len(text) and text[right] in _ALNUM:
        right += 1
    word = text[left:right]
    if len(word) in _HEX_ID_LENGTHS and all(char in _HEX for char in word) and not word.isdigit():
        return True
    for uuid in _UUID.finditer(text, max(0, start - 36), min(len(text), end + 36)):
        if uuid.start() <= start and end <= uuid.end():
            return True
    return False


# A number right after an id, sequence or time key is that id: `order_id=`, `ts:`, `seq `, a FIX
# tag (FIX has no card field). Not "ref", "number" or "no": "card no 4111…" is a card.
_ID_CONTEXT = re.compile(
    r"(?:(?:\b|_|(?<=[a-z])(?=[A-Z]))(?i:id|ids|seq|seqnum|sequence|ts|time|timestamp|epoch|nonce"
    r"|order|offset|qty|quantity|version|build|millis|micros|nanos|ms|us|ns)|[\x01|^][0-9]{1,5})"
    r"[\"']?[ \t]*[:=#]?[ \t]*[\"']?\Z"
)
_ID_KEY_WORDS = frozenset(
    {
        "id",
        "ids",
        "seq",
        "seqnum",
        "sequence",
        "ts",
        "time",
        "timestamp",
        "epoch",
        "nonce",
        "offset",
        "qty",
        "quantity",
        "version",
        "build",
        "millis",
        "micros",
        "nanos",
        "ms",
        "us",
        "ns",
    }
)


def is_id_key(key: str) -> bool:
    """`order_id`, `ts_ns`, `execSeq`: a key whose number is an id or a time, not a card."""
    words = key_words(key)
    return bool(words) and (words[-1] in _ID_KEY_WORDS or words == ["order"])


def find_cards(text: str, spans: list[Span]) -> None:
    for match in _DIGIT_RUN.finditer(text):
        run = match.group().rstrip(" -.")
        if run.isdigit() and (len(run) < 13 or run[0] not in _BRAND_FIRST_DIGITS):
            continue  # the common case: an epoch or an id from 1…, no window can be a card
        groups = _GROUP.findall(run)
        if sum(map(len, groups)) < 13:
            continue
        pan = _card_in(groups)
        start, end = match.start(), match.start() + len(run)
        if pan is None or _inside_hex_id(text, start, end):
            continue
        if _ID_CONTEXT.search(text, max(0, start - 24), start) is not None:
            continue
        spans.append((start, end, f"[REDACTED:card:{pan[-4:]}]"))


# ISO 13616 registry: IBAN length per country.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_valid(candidate: str) -> bool:
    """True when a string is an IBAN by ISO 13616 (country length and mod-97 check)."""
    compact = candidate.replace(" ", "").upper()
    expected = IBAN_LENGTHS.get(compact[:2])
    if not 15 <= len(compact) <= 34 or (expected is not None and len(compact) != expected):
        return False
    if not compact.isalnum() or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,40}")


def find_ibans(text: str, spans: list[Span]) -> None:
    for match in _IBAN.finditer(text):
        found = match.group()
        length = IBAN_LENGTHS.get(found[:2])
        if length is None:
            continue
        # Count `length` characters past the spaces: the IBAN may be followed by more text.
        seen = end = 0
        for end, char in enumerate(found, 1):  # noqa: B007 - end is used after the loop
            if char != " ":
                seen += 1
                if seen == length:
                    break
        if seen == length and iban_valid(found[:end]):
            spans.append((match.start(), match.start() + end, "[REDACTED:iban]"))
