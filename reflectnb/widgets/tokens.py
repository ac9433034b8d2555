"""TokenView: generated tokens coloured by entropy, logprob or the model that wrote them.

After ecco's token views: each token is a span whose colour shows the model's
uncertainty; reflection tokens are underlined; hovering shows logprob, entropy,
schedule value, intervention and the top alternatives. The static fallback
(``text/html``) shows the same colours with the numbers in a tooltip.

``color_by="source"`` colours each token by its ``source`` label instead (the
model that wrote it, e.g. ``small``/``large`` in Speculative Thinking); the
colours come from :func:`source_palette`, computed here once for both renderers.
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
            "top": [[str(t), float(lp)] for t, lp in top] if top else None,
            "source": None if data.get("source") is None else str(data["source"])}


SOURCE_COLOURS = {"small": "#dbeafe", "large": "#fde68a", "inserted": "#e5e7eb"}
_MORE_COLOURS = ("#dcfce7", "#fce7f3", "#ede9fe", "#ffedd5", "#cffafe")
COLOR_BY = ("entropy", "logprob", "source")


def source_palette(states: Iterable[dict[str, Any]]) -> dict[str, str]:
    """A background colour per ``source`` label: fixed for small/large/inserted, then in order of appearance.

    Examples
    --------
    >>> source_palette([{"source": "large"}, {"source": "critic"}, {"source": None}])
    {'large': '#fde68a', 'critic': '#dcfce7'}
    """
    labels = list(dict.fromkeys(s["source"] for s in states if s.get("source") is not None))
    others = [label for label in labels if label not in SOURCE_COLOURS]
    extra = {label: _MORE_COLOURS[i % len(_MORE_COLOURS)] for i, label in enumerate(others)}
    return {label: SOURCE_COLOURS.get(label) or extra[label] for label in labels}


class TokenView(anywidget.AnyWidget):
    """Token heat view.

    Parameters
    ----------
    tokens : Generation, or iterable of TokenEvent / dict
    color_by : ``"entropy"`` (nats), ``"logprob"`` (shown as -logprob) or ``"source"`` (each token's
        ``source`` label, e.g. ``SpeculativeResult.token_rows()``)

    Examples
    --------
    >>> gen = reflectnb.generate("Why is the sky blue?", top_logprobs=3)   # doctest: +SKIP
    >>> TokenView(gen)                                                    # doctest: +SKIP
    """

    _esm = bundle("tokens")
    tokens = traitlets.List().tag(sync=True)
    color_by = traitlets.Unicode("entropy").tag(sync=True)
    scale_max = traitlets.Float(1.0).tag(sync=True)
    palette = traitlets.Dict().tag(sync=True)

    def __init__(self, tokens: Generation | Iterable[Any], color_by: str = "entropy", **kwargs: Any):
        if color_by not in COLOR_BY:
            raise OptionError(f"`color_by` must be 'entropy', 'logprob' or 'source', got {color_by!r}")
        items = tokens.tokens if isinstance(tokens, Generation) else tokens
        states = [token_state(t) for t in items]
        if color_by == "source" and not any(s["source"] for s in states):
            raise OptionError("color_by='source' needs tokens with a `source` label (e.g. "
                              "SpeculativeResult.token_rows()); these tokens have none")
        super().__init__(tokens=states, color_by=color_by, scale_max=_scale(states, color_by),
                         palette=source_palette(states), **kwargs)

    @traitlets.observe("color_by")
    def _rescale(self, change: Any) -> None:
        self.scale_max = _scale(self.tokens, change["new"])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle_ = super()._repr_mimebundle_(**kwargs)
        data = bundle_[0] if isinstance(bundle_, tuple) else bundle_
        data["text/html"] = render_tokens_html(self.tokens, self.color_by, self.scale_max, self.palette)
        data["text/plain"] = "".join(t["text"] for t in self.tokens)
        return bundle_


def _scale(states: list[dict[str, Any]], color_by: str) -> float:
    if color_by == "source":
        return 1.0
    key = "entropy" if color_by == "entropy" else "logprob"
    values = [abs(s[key]) for s in states if s.get(key) is not None]
    return max(values) if values and max(values) > 0 else 1.0
