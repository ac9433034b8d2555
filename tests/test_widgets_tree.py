"""TreeView: nodes from tree searches, loop steps and the trace store; selection, live growth, stop, fallbacks."""

from __future__ import annotations

import pytest

import reflectnb
from reflectnb.errors import OptionError
from reflectnb.strategies.tree import TreeResult
from reflectnb.trace import Node, Step, TokenEvent
from reflectnb.widgets import TreeView
from reflectnb.widgets.tree_data import nodes_from_steps
from tests.test_tree_search import Toy, toy_backend

HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1"><a href="javascript:window.__xss=1">x</a>'
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def toy_tree(**options):
    return reflectnb.tree(Toy(), model=toy_backend(), method="bfs", trace=False, **options)


def test_a_tree_result_fills_the_columns_the_best_path_and_the_iteration_slider_range():
    result = toy_tree()
    view = reflectnb.view(result)
    cols = view.nodes
    assert cols["id"] == list(range(len(result.nodes)))
    assert cols["parent"] == [n.parent for n in result.nodes]
    assert cols["text"] == [n.text for n in result.nodes]
    assert cols["value"] == [n.value for n in result.nodes]
    assert view.best_path == result.best_path and len(view.best_path) >= 2
    assert max(cols["iteration"]) >= 1 and view.layout == "tree" and view.selected is None


def test_selecting_a_node_sends_its_prompt_and_attributes_only_then():
    result = toy_tree()
    view = TreeView.from_result(result)
    assert "prompt" not in view.nodes
    leaf = result.best_path[-1]
    view.selected = leaf
    node = result.nodes[leaf]
    assert view.details["id"] == leaf and view.details["prompt"] == node.prompt and node.prompt
    assert view.details["text"] == node.text and view.details["attributes"]["best"] is True
    assert view.selected_node == node
    view.selected = None
    assert view.details == {}


@pytest.mark.parametrize("uptime", [0.5, 10_000.0], ids=["booted-half-a-second-ago", "up-for-hours"])
def test_a_live_tree_search_grows_the_view_and_finishes_with_every_node(uptime):
    view = TreeView(title="tree", status="running", throttle=3600, clock=lambda: uptime)
    syncs = []
    view.observe(lambda change: syncs.append(len(change["new"]["id"])), names="nodes")
    result = reflectnb.tree(Toy(), model=toy_backend(), method="bfs", trace=False, live=view)
    assert syncs == [1, len(result.nodes)]  # the root at once; the throttle holds the rest until the end
    assert view.status == "completed" and len(view.nodes["id"]) == len(result.nodes)
    assert view.best_path == result.best_path


def test_the_stop_button_interrupts_the_search_and_the_run_is_recorded_interrupted(tmp_path, monkeypatch):
    monkeypatch.setenv("REFLECTNB_TRACES", str(tmp_path / "t.duckdb"))
    view = TreeView(title="tree", status="running")
    view._on_front_end_message(view, {"type": "stop"}, [])
    with pytest.raises(KeyboardInterrupt, match="stopped from the tree view"):
        reflectnb.tree(Toy(), model=toy_backend(), method="bfs", live=view)
    assert view.stop_requested is True and view.status == "interrupted"
    from reflectnb.store import open_store

    runs = open_store().sql("SELECT kind, status FROM runs")
    assert runs.to_dict("records") == [{"kind": "tree", "status": "interrupted"}]


def test_other_messages_do_not_stop_and_tokens_pass_through():
    view = TreeView()
    view._on_front_end_message(view, {"type": "hello"}, [])
    view.on_token(TokenEvent(row=0, position=0, token_id=1, text="x"))
    assert view.stop_requested is False


def test_a_reflect_run_opens_as_a_chain_with_the_final_answer_on_the_best_path():
    result = reflectnb.reflect("Write a haiku", model="scripted:Draft one|Shorter please|Draft two|STOP", trace=False)
    view = reflectnb.view(result)
    assert view.layout == "chain"
    assert view.nodes["text"] == [s.text for s in result.steps]
    assert view.nodes["parent"] == [s.parent for s in result.steps]
    assert view.nodes["text"][view.best_path[-1]] == "Draft two"


def test_a_du_debate_opens_as_a_layered_graph_with_saw_edges_and_one_lane_per_agent():
    result = reflectnb.debate("2+2?", agents=2, rounds=2, method="du", model="scripted:" + "|".join(["The answer is 4"] * 4), trace=False)
    view = reflectnb.view(result)
    assert view.layout == "layered"
    lanes = view.nodes["lane"]
    agents = [s.agent for s in result.steps]
    assert len(set(lanes)) == len(set(agents)) and all(
        (a == b) == (la == lb) for a, la in zip(agents, lanes) for b, lb in zip(agents, lanes))
    assert view.nodes["depth"] == [s.round for s in result.steps]
    saw = [[seen, i] for i, s in enumerate(result.steps) for seen in s.attributes.get("saw", [])]
    assert saw and view.edges == [e for e in saw if e[0] != result.steps[e[1]].parent]


def test_steps_from_sql_rows_with_json_attributes_and_null_parents_convert():
    nodes, edges, lanes = nodes_from_steps([
        {"kind": "update", "text": "a", "round": 0, "agent": "x", "parent": float("nan"), "attributes": "{}"},
        {"kind": "update", "text": "b", "round": 0, "agent": "y", "parent": None, "attributes": None},
        {"kind": "update", "text": "c", "round": 1, "agent": "x", "parent": 0, "attributes": '{"saw": [1, 99]}'}])
    assert [n.parent for n in nodes] == [None, None, 0] and edges == [[1, 2]] and lanes == {0: 0, 1: 1, 2: 0}
    assert [n.node_id for n in nodes if n.attributes.get("best")] == [0, 2]


def test_a_stored_tree_run_and_a_stored_reflect_run_reopen_from_the_trace_store(tmp_path, monkeypatch):
    monkeypatch.setenv("REFLECTNB_TRACES", str(tmp_path / "t.duckdb"))
    tree = reflectnb.tree(Toy(), model=toy_backend(), method="bfs")
    loop = reflectnb.reflect("Write a haiku", model="scripted:Draft one|Shorter please|Draft two|STOP")
    from_store = reflectnb.view(tree.run_id)
    assert from_store.nodes == TreeView.from_result(tree).nodes and from_store.best_path == tree.best_path
    assert from_store.tree_result().nodes == tree.nodes  # every field, SQL NULLs back as None
    chain = reflectnb.view(loop.run_id)
    assert chain.nodes["text"] == [s.text for s in loop.steps] and chain.layout == "chain"
    with pytest.raises(OptionError, match="no run 'nope'"):
        reflectnb.view("nope")
    with pytest.raises(OptionError, match="takes a result"):
        reflectnb.view(42)


def test_the_static_fallback_escapes_model_text_and_draws_the_svg():
    nodes = [Node(0, None, 0, HOSTILE), Node(1, 0, 1, HOSTILE, value=0.5, prompt=HOSTILE, attributes={"best": True})]
    view = TreeView(nodes, title=HOSTILE)
    bundle = view._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert WIDGET_VIEW in data and "<svg" in data["text/html"]
    html_ = data["text/html"]
    assert "<script" not in html_ and "<img" not in html_ and 'href="javascript' not in html_
    assert "&lt;script&gt;" in html_
    assert "2 nodes" in data["text/plain"]


def test_bad_options_are_refused_with_the_choices():
    with pytest.raises(OptionError, match="tree, chain, layered"):
        TreeView(layout="radial")
    with pytest.raises(OptionError, match="throttle"):
        TreeView(throttle=-1)


def test_ten_thousand_nodes_make_compact_columns():
    nodes = [Node(i, None if i == 0 else (i - 1) // 10, 0, f"step {i}", value=0.5) for i in range(10_000)]
    view = TreeView(nodes)
    assert len(view.nodes["id"]) == 10_000 and set(view.nodes) == {
        "id", "parent", "depth", "value", "visits", "status", "iteration", "text", "lane"}


@pytest.mark.model
def test_a_live_mcts_on_the_embedded_model_fills_the_view(smol_backend):
    view = TreeView(status="running", throttle=0)
    result = reflectnb.tree("What is 12 + 7?", model=smol_backend, method="mcts", iterations=2, branch=2, depth=2,
                            max_tokens=12, seed=0, trace=False, live=view)
    assert len(view.nodes["id"]) == len(result.nodes) >= 2 and view.status == "completed"
    assert view.best_path == result.best_path
