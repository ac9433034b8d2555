"""Keep secrets out of the trace store: redaction applied before every write.

Contract
--------
* :func:`redact` walks dicts/lists/tuples and returns a copy in which
  - the value of any key that names a secret (``api_key``, ``authorization``,
    ``password``, ``secret``, ``access_token`` …, case-insensitive) is replaced
    by :data:`REDACTED` (the OpenInference sentinel, so "hidden on purpose"
    differs from "missing");
  - every string has key-like patterns masked (``sk-…``, ``Bearer …``,
    ``Authorization: …``, ``api_key=…``).
* :func:`redact_text` masks the patterns in one string (used for error texts).
* Objects that are not JSON-like become ``repr`` strings first (so a client
  object or header mapping is never stored as itself).

Applied to: run parameters, error texts, step/node attributes, generation
parameters, ``set_result`` extras. Not applied to prompts and model output
(storing those is the point of the store); exports can redact again.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "__REDACTED__"

SECRET_KEYS = {"api_key", "apikey", "authorization", "auth", "auth_headers", "headers", "password",
               "passwd", "secret", "client_secret", "token", "access_token", "refresh_token",
               "auth_token", "bearer", "x_api_key", "openai_api_key", "cookie", "set_cookie"}
_SECRET_SUFFIXES = ("_api_key", "_apikey", "_secret", "_password", "_access_token", "_auth_token")

_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*"),
    re.compile(r"(?i)\b(authorization|x-api-key|api[_-]?key|access[_-]?token|password|secret)"
               r"(\"?\s*[:=]\s*\"?)(?!__REDACTED__)[^\s\"',;}]{4,}"),
)


def is_secret_key(key: Any) -> bool:
    """Whether a mapping key names a secret (``"OPENAI_API_KEY"`` → True, ``"max_tokens"`` → False)."""
    name = str(key).strip().lower().replace("-", "_")
    return name in SECRET_KEYS or name.endswith(_SECRET_SUFFIXES)


def redact_text(text: str) -> str:
    """Mask key-like patterns in ``text``.

    Examples
    --------
    >>> redact_text("401 for key sk-abcdefghijklmnop")
    '401 for key __REDACTED__'
    """
    text = _PATTERNS[0].sub(REDACTED, text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def redact(value: Any) -> Any:
    """A JSON-like copy of ``value`` with secrets replaced (see the module docstring)."""
    if isinstance(value, dict):
        return {str(k): (REDACTED if is_secret_key(k) and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(repr(value))
