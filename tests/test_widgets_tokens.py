"""TokenView: token states, colour scale, the entropy/logprob switch and fallbacks."""

from __future__ import annotations

import pytest

from reflectnb.errors import OptionError
from reflectnb.trace import Generation, TokenEvent
from reflectnb.widgets import TokenView

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def generation() -> Generation:
    return Generation(text="Wait, no", model="m", prompt="p", tokens=[
        TokenEvent(row=0, position=0, token_id=1, text="Wait", logprob=-0.2, entropy=2.0, is_reflection=True,
                   schedule_value=0.5, top=[("Wait", -0.2), ("But", -1.9)]),
        TokenEvent(row=0, position=1, token_id=2, text=", no", logprob=-3.0, entropy=0.5)])


def test_token_view_states_mirror_the_token_events():
    view = TokenView(generation())
    assert view.tokens[0] == {"position": 0, "text": "Wait", "logprob": -0.2, "entropy": 2.0,
                              "is_reflection": True, "schedule_value": 0.5, "intervention": None,
                              "top": [["Wait", -0.2], ["But", -1.9]], "source": None}
    assert view.tokens[1]["top"] is None


def test_a_list_of_token_dicts_works_like_a_generation():
    dicts = [t.to_dict() for t in generation().tokens]
    assert TokenView(dicts).tokens == TokenView(generation()).tokens


def test_the_colour_scale_follows_the_chosen_measure():
    view = TokenView(generation())
    assert view.scale_max == 2.0
    view.color_by = "logprob"
    assert view.scale_max == 3.0


def test_tokens_without_numbers_get_a_unit_scale():
    assert TokenView([{"text": "a", "position": 0}]).scale_max == 1.0


def test_an_unknown_colouring_is_refused():
    with pytest.raises(OptionError, match="`color_by` must be 'entropy', 'logprob' or 'source', got 'x'"):
        TokenView(generation(), color_by="x")


def test_the_mimebundle_has_the_widget_view_escaped_html_and_the_plain_text():
    hostile = TokenEvent(row=0, position=0, token_id=1, text="<script>alert(1)</script>", entropy=1.0,
                         top=[("<img src=x onerror=alert(1)>", -0.1)])
    view = TokenView([hostile], color_by="entropy")
    data, _ = view._repr_mimebundle_()
    assert data[WIDGET_VIEW]["model_id"] == view.model_id
    assert "<script>alert" not in data["text/html"] and "<img" not in data["text/html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in data["text/html"]
    assert data["text/plain"] == "<script>alert(1)</script>"
