"""Tree searches on a scripted backend: structure, batching, node reports, rebuild, errors, display."""

from __future__ import annotations

import json

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError
from reflectnb.strategies import RunContext
from reflectnb.strategies.tree import (Task, TreeResult, VerifierError, best_of_n, mcts, nodes_from_rows,
                                       self_consistency, tot_bfs, tot_dfs, tree_search)
from reflectnb.trace import ListRecorder

# A toy tree: state (steps so far) -> next steps; values by last step name.
TREE = {"": ["a", "b", "c"], "a\n": ["a1", "a2"], "b\n": ["b1", "Answer: B"], "c\n": ["c1"],
        "a\na1\n": ["a1x"], "a\na2\n": ["Answer: A2"], "b\nb1\n": ["b1x"]}
WORDS = {"a": "sure", "b": "likely", "c": "impossible", "a1": "impossible", "a2": "sure",
         "b1": "likely", "Answer: B": "sure", "c1": "impossible", "Answer: A2": "sure"}


class Toy(Task):
    def __init__(self):
        super().__init__("toy question", steps=3, chat=False)

    def propose_prompt(self, state):
        return "PROPOSE:" + state

    def sample_prompt(self, state):
        return "SAMPLE:" + state

    def value_prompt(self, state):
        return "VALUE:" + state

    def vote_prompt(self, states):
        return "VOTE:" + "|".join(states)


def toy_backend(words=WORDS, vote="The best choice is 2"):
    served: dict[str, int] = {}

    def script(prompt: str, index: int) -> str:
        kind, _, state = prompt.partition(":")
        if kind == "PROPOSE":
            return "\n".join(TREE.get(state, []))
        if kind == "SAMPLE":
            steps = TREE.get(state, [])
            served[state] = served.get(state, -1) + 1
            return steps[served[state] % len(steps)] if steps else ""
        if kind == "VOTE":
            return vote
        last = state.strip().splitlines()[-1]
        return f"thinking\n{words.get(last, 'likely')}"

    return ScriptedBackend(script)


def step_of(result, text):
    return next(n for n in result.nodes if n.text == text)


# -- ToT BFS -----------------------------------------------------------------------------------------------

def test_a_search_samples_at_its_own_temperature_unless_given_the_contexts_params():
    ctx = RunContext(toy_backend(), params=GenerationParams(temperature=0, max_new_tokens=40))
    own = tot_bfs(ctx, Toy(), depth=1, beam=1, n_evaluate=1)
    given = tot_bfs(ctx, Toy(), depth=1, beam=1, n_evaluate=1, params=ctx.params)
    assert (own.options["params"]["temperature"], own.options["params"]["max_new_tokens"]) == (0.7, 96)
    assert (given.options["params"]["temperature"], given.options["params"]["max_new_tokens"]) == (0, 40)


def test_a_stop_request_ends_a_search_at_the_next_token_with_the_tree_so_far():
    ctx = RunContext(toy_backend(), recorder=ListRecorder())
    ctx.on_token = lambda event: ctx.stop.request() if ctx.recorder.nodes and len(ctx.recorder.tokens) > 8 else None
    with pytest.raises(KeyboardInterrupt) as info:
        tot_bfs(ctx, Toy(), depth=2, beam=2, n_evaluate=1)
    partial = info.value.partial
    assert partial.stop_reason == "interrupted" and len(partial.nodes) >= 1 and len(ctx.recorder.tokens) == 9


def test_bfs_generates_each_layer_in_one_call_and_evaluates_it_in_one_call():
    model = toy_backend()
    result = tot_bfs(model, Toy(), depth=2, beam=2, n_evaluate=3)
    assert [len(call.prompts) for call in model.calls] == [1, 3 * 3, 2, 4 * 3]
    assert result.generate_calls == 4 and result.prompts_sent == 1 + 9 + 2 + 12
    assert [c.prompts[0] for c in model.calls[::2]] == ["PROPOSE:", "PROPOSE:a\n"]


def test_bfs_keeps_the_best_beam_and_answers_from_the_last_layer():
    result = tot_bfs(toy_backend(), Toy(), depth=2, beam=2, n_evaluate=3)
    assert step_of(result, "a").value == 60 and step_of(result, "b").value == 3
    assert step_of(result, "c").value == pytest.approx(0.003)
    assert [step_of(result, s).status for s in ("a", "b", "c")] == ["selected", "selected", "pruned"]
    assert result.stop_reason == "depth"  # layer 2: a2 and "Answer: B" tie at 60; the first wins
    assert [result.nodes[i].text for i in result.best_path] == ["toy question", "a", "a2"]
    assert step_of(result, "a2").status == "terminal" and step_of(result, "a1").status == "pruned"


def test_bfs_does_not_expand_final_states_again():
    model = toy_backend()
    result = tot_bfs(model, Toy(), depth=4, beam=2, n_evaluate=1)
    assert "PROPOSE:b\nAnswer: B\n" not in model.prompts and "PROPOSE:a\na2\nAnswer: A2\n" not in model.prompts
    assert result.stop_reason == "all_final" and result.answer == "B"


def test_duplicate_states_in_a_layer_get_zero_and_value_prompts_are_cached():
    tree = {"": ["a", "a", "b"]}

    def script(prompt, index):
        kind, _, state = prompt.partition(":")
        return "\n".join(tree.get(state, ["z"])) if kind == "PROPOSE" else "sure"

    model = ScriptedBackend(script)
    result = tot_bfs(model, Toy(), depth=1, beam=3, n_evaluate=2)
    a1, a2 = [n for n in result.nodes if n.text == "a"]
    assert (a1.value, a2.value) == (40, 0.0) and a2.attributes["duplicate"] is True
    assert len(model.calls[1].prompts) == 2 * 2  # "a" and "b", two samples each


def test_greedy_value_evaluation_asks_once_per_state_and_counts_it_n_times():
    model = toy_backend()
    result = tot_bfs(model, Toy(), depth=1, beam=1, n_evaluate=3, value_params=GenerationParams(temperature=0))
    assert len(model.calls[1].prompts) == 3
    assert step_of(result, "a").value == 60


def test_sample_generation_sends_branch_copies_of_every_prompt_in_one_call():
    model = toy_backend()
    result = tot_bfs(model, Toy(), depth=1, beam=2, branch=3, generate="sample", n_evaluate=1)
    assert model.calls[0].prompts == ["SAMPLE:"] * 3
    assert sorted(n.text for n in result.children(0)) == ["a", "b", "c"]


def test_vote_evaluation_is_one_call_with_n_evaluate_votes():
    model = toy_backend(vote="The best choice is 3")
    result = tot_bfs(model, Toy(), depth=1, beam=1, evaluate="vote", n_evaluate=4)
    assert model.calls[1].prompts == ["VOTE:a\n|b\n|c\n"] * 4
    assert step_of(result, "c").value == 4 and result.answer == "c"


def test_bfs_with_a_process_reward_function_takes_node_values_from_it():
    seen = []

    def prm(question, partial):
        seen.append((question, partial))
        return {"a\n": 0.2, "b\n": 0.9, "c\n": 0.5}.get(partial, 0.1 * partial.count("\n"))

    model = toy_backend()
    result = tot_bfs(model, Toy(), depth=2, beam=1, prm=prm)
    assert [step_of(result, s).value for s in ("a", "b", "c")] == [0.2, 0.9, 0.5]
    assert step_of(result, "b1").value == pytest.approx(0.2) and result.options["evaluate"] == "prm"
    assert seen[:3] == [("toy question", "a\n"), ("toy question", "b\n"), ("toy question", "c\n")]
    assert all(p.startswith("PROPOSE:") for c in model.calls for p in c.prompts)  # no value prompts
    assert [result.nodes[i].text for i in result.best_path] == ["toy question", "b", "b1"]


def test_sample_selection_with_all_zero_values_still_fills_the_beam():
    result = tot_bfs(toy_backend(), Toy(), depth=1, beam=2, select="sample", verifier=lambda s: 0)
    assert sum(n.status == "terminal" for n in result.nodes) == 2


# -- node reports and rebuild ------------------------------------------------------------------------------

def test_every_node_is_reported_and_re_reported_when_it_changes():
    recorder = ListRecorder()
    result = tot_bfs(RunContext(toy_backend(), recorder=recorder), Toy(), depth=2, beam=2, n_evaluate=1)
    reported = {n.node_id for n in recorder.nodes}
    assert reported == set(range(len(result.nodes)))
    a_reports = [n for n in recorder.nodes if n.text == "a"]
    assert [(r.value, r.status) for r in a_reports][0] == (None, "expanded")
    assert (a_reports[-1].value, a_reports[-1].status, a_reports[-1].visits) == (20, "selected", 1)
    first = recorder.nodes[0]
    assert (first.node_id, first.parent, first.depth, first.text) == (0, None, 0, "toy question")


def test_node_reports_carry_parent_depth_iteration_and_prompt():
    result = tot_bfs(toy_backend(), Toy(), depth=2, beam=2, n_evaluate=1)
    a1 = step_of(result, "a1")
    assert (result.nodes[a1.parent].text, a1.depth, a1.iteration, a1.prompt) == ("a", 2, 2, "PROPOSE:a\n")
    assert all(n.parent is None or n.parent < n.node_id for n in result.nodes)


def test_the_tree_rebuilt_from_reported_rows_equals_the_tree_in_memory():
    recorder = ListRecorder()
    result = mcts(RunContext(toy_backend(), recorder=recorder), Toy(), iterations=6, branch=2, n_evaluate=1)
    rows = [n.to_dict() for n in recorder.nodes]
    for row in rows:  # as the store will hand them back: attributes as JSON text, extra columns
        row["attributes"], row["run_id"] = json.dumps(row["attributes"]), "r1"
    rebuilt = TreeResult.rebuild_from_rows(rows, method="mcts")
    assert rebuilt.nodes == result.nodes
    assert rebuilt.best_path == result.best_path and rebuilt.answer == result.answer
    assert nodes_from_rows(recorder.nodes) == result.nodes


def test_result_exports_one_row_per_node():
    result = tot_bfs(toy_backend(), Toy(), depth=2, beam=2, n_evaluate=1)
    df = result.to_df()
    assert len(df) == len(result.nodes) and {"node_id", "parent", "value", "status", "best"} <= set(df.columns)
    assert df["best"].sum() == len(result.best_path)
    assert json.dumps(result.to_dict())


def test_the_html_view_escapes_model_text_and_draws_the_tree():
    tree = {"": ["<script>alert(1)</script>", "<b>bold</b>"]}

    def script(prompt, index):
        kind, _, state = prompt.partition(":")
        return "\n".join(tree.get(state, [])) if kind == "PROPOSE" else "sure"

    page = tot_bfs(ScriptedBackend(script), Toy(), depth=1, beam=1, n_evaluate=1)._repr_html_()
    assert "<script>" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<circle") == 3 and "Best path" in page


# -- ToT DFS -----------------------------------------------------------------------------------------------

def test_dfs_prunes_backtracks_and_stops_at_a_verified_answer():
    verify = lambda state: 1.0 if "Answer: B" in state else (0.0 if "c" in state or "1" in state else 0.7)
    recorder = ListRecorder()
    result = tot_dfs(RunContext(toy_backend(), recorder=recorder), Toy(), depth=3, verifier=verify)
    order = list(dict.fromkeys(r.text for r in recorder.nodes if r.visits == 1))
    assert order == ["toy question", "a", "a2", "Answer: A2", "b", "Answer: B"]  # backtracks after A2 (0.7)
    assert step_of(result, "a1").status == "pruned" and step_of(result, "c").status == "expanded"  # never reached
    assert result.stop_reason == "solved" and result.answer == "B"


def test_dfs_without_backtracking_follows_only_the_first_child():
    verify = lambda state: 1.0 if "Answer: B" in state else 0.7
    result = tot_dfs(toy_backend(), Toy(), depth=2, verifier=verify, backtrack=False, prune=False)
    assert [n.text for n in result.nodes if n.visits] == ["toy question", "a", "a1"]
    assert result.stop_reason == "done" and result.answer != "B"


def test_dfs_stops_at_the_visit_limit():
    result = tot_dfs(toy_backend(), Toy(), depth=3, max_visits=3, prune=False, n_evaluate=1)
    assert result.stop_reason == "max_visits" and sum(n.visits for n in result.nodes) == 3


# -- MCTS --------------------------------------------------------------------------------------------------

def test_mcts_expands_in_one_call_values_in_one_call_and_rolls_out_step_by_step():
    model = toy_backend()
    mcts(model, Toy(), iterations=1, branch=3, roll_forward_steps=2, roll_branch=2, n_evaluate=1, seed=0)
    sizes = [len(c.prompts) for c in model.calls]
    assert sizes[:2] == [3, 3]  # three samples of the first step, their three value prompts
    assert sizes[2] == 2       # a rollout step: roll_branch samples in one call


def test_mcts_stops_when_a_node_reaches_the_end_gate():
    result = mcts(toy_backend(), Toy(), iterations=20, branch=3, prm=lambda q, s: 1.0 if "Answer" in s else 0.5)
    assert result.stop_reason == "solved" and result.answer in ("A2", "B")
    assert result.best_node.value >= 0.9 and result.best_node.status == "terminal"


def test_mcts_backups_are_visit_weighted_means_and_visits_add_up():
    recorder = ListRecorder()
    result = mcts(RunContext(toy_backend(), recorder=recorder), Toy(), iterations=8, branch=2, end_gate=1.0,
                  n_evaluate=1, prm=lambda q, s: 0.3 + 0.1 * s.count("\n"))
    assert result.stop_reason == "iterations" and result.nodes[0].visits == 8
    for node in result.nodes:
        kids = result.children(node.node_id)
        if node.attributes.get("fully_expanded") and sum(k.visits for k in kids):
            expected = sum(k.value * k.visits for k in kids) / sum(k.visits for k in kids)
            assert node.value == pytest.approx(expected)
    rolled = [n for n in result.nodes if n.attributes.get("rollouts")]
    assert rolled and all(r["max_value"] == max(r["values"], default=0.0) for n in rolled
                          for r in n.attributes["rollouts"])


def test_mcts_rollout_update_uses_alpha():
    result = mcts(toy_backend(), Toy(), iterations=1, branch=1, end_gate=1.0, alpha=0.5, roll_forward_steps=1,
                  prm=lambda q, s: {"a\n": 0.4, "a\na1\n": 0.9}.get(s, 0.0))
    child = step_of(result, "a")
    assert child.value == pytest.approx(0.65) and child.visits == 1  # the backup starts at the expanded root
    assert result.nodes[0].value == pytest.approx(0.65)


def test_mcts_falls_back_to_the_best_value_node():
    result = mcts(toy_backend(), Toy(), iterations=3, branch=3, end_gate=1.0, roll_forward_steps=0,
                  prm=lambda q, s: {"a\n": 0.2, "b\n": 0.8, "c\n": 0.5}.get(s, 0.1))
    assert result.stop_reason == "iterations" and result.best_node.text == "b"


def test_a_failing_value_during_a_rollout_is_recorded_and_counts_as_zero():
    def prm(question, partial):
        if partial.count("\n") > 1:  # rollout states are two steps deep here
            raise ValueError("no value for deep states")
        return 0.4

    result = mcts(toy_backend(), Toy(), iterations=3, branch=1, end_gate=1.0, roll_forward_steps=1, prm=prm)
    child = step_of(result, "a")
    rollout = child.attributes["rollouts"][0]
    assert rollout["value_error"] == "raised ValueError: no value for deep states"
    assert rollout["values"] == [0.0] and rollout["max_value"] == 0.0
    assert result.stop_reason == "iterations" and result.nodes[0].visits == 3  # the search went on
    with pytest.raises(VerifierError, match=r"the prm function raised ValueError: no value for deep states "
                                            r"on a rollout from node 1"):
        mcts(toy_backend(), Toy(), iterations=3, branch=1, roll_forward_steps=1, prm=prm, on_value_error="raise")


def test_mcts_random_ties_are_reproducible_with_a_seed():
    runs = [mcts(toy_backend(), Toy(), iterations=5, branch=3, seed=11, prm=lambda q, s: 0.5) for _ in range(2)]
    assert [n.text for n in runs[0].nodes] == [n.text for n in runs[1].nodes]


# -- one-level trees ---------------------------------------------------------------------------------------

def test_best_of_n_is_a_one_level_tree_picking_the_best_verified_solution():
    replies = iter(["x\nThe answer is 3", "y\nThe answer is 4", "z\nThe answer is 5"])
    model = ScriptedBackend(lambda p, i: next(replies))
    result = best_of_n(model, "what is 2 + 2?", n=3, verifier=lambda s: "4" in s)
    assert len(model.calls) == 1 and len(model.calls[0].prompts) == 3
    assert result.answer == "4" and [n.depth for n in result.nodes] == [0, 1, 1, 1]
    assert [n.status for n in result.nodes[1:]] == ["pruned", "terminal", "pruned"]


def test_self_consistency_takes_the_majority_answer():
    replies = iter(["The answer is 5", "The answer is 7", "The answer is 5.0"])
    result = self_consistency(ScriptedBackend(lambda p, i: next(replies)), "q?", n=3)
    assert result.answer == "5" and result.generate_calls == 1
    assert [round(n.value, 3) for n in result.nodes[1:]] == [0.667, 0.333, 0.667]


def test_tree_search_dispatches_by_method_name():
    assert tree_search(toy_backend(), Toy(), "bfs", depth=1, beam=1, n_evaluate=1).method == "bfs"
    with pytest.raises(OptionError, match=r"`method` must be one of .*'mcts'.*got 'astar'"):
        tree_search(toy_backend(), Toy(), "astar")


# -- bad input and failing verifiers ----------------------------------------------------------------------

@pytest.mark.parametrize("search, options, message", [
    (tot_bfs, {"branch": 0}, r"`branch` must be a positive integer, got 0"),
    (tot_bfs, {"depth": 0}, r"`depth` must be a positive integer, got 0"),
    (tot_dfs, {"depth": -2}, r"`depth` must be a positive integer, got -2"),
    (mcts, {"branch": 0}, r"`branch` must be a positive integer, got 0"),
    (mcts, {"end_gate": 1.5}, r"`end_gate` must be a number in \[0.0, 1.0\], got 1.5"),
    (tot_bfs, {"generate": "dream"}, r"`generate` must be one of \['propose', 'sample'\], got 'dream'"),
    (tot_bfs, {"verifier": len, "prm": len}, r"either `verifier`.*or `prm`"),
    (tot_bfs, {"generate": "sample", "params": GenerationParams(temperature=0)}, r"identical children"),
    (best_of_n, {"n": 0}, r"`n` must be a positive integer, got 0"),
    (mcts, {"iterations": 0}, r"`iterations` must be a positive integer, got 0"),
    (mcts, {"depth": 0}, r"`depth` must be a positive integer, got 0"),
    (tot_bfs, {"beam": 0}, r"`beam` must be a positive integer, got 0"),
    (tot_dfs, {"prune_below": "high"}, r"`prune_below` must be a finite number, got 'high'"),
    (tot_dfs, {"prune_below": float("nan")}, r"`prune_below` must be a finite number, got nan"),
    (tot_dfs, {"solved_at": "0.9"}, r"`solved_at` must be a finite number, got '0.9'"),
    (tot_dfs, {"solved_at": float("inf")}, r"`solved_at` must be a finite number, got inf"),
])
def test_bad_options_are_refused_before_any_model_call(search, options, message):
    model = toy_backend()
    with pytest.raises(OptionError, match=message):
        search(model, Toy(), **options)
    assert model.calls == []


def test_a_search_that_would_explode_is_refused_with_its_size():
    with pytest.raises(OptionError, match=r"this search would create about 2,441,406 nodes \(branch 5, depth 9\); "
                                          r"raise max_nodes or lower branch/depth"):
        tot_dfs(toy_backend(), Toy(), branch=5, depth=9, tries=5, max_visits=None)


def test_a_failing_verifier_is_recorded_on_the_node_and_the_search_goes_on():
    def verify(state):
        if state.startswith("b"):
            raise ValueError("cannot parse")
        return "maybe" if state.startswith("c") else 1

    result = tot_bfs(toy_backend(), Toy(), depth=1, beam=3, verifier=verify)
    b, c = step_of(result, "b"), step_of(result, "c")
    assert b.value is None and b.attributes["value_error"] == "raised ValueError: cannot parse"
    assert "returned str 'maybe', expected a bool or a number" in c.attributes["value_error"]
    assert step_of(result, "a").value == 1.0 and result.answer == "a"


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_a_verifier_returning_a_non_finite_number_is_recorded_like_a_failure(bad):
    result = tot_bfs(toy_backend(), Toy(), depth=1, beam=3, verifier=lambda s: bad if s.startswith("b") else 0.5)
    b = step_of(result, "b")
    assert b.value is None and b.attributes["value_error"].endswith("expected a bool or a finite number")
    assert step_of(result, "a").value == 0.5 and result.answer in ("a", "c")


def test_a_failing_verifier_can_stop_the_search_with_a_clear_message():
    recorder = ListRecorder()
    with pytest.raises(VerifierError, match=r"the verifier function raised ZeroDivisionError: division by zero "
                                            r"on node 1 .*on_value_error='record'"):
        tot_bfs(RunContext(toy_backend(), recorder=recorder), Toy(), depth=2, verifier=lambda s: 1 / 0,
                on_value_error="raise")
    assert recorder.nodes[-1].attributes["value_error"].startswith("raised ZeroDivisionError")


def test_an_interrupted_search_keeps_its_partial_tree():
    calls = {"n": 0}

    def script(prompt, index):
        calls["n"] += 1
        if prompt.startswith("VALUE"):
            return ScriptedBackend.interrupt("thinking")
        return "\n".join(TREE.get(prompt.partition(":")[2], []))

    with pytest.raises(KeyboardInterrupt) as info:
        tot_bfs(ScriptedBackend(script), Toy(), depth=2, n_evaluate=1)
    partial = info.value.partial
    assert partial.stop_reason == "interrupted" and [n.text for n in partial.nodes] == ["toy question", "a", "b", "c"]
