"""Keep the values of configured secrets out of every error we raise, every record we store and every log line.

A provider or a proxy may echo the key it was sent ("Incorrect API key provided: Bearer sk-..."),
and a database URL holds its password. The secrets are the values of the environment variables
that hold keys, tokens and passwords (``OPENAI_API_KEY``, ``HF_TOKEN``, ``THINKEDIT_TOKEN``, a
profile's own ``api_key_env``, ...) plus what the process registers (a ``--checkpoints`` URL's
password); ``mask_secrets`` replaces each of them in a text with ``***``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote, unquote

#: What a secret turns into wherever it would be shown.
MASK = "***"

#: Environment variables whose value is a secret: names ending in KEY, TOKEN, SECRET, PASSWORD...
SECRET_ENV_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)

#: Shorter values are not masked: replacing a 3-letter value everywhere would garble every message.
MIN_SECRET_CHARS = 6

_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(*values: str | None) -> None:
    """Mask ``values`` (and their percent-encoded and decoded forms) from now on in this process."""
    forms = {form for value in values if value for form in (value, unquote(value), quote(value, safe=""))}
    with _lock:
        _registered.update(form for form in forms if len(form) >= MIN_SECRET_CHARS)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Return the secrets to mask now, longest first (so a secret inside another goes with it)."""
    env = os.environ if env is None else env
    found = {value for name, value in env.items() if SECRET_ENV_NAME.search(name) and len(value) >= MIN_SECRET_CHARS}
    with _lock:
        found |= _registered
    return sorted(found, key=len, reverse=True)


def mask_secrets(text: str, secrets: Iterable[str] | None = None) -> str:
    """Return ``text`` with every configured secret replaced by ``***``."""
    for value in secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text


class SecretFilter(logging.Filter):
    """Mask secrets in a log record's message and traceback before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values()
        if not secrets:
            return True
        message = record.getMessage()
        masked = mask_secrets(message, secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)  # what a formatter would print
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info, secrets)
        return True


#: Query parameters of a URL whose value is a secret (libpq's ``password``, ``sslpassword``, a ``token``...).
SECRET_PARAM = re.compile(r"pass(?:word|wd)|secret|token|api_?key", re.IGNORECASE)


def _url_parts(url: str) -> tuple[str, str, str, list[str]]:
    """Split ``url`` into (``scheme://user``, the userinfo secret, the rest, the query's secret values).

    The userinfo is taken the widest way any parser reads it: everything before the last ``@`` ahead
    of the path, so a password holding an unencoded ``@`` or ``?`` is masked whole.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", url, []
    head = rest.split("/", 1)[0]
    secret = ""
    at = head.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at:]
        user = re.split(r"[:@]", userinfo, maxsplit=1)[0]
        secret = userinfo[len(user) + 1:]
        scheme = f"{scheme}://{user}"
    else:
        scheme = f"{scheme}://"
    query = rest.partition("?")[2].partition("#")[0]
    values = []
    for param in query.split("&") if query else []:
        name, eq, value = param.partition("=")
        if eq and value and SECRET_PARAM.search(unquote(name)):
            values.append(value)
    return scheme, secret, rest, values


#: In a value that is not quite a URL: ``user:secret@`` (a ``//`` left out), and libpq's ``password=secret`` pairs.
_LOOSE_USERINFO = re.compile(r"([^\s/:@=]+):([^\s/@]+)@")
_SECRET_KEYWORD = re.compile(r"\b(\w*(?:pass(?:word|wd)|secret|token|api_?key)\w*)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)",
                             re.IGNORECASE)


def url_secrets(url: str) -> list[str]:
    """Return the secrets a URL holds: its password and secret query parameters, as written.

    A value without ``://`` (a mistyped URL, a libpq ``key=value`` string) gives what looks like one.
    """
    if "://" not in url:
        found = [m[2] for m in _LOOSE_USERINFO.finditer(url)] + [m[2] for m in _SECRET_KEYWORD.finditer(url)]
        return [value for value in {*found, *(v.strip("'") for v in found)} if len(value) > 1]
    _, secret, _, values = _url_parts(url)
    return [value for value in (secret, *values) if value]


def mask_url(url: str, *, known: bool = True) -> str:
    """Return ``url`` fit to show: its password and secret query parameters (and any known secret) as ``***``.

    ``known=False`` leaves other secrets this process knows of alone: a URL to store then reads the same
    whatever else the process has registered.
    """
    keep: Callable[[str], str] = mask_secrets if known else str
    if "://" not in url:  # not quite a URL: mask what looks like a password in it all the same
        loose = _LOOSE_USERINFO.sub(lambda m: f"{m[1]}:{MASK}@", url)
        return keep(_SECRET_KEYWORD.sub(lambda m: f"{m[1]}={MASK}", loose))
    prefix, secret, rest, _ = _url_parts(url)
    if secret:
        prefix += f":{MASK}"
    base, q, query = rest.partition("?")
    if q:
        params = []
        for param in query.split("&"):
            name, eq, value = param.partition("=")
            params.append(f"{name}={MASK}" if eq and value and SECRET_PARAM.search(unquote(name)) else param)
        query = "&".join(params)
    return keep(f"{prefix}{base}{q}{query}")
