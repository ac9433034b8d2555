"""What went wrong with one request to an OpenAI-compatible server, as one readable phrase.

:func:`describe` turns an ``openai`` client exception into the part of a
``BackendError`` message after "server at <url> (model …)": the status and what
the server said, how many tries were made, and what to do. Split from
``openai_http`` so the wording reads apart from requests and threads.

Non-goals: naming the server (the backend does, without credentials), scrubbing keys.
"""

from __future__ import annotations

import http
import os
from typing import Any

from reflectnb.backends.openai_pool import RETRIED_STATUS


def describe(exc: Exception, midway: bool, tries: int, timeout: float, key_env: str) -> str | None:
    """The failure as a phrase, or ``None`` for an exception that is not the server's doing."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        after = _after(tries if code in RETRIED_STATUS or code >= 500 else 1)
        return f"answered {code} {_phrase(code)}{after}: {_detail(exc)}{_hint(code, key_env)}"
    if isinstance(exc, openai.APITimeoutError):
        return (f"did not answer within {timeout:g} s{_after(tries)}; raise `timeout` or check "
                "that the server is not overloaded")
    if isinstance(exc, openai.APIConnectionError):
        reason = _root_reason(exc)
        if midway:
            return f"broke the connection ({reason})"
        return f"could not be reached ({reason}){_after(tries)}; is it running, and is the URL right?"
    if isinstance(exc, ValueError):
        return f"sent malformed data in the stream ({exc})"
    if isinstance(exc, openai.APIError):
        return f"reported an error in the stream: {getattr(exc, 'message', exc)}"
    return None


def _root_reason(exc: BaseException) -> str:
    """What the network said, from the deepest error in the chain (e.g. ``[Errno 111] Connection refused``).

    The async client wraps a refused connection as "All connection attempts failed";
    the ``ConnectionRefusedError`` under it says what the user needs to know.
    """
    chain, cur = [], exc
    while cur is not None and cur not in chain and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    errno = [e for e in chain if isinstance(e, OSError) and e.errno is not None]
    if errno:
        return f"[Errno {errno[-1].errno}] {os.strerror(errno[-1].errno)}"
    named = [e for e in chain[1:] if str(e)]
    return str(named[0]) if named else (str(exc) or type(exc).__name__)


def _after(tries: int) -> str:
    return f" after {tries} tries" if tries > 1 else ""


def _phrase(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "(unknown status)"


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    text = " ".join(str(message or body or exc.message).split())
    return text[:200] + ("…" if len(text) > 200 else "")


def _hint(code: int, env: str) -> str:
    if code in (401, 403):
        return f"; check the API key in ${env}"
    if code == 404:
        return "; check the model name and that base_url ends with /v1"
    if code == 429:
        return "; the server is rate-limiting: wait, lower `concurrency`, or raise `max_retries`"
    return "; see the server's log" if code >= 500 else ""
