"""Reading the MAD moderator's (and judge's) JSON verdict, with repair.

The moderator is asked for strict JSON::

    {"Whether there is a preference": "Yes", "Supported Side": "Negative",
     "Reason": "...", "debate_answer": "..."}

Models wrap it in prose or code fences, use single quotes or leave trailing
commas. :func:`parse_verdict` tries, in order: the whole text as JSON; the
first balanced ``{...}`` as JSON; that object as a Python literal
(``ast.literal_eval``: single quotes, ``True``); with trailing commas removed
and curly quotes straightened. Anything but the first try sets
``json_repaired``; if all fail, the verdict falls back to "no preference" and
``json_error`` says why. Keys are matched loosely (case, spaces, underscores).

Non-goals: ``eval`` (the MAD repo uses it; we never do).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Verdict:
    """A moderator/judge verdict; ``attributes`` records repair or failure."""

    preference: bool = False
    supported_side: str = ""
    reason: str = ""
    answer: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def decided(self) -> bool:
        """MAD's adaptive break: a preference, or a non-empty ``debate_answer``."""
        return self.preference or bool(self.answer)

    def to_dict(self) -> dict[str, Any]:
        return {"Whether there is a preference": "Yes" if self.preference else "No",
                "Supported Side": self.supported_side, "Reason": self.reason, "debate_answer": self.answer}


def first_object(text: str) -> str | None:
    """The first balanced ``{...}`` in ``text`` (braces inside strings ignored)."""
    start = text.find("{")
    if start < 0:
        return None
    depth, quote, escaped = 0, "", False
    for i, ch in enumerate(text[start:], start):
        if quote:
            escaped, quote = (not escaped and ch == "\\"), ("" if ch == quote and not escaped else quote)
            continue
        if ch in "\"'":
            quote = ch
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            return text[start:i + 1]
    return None


def load_object(text: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``(object, attributes)``; ``attributes`` is ``{}``, ``{"json_repaired": True}`` or ``{"json_error": …}``."""
    whole = _try_json(text.strip())
    if whole is not None:
        return whole, {}
    candidate = first_object(text) or text[text.find("{"): text.rfind("}") + 1]
    for attempt in (candidate, _straighten(candidate)):
        for loader in (_try_json, _try_literal):
            got = loader(attempt)
            if got is not None:
                return got, {"json_repaired": True}
    reason = "no {...} object in the reply" if "{" not in text else "the {...} object is not valid JSON"
    return None, {"json_error": reason}


def parse_verdict(text: str) -> Verdict:
    """Parse a moderator/judge reply into a :class:`Verdict` (never raises).

    Examples
    --------
    >>> v = parse_verdict("Sure! {'Whether there is a preference': 'Yes', 'debate_answer': '42',}")
    >>> v.preference, v.answer, v.attributes
    (True, '42', {'json_repaired': True})
    >>> parse_verdict("I cannot decide.").attributes
    {'json_error': 'no {...} object in the reply'}
    """
    obj, attributes = load_object(text)
    if obj is None:
        return Verdict(attributes=attributes)
    get = _loose(obj)
    preference = str(get("preference", "")).strip().lower() in ("yes", "true", "y")
    return Verdict(preference=preference, supported_side=str(get("side", "")).strip(),
                   reason=str(get("reason", "")).strip(), answer=_text(get("answer", "")), raw=obj,
                   attributes=attributes)


def _loose(obj: dict[str, Any]):
    keys = {re.sub(r"[\s_]+", "", str(k)).lower(): v for k, v in obj.items()}

    def get(word: str, default: Any) -> Any:
        return next((v for k, v in keys.items() if word in k), default)
    return get


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value)


def _try_json(text: str) -> dict[str, Any] | None:
    try:
        got = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    return got if isinstance(got, dict) else None


def _try_literal(text: str) -> dict[str, Any] | None:
    try:
        got = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return got if isinstance(got, dict) else None


def _straighten(text: str) -> str:
    text = text.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    return re.sub(r",\s*([}\]])", r"\1", text)
