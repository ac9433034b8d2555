"""TokenView: generated tokens coloured by entropy or logprob, with the numbers on hover.

After ecco's token views: each token is a span whose colour shows the model's
uncertainty; reflection tokens are underlined; hovering shows logprob, entropy,
schedule value, intervention and the top alternatives. The static fallback
(``text/html``) shows the same colours with the numbers in a tooltip.
"""

from __future__ import annotations

from typing import Any, Iterable

import anywidget
import traitlets

from reflectnb.errors import OptionError
from reflectnb.trace import Generation, TokenEvent
from reflectnb.widgets.bundle import bundle
from reflectnb.widgets.html import render_tokens_html


def token_state(token: TokenEvent | dict[str, Any]) -> dict[str, Any]:
    """The JSON the front-end draws for one token."""
    data = token.to_dict() if isinstance(token, TokenEvent) else dict(token)
    top = data.get("top")
    return {"position": int(data.get("position", 0)), "text": str(data.get("text", "")),
            "logprob": data.get("logprob"), "entropy": data.get("entropy"),
            "is_reflection": bool(data.get("is_reflection")), "schedule_value": data.get("schedule_value"),
            "intervention": data.get("intervention"),
            "top": [[str(t), float(lp)] for t, lp in top] if top else None}


class TokenView(anywidget.AnyWidget):
    """Token heat view.

    Parameters
    ----------
    tokens : Generation, or iterable of TokenEvent / dict
    color_by : ``"entropy"`` (nats) or ``"logprob"`` (shown as -logprob)

    Examples
    --------
    >>> gen = reflectnb.generate("Why is the sky blue?", top_logprobs=3)   # doctest: +SKIP
    >>> TokenView(gen)                                                    # doctest: +SKIP
    """

    _esm = bundle("tokens")
    tokens = traitlets.List().tag(sync=True)
    color_by = traitlets.Unicode("entropy").tag(sync=True)
    scale_max = traitlets.Float(1.0).tag(sync=True)

    def __init__(self, tokens: Generation | Iterable[Any], color_by: str = "entropy", **kwargs: Any):
        if color_by not in ("entropy", "logprob"):
            raise OptionError(f"`color_by` must be 'entropy' or 'logprob', got {color_by!r}")
        items = tokens.tokens if isinstance(tokens, Generation) else tokens
        states = [token_state(t) for t in items]
        super().__init__(tokens=states, color_by=color_by, scale_max=_scale(states, color_by), **kwargs)

    @traitlets.observe("color_by")
    def _rescale(self, change: Any) -> None:
        self.scale_max = _scale(self.tokens, change["new"])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle_ = super()._repr_mimebundle_(**kwargs)
        data = bundle_[0] if isinstance(bundle_, tuple) else bundle_
        data["text/html"] = render_tokens_html(self.tokens, self.color_by, self.scale_max)
        data["text/plain"] = "".join(t["text"] for t in self.tokens)
        return bundle_


def _scale(states: list[dict[str, Any]], color_by: str) -> float:
    key = "entropy" if color_by == "entropy" else "logprob"
    values = [abs(s[key]) for s in states if s.get(key) is not None]
    return max(values) if values and max(values) > 0 else 1.0
