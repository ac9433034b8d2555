"""Merging the generate calls of several items into one batch (real threads, scripted model)."""

from __future__ import annotations

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import BackendError
from reflectnb.evaluate.batching import run_batched
from reflectnb.strategies import reflect


def echo(prompt: str, index: int) -> str:
    return f"reply to {prompt}"


def test_one_call_per_item_becomes_one_call_for_all_items_in_item_order():
    model = ScriptedBackend(echo)
    results, calls = run_batched(model, lambda b, i: b.generate_one(f"item {i}").text, 8)
    assert results == [f"reply to item {i}" for i in range(8)]
    assert calls == 1 and model.calls[0].prompts == [f"item {i}" for i in range(8)]


def test_self_refine_loops_advance_in_lock_step():
    model = ScriptedBackend(lambda prompt, i: "STOP" if "feedback" in prompt else "The answer is 4")
    results, calls = run_batched(model, lambda b, i: reflect(b, f"task {i}", rounds=2), 4)
    assert [r.stop_reason for r in results] == ["feedback_stop"] * 4
    assert [len(c.prompts) for c in model.calls] == [4, 4] and calls == 2  # all drafts, then all feedback


def test_loops_that_finish_early_do_not_hold_back_the_others():
    def reply(prompt: str, index: int) -> str:
        if "feedback" not in prompt:
            return "The answer is 4"
        return "STOP" if "task 0" in prompt else "Try again."

    model = ScriptedBackend(reply)
    results, _ = run_batched(model, lambda b, i: reflect(b, f"task {i}", rounds=2), 3)
    assert [r.rounds for r in results] == [1, 2, 2]
    assert [len(c.prompts) for c in model.calls] == [3, 3, 2, 2, 2]


def test_rows_with_different_params_go_in_separate_calls():
    model = ScriptedBackend(echo)
    fast, slow = GenerationParams(max_new_tokens=4), GenerationParams(max_new_tokens=8)
    results, calls = run_batched(model, lambda b, i: b.generate_one(f"p{i}", fast if i % 2 else slow).text, 4)
    assert calls == 2 and sorted(len(c.prompts) for c in model.calls) == [2, 2]
    assert results == ["reply to p0", "reply to p1", "reply to p2", "reply to p3"]


def test_streamed_tokens_reach_their_own_item_with_its_own_row_numbers():
    model = ScriptedBackend(echo)
    seen: dict[int, list[tuple[int, str]]] = {0: [], 1: [], 2: []}

    def work(b, i):
        return b.generate([f"a{i}", f"b{i}"], on_token=lambda e: seen[i].append((e.row, e.text.strip())))

    run_batched(model, work, 3)
    for i in range(3):
        assert set(seen[i]) == {(0, "reply"), (0, "to"), (0, f"a{i}"), (1, "reply"), (1, "to"), (1, f"b{i}")}
        assert len(seen[i]) == 6


def test_a_backend_error_goes_to_the_items_of_that_call_only():
    model = ScriptedBackend(["ok 0", "ok 1"])  # runs out on the second call
    results, _ = run_batched(model, lambda b, i: [b.generate_one(f"x{i}").text, b.generate_one(f"y{i}").text], 2)
    assert all(isinstance(r, BackendError) for r in results)
    assert "ran out of responses" in str(results[0])


def test_an_item_that_raises_does_not_stop_the_others():
    model = ScriptedBackend(echo)

    def work(b, i):
        if i == 1:
            raise ValueError("bad item")
        return b.generate_one(f"x{i}").text

    results, _ = run_batched(model, work, 3)
    assert results[0] == "reply to x0" and isinstance(results[1], ValueError) and results[2] == "reply to x2"


def test_ctrl_c_during_a_merged_call_interrupts_every_item_and_is_raised():
    finished = []
    model = ScriptedBackend(["The answer is 4", ScriptedBackend.interrupt("The ans"), "The answer is 4"])

    def work(b, i):
        try:
            return reflect(b, f"task {i}", rounds=1)
        except KeyboardInterrupt as exc:
            finished.append(exc.partial.stop_reason)
            raise

    with pytest.raises(KeyboardInterrupt):
        run_batched(model, work, 3)
    assert finished == ["interrupted"] * 3
