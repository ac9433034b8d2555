"""Static HTML fallbacks: readable without a widget manager, and inert for hostile model text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from reflectnb.widgets import render_steps_html, render_tokens_html

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)",
           "' onmouseover='alert(1)", '"><svg onload=alert(1)>']


class Tags(HTMLParser):
    """Collects every tag and attribute the browser would build from the markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(k, v or "") for k, v in attrs]


def parse(markup: str) -> Tags:
    tags = Tags()
    tags.feed(markup)
    return tags


def hostile_steps() -> list[dict]:
    return [{"kind": "draft", "text": h, "agent": h, "round": i, "diff": [{"op": "insert", "text": h}],
             "verdicts": [{"index": 0, "text": h, "correct": False}], "first_wrong_step": 0}
            for i, h in enumerate(HOSTILE)]


@pytest.mark.parametrize("kind", ["reflect", "critique", "debate"])
def test_hostile_model_text_in_steps_builds_no_element_or_attribute(kind):
    parsed = parse(render_steps_html(hostile_steps(), kind, "completed", HOSTILE[0], HOSTILE[1]))
    assert set(parsed.tags) <= {"style", "div", "b", "span", "pre", "ins", "del", "ol", "li"}
    assert [k for k, _ in parsed.attrs if k not in ("class", "style")] == []
    assert not [v for _, v in parsed.attrs if "alert" in v]


def test_hostile_token_text_stays_inside_escaped_text_and_titles():
    tokens = [{"text": h, "entropy": 1.0, "logprob": -1.0, "top": [(h, -0.5)]} for h in HOSTILE]
    markup = render_tokens_html(tokens, "entropy")
    parsed = parse(markup)
    assert set(parsed.tags) == {"style", "div", "span"}
    assert {k for k, _ in parsed.attrs} == {"class", "style", "title"}
    assert "<script" not in markup and markup.count("&lt;script&gt;") == 2  # the text and the tooltip


def test_a_reflect_run_shows_each_step_with_its_diff():
    steps = [{"kind": "draft", "text": "a cat", "round": 0},
             {"kind": "refine", "text": "a dog", "round": 1,
              "diff": [{"op": "equal", "text": "a"}, {"op": "delete", "text": " cat"}, {"op": "insert", "text": " dog"}]}]
    markup = render_steps_html(steps, "reflect", "completed", "a dog", "max_rounds")
    assert "<pre class='rnb-t'>a<del class='rnb-del'> cat</del><ins class='rnb-ins'> dog</ins></pre>" in markup
    assert "round 1 · refine" in markup
    assert "<b>answer:</b> a dog <span class='rnb-l'>stopped: max_rounds</span>" in markup


def test_a_critique_marks_correct_and_wrong_steps_and_the_first_wrong_one():
    step = {"kind": "critique", "text": "...", "round": 0, "first_wrong_step": 1,
            "verdicts": [{"index": 0, "text": "4*3=12", "correct": True}, {"index": 1, "text": "20-12=7", "correct": False}]}
    assert "<ol><li>✓ 4*3=12</li><li class='rnb-bad'>✗ 20-12=7</li></ol>" in render_steps_html([step], "critique")


def test_a_debate_puts_each_agent_in_a_column_and_the_moderator_below():
    steps = [{"kind": "answer", "text": "7", "agent": "agent 1"}, {"kind": "answer", "text": "8", "agent": "agent 2"},
             {"kind": "moderator", "text": "agent 2 wins", "agent": "moderator"}]
    markup = render_steps_html(steps, "debate")
    assert "repeat(2,minmax(0,1fr))" in markup
    columns = markup[markup.index("rnb-cols"):markup.index("round 0 · moderator")]
    assert columns.count("<div><div class='rnb-l'>agent ") == 2 and "moderator" not in columns


def test_token_colours_scale_with_the_value_and_the_tooltip_has_the_numbers():
    tokens = [{"text": "Wait", "entropy": 2.0, "logprob": -0.1, "is_reflection": True, "schedule_value": 0.5,
               "top": [["Wait", -0.1], ["But", -2.3]]},
              {"text": ",", "entropy": 0.0, "logprob": -2.0}]
    markup = render_tokens_html(tokens, "entropy")
    backgrounds = re.findall(r"background:hsl\(12,85%,(\d+)%\)", markup)
    assert backgrounds == ["52", "97"]
    assert "logprob -0.100 · entropy 2.000 · schedule 0.500 · reflection token · top: &#x27;Wait&#x27; -0.10" in markup
    assert re.findall(r"background:hsl\(12,85%,(\d+)%\)", render_tokens_html(tokens, "logprob")) == ["95", "52"]
