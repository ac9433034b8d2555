"""LeaP with scripted paths: who reads whose summary under each router, batching, the trace, bad input."""

from __future__ import annotations

import re

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError
from reflectnb.strategies.context import RunContext
from reflectnb.strategies.leap import LEAP_REFERENCE, LEAP_REFERENCE_PARAMS, cut_at_paragraph, leap
from reflectnb.strategies.leap_router import distance, levenshtein
from reflectnb.strategies.spec import get_strategy
from reflectnb.trace import ListRecorder

# Path i's summary: As then Bs, so the edit distance between two summaries is how far their A counts differ.
BODIES = {1: "AAAAAAAAAA", 2: "AAAAAAAABB", 3: "AAAAABBBBB", 4: "BBBBBBBBBB"}
LONG = " thinking" * 20  # longer than any interval below: the path keeps running


def script(finish_early=(), answers=None):
    """Segments say which path they are; a summary prompt gets that path's body; a final prompt its answer."""
    answers = answers or {}

    def reply(prompt, index):
        me = int(re.search(r"I am path (\d)", prompt).group(1)) if "I am path" in prompt else index + 1
        if prompt.endswith("{"):
            return f"{answers.get(me, 4)}}}"
        if prompt.endswith("that"):
            return f" {BODIES[me]}. </summarize> never shown"
        if me in finish_early:
            return f"Answer: {answers.get(me, 4)}"  # shorter than the interval: the path has finished
        return f"I am path {me}." + LONG

    return reply


def run(router="hybrid", peers=2, paths=4, turns=2, model=None, recorder=None, **kwargs):
    model = model or ScriptedBackend(script())
    ctx = RunContext(model, params=GenerationParams(max_new_tokens=64), recorder=recorder or ListRecorder())
    return leap(ctx, "What is 2 + 2?", paths=paths, turns=turns, interval=6, peers=peers, router=router,
                summary_tokens=16, **kwargs), model


# -- routing ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("router, expected", [
    ("dispersed", [[4, 3], [4, 3], [1, 4], [1, 2]]),  # farthest first; path 3's tie (1 and 4) keeps path order
    ("clustered", [[2, 3], [1, 3], [2, 1], [3, 2]]),  # nearest first
    ("hybrid", [[4, 2], [4, 1], [1, 2], [1, 3]]),  # one farthest, then one nearest
])
def test_each_router_sends_each_path_the_summaries_its_rule_picks(router, expected):
    result, _ = run(router)
    received = result.received(0)
    assert [received[f"path {i}"] for i in (1, 2, 3, 4)] == [[f"path {j}" for j in row] for row in expected]


def test_peers_minus_one_and_peers_above_p_minus_one_both_share_every_other_path():
    everyone = {f"path {i}": [f"path {j}" for j in (1, 2, 3, 4) if j != i] for i in (1, 2, 3, 4)}
    assert run(peers=-1)[0].received(0) == everyone
    assert run(peers=7, router="dispersed")[0].received(0) == everyone


def test_the_random_router_is_seeded_picks_k_distinct_peers_and_never_the_path_itself():
    first = run("random", seed=3)[0].received(0)
    assert first == run("random", seed=3)[0].received(0)
    assert any(run("random", seed=s)[0].received(0) != first for s in range(4, 10))
    assert all(len(set(got)) == 2 and name not in got for name, got in first.items())


def test_a_path_reads_its_peers_summaries_in_routing_order_and_not_their_segments():
    _, model = run("dispersed", turns=2)
    second_segment_of_path_1 = model.calls[2].prompts[0]
    comment = second_segment_of_path_1.split("<comment>")[-1]
    assert comment.startswith(' Peer 1: "In short, my current conclusions are that BBBBBBBBBB."\n'
                              'Peer 2: "In short, my current conclusions are that AAAAABBBBB." </comment>')
    assert "I am path 4" not in second_segment_of_path_1 and "never shown" not in second_segment_of_path_1


def test_the_recorded_distances_are_normalized_levenshtein_distances_between_summaries():
    result, _ = run("clustered")
    lead = "In short, my current conclusions are that "
    row = next(r for r in result.routing if r["path"] == "path 1")
    assert row["distances"]["path 2"] == round(distance(lead + BODIES[1] + ".", lead + BODIES[2] + "."), 4)
    assert row["distances"]["path 2"] == round(2 / len(lead + BODIES[1] + "."), 4)
    assert (levenshtein("kitten", "sitting"), distance("", "")) == (3, 0.0)


# -- turns, batching, finishing ------------------------------------------------------------------------------------

def test_each_turn_is_one_batched_call_for_segments_and_one_for_summaries():
    result, model = run(turns=3)
    assert [len(c.prompts) for c in model.calls] == [4] * 6  # seg, sum, seg, sum, seg, final answer
    assert [c.params.max_new_tokens for c in model.calls] == [6, 16, 6, 16, 6, 16]
    assert "</summarize>" in model.calls[1].params.stop and "</summarize>" not in model.calls[0].params.stop
    assert result.stop_reason == "max_turns" and result.rounds == 3


def test_a_backend_that_cannot_batch_gets_one_call_per_path():
    class OneByOne(ScriptedBackend):
        can_batch = False

    _, model = run(turns=2, model=OneByOne(script()))
    assert [len(c.prompts) for c in model.calls] == [1] * 16  # 4 paths x (segment, summary, segment, answer)


def test_a_path_that_finishes_early_stops_sharing_and_keeps_its_answer():
    result, model = run("dispersed", turns=2, model=ScriptedBackend(script(finish_early=(4,), answers={4: 7})))
    assert [len(c.prompts) for c in model.calls] == [4, 3, 3, 3]
    assert all("path 4" not in got for got in result.received(0).values()) and "path 4" not in result.received(0)
    assert (result.path_answers, result.answer) == ({"path 1": "4", "path 2": "4", "path 3": "4", "path 4": "7"}, "4")


def test_when_every_path_finishes_no_summary_or_final_call_is_made():
    result, model = run(turns=3, model=ScriptedBackend(script(finish_early=(1, 2, 3, 4))))
    assert [len(c.prompts) for c in model.calls] == [4]
    assert (result.stop_reason, result.answer, result.votes) == ("all_finished", "4", {"4": 4})


def test_the_answer_is_the_majority_of_the_paths_final_answers_first_path_on_a_tie():
    result, _ = run(model=ScriptedBackend(script(answers={1: 5, 2: 6, 3: 6, 4: 5})))
    assert (result.answer, result.votes) == ("5", {"5": 2, "6": 2})


def test_a_segment_is_cut_at_its_last_paragraph_break_and_the_rest_is_dropped():
    assert cut_at_paragraph("One.\n\nTwo.\n\nThree, unfini") == ("One.\n\nTwo.\n\n", "Three, unfini")
    assert cut_at_paragraph("no break at all") == ("no break at all\n\n", "")

    def reply(prompt, index):
        return " 1 + 1 = 2." if prompt.endswith("that") else "4}" if prompt.endswith("{") else \
            "First idea.\n\nSecond idea that runs on and on and on"
    result, model = run(paths=2, model=ScriptedBackend(reply))
    first = result.steps_of("segment", "path 1")[0]
    assert (first.text, first.attributes["dropped"]) == ("First idea.\n\n", "Second idea that runs")
    assert model.calls[1].prompts[0].endswith("First idea.\n\nWait, let me quickly recap what I've concluded so far. "
                                              "<summarize> In short, my current conclusions are that")


# -- the trace -----------------------------------------------------------------------------------------------------

def test_the_trace_keeps_segments_summaries_and_who_received_what():
    recorder = ListRecorder()
    result, _ = run("hybrid", turns=2, recorder=recorder)
    assert recorder.steps == result.steps
    assert [(s.kind, s.round, s.agent) for s in result.steps] == (
        [("segment", 0, f"path {i}") for i in (1, 2, 3, 4)] + [("summary", 0, f"path {i}") for i in (1, 2, 3, 4)]
        + [("segment", 1, f"path {i}") for i in (1, 2, 3, 4)] + [("final", 1, f"path {i}") for i in (1, 2, 3, 4)])
    summary, segment = result.steps[4], result.steps[8]
    assert (summary.text, summary.parent) == ("In short, my current conclusions are that AAAAAAAAAA.", 0)
    assert segment.parent == 4 and segment.attributes["router"] == "hybrid"
    assert segment.attributes["received_from"] == ["path 4", "path 2"]
    assert segment.attributes["received_steps"] == [7, 5]  # the summary steps of paths 4 and 2
    assert [result.steps[i].agent for i in segment.attributes["received_steps"]] == ["path 4", "path 2"]
    assert set(segment.attributes["distances"]) == {"path 2", "path 3", "path 4"}
    assert [s.name for s in recorder.scores] == ["agrees_with_majority"] * 4
    assert result.steps[12].attributes["parsed_answer"] == "4"


def test_every_token_reaches_on_turn_listeners_with_the_rows_paths():
    turns = []
    model = ScriptedBackend(script())
    ctx = RunContext(model, params=GenerationParams(max_new_tokens=64), on_turn=turns.append)
    leap(ctx, "2 + 2?", paths=3, turns=2, interval=6, summary_tokens=16)
    assert [(t.kind, t.agents) for t in turns] == [(k, ("path 1", "path 2", "path 3"))
                                                   for k in ("segment", "summary", "segment", "final")]


def test_stopping_during_the_summaries_keeps_the_partial_result():
    def reply(prompt, index):
        return ScriptedBackend.interrupt("half a") if prompt.endswith("that") else "I am path 1." + LONG

    with pytest.raises(KeyboardInterrupt) as stop:
        run(paths=2, model=ScriptedBackend(reply))
    partial = stop.value.partial
    assert partial.stop_reason == "interrupted"
    assert [(s.kind, bool(s.attributes.get("interrupted"))) for s in partial.steps][-1] == ("summary", True)


def test_replaced_templates_are_used_and_checked():
    _, model = run(paths=2, templates={"summary": "To sum up,", "recap": "Recap."})
    assert model.calls[1].prompts[0].endswith("Recap. <summarize> To sum up,")
    with pytest.raises(OptionError, match=r"template 'peer' for leap must contain the placeholder \{summary\}"):
        run(paths=2, templates={"peer": "Peer {number}"})


# -- presets, bad input, registration -----------------------------------------------------------------------------

def test_the_reference_preset_holds_the_papers_sizes_and_fits_its_budget():
    assert LEAP_REFERENCE == {"paths": 4, "turns": 5, "interval": 2048, "peers": 2, "router": "dispersed",
                              "summary_tokens": 256}
    assert (LEAP_REFERENCE_PARAMS.temperature, LEAP_REFERENCE_PARAMS.top_p) == (0.6, 0.95)
    ctx = RunContext(ScriptedBackend(script(finish_early=(1, 2, 3, 4))), params=LEAP_REFERENCE_PARAMS)
    assert leap(ctx, "2 + 2?", **LEAP_REFERENCE).answer == "4"
    assert ctx.backend.calls[0].params.max_new_tokens == 2048


@pytest.mark.parametrize("options, message", [
    ({"paths": 1}, r"LeaP needs at least two paths \(got paths=1\): a lone path has no peers to learn from; "
                   r"use paths=2 or more"),
    ({"interval": 65}, r"`interval` \(65 tokens\) is larger than the token budget max_new_tokens=64; lower "
                       r"`interval` or raise the budget \(max_tokens, or params.with_\(max_new_tokens=65\)\)"),
    ({"summary_tokens": 100}, r"`summary_tokens` \(100 tokens\) is larger than the token budget max_new_tokens=64"),
    ({"peers": 0}, r"`peers` must be -1 \(every other path\) or a positive integer, got 0"),
    ({"peers": -2}, r"`peers` must be -1 \(every other path\) or a positive integer, got -2"),
    ({"router": "nearest"}, r"`router` must be one of \['dispersed', 'clustered', 'hybrid', 'random'\], "
                            r"got 'nearest'"),
    ({"turns": 0}, r"`turns` must be a positive integer, got 0"),
])
def test_bad_options_are_refused_before_any_call(options, message):
    model = ScriptedBackend([])
    ctx = RunContext(model, params=GenerationParams(max_new_tokens=64))
    with pytest.raises(OptionError, match=f"^{message}"):
        leap(ctx, "q", **{"interval": 8, "summary_tokens": 8, **options})
    assert model.calls == []


def test_leap_is_registered_with_its_options_checks_and_call_estimate():
    spec = get_strategy("leap")
    assert (spec.view, spec.estimate(spec.options_from({}))[0]) == ("debate", 24)
    with pytest.raises(OptionError, match="LeaP needs at least two paths"):
        spec.options_from({"paths": 1})
    result = spec.run(RunContext(ScriptedBackend(script()), params=GenerationParams(max_new_tokens=64)), "2 + 2?",
                      spec.options_from({"paths": 2, "turns": 1, "interval": 6}))
    assert (result.answer, len(result.steps_of("final"))) == ("4", 2)


# -- the real model -------------------------------------------------------------------------------------------------

@pytest.mark.model
def test_leap_runs_end_to_end_on_the_embedded_model(smol_backend):
    turns = []
    params = GenerationParams(max_new_tokens=12, temperature=0.6, top_p=0.95, seed=0)
    ctx = RunContext(smol_backend, params=params, on_turn=turns.append)
    result = leap(ctx, "What is 3 + 4?", paths=2, turns=2, interval=12, summary_tokens=6)
    assert all(t.agents == ("path 1", "path 2") or len(t.agents) < 2 for t in turns)  # a turn is one batched call
    assert {s.kind for s in result.steps} <= {"segment", "summary", "final"}
    assert all(s.generation.tokens and s.generation.completion_tokens <= 12 for s in result.steps)
    assert result.steps[0].generation.prompt.startswith("<|im_start|>")  # the chat template heads every path
    if result.steps_of("summary"):
        assert result.received(0) == {"path 1": ["path 2"], "path 2": ["path 1"]}
    assert set(result.path_answers) == {"path 1", "path 2"} and result.stop_reason in ("max_turns", "all_finished")
