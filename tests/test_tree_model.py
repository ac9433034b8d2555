"""Tree searches end to end on the real embedded model (tiny budgets): structure, not accuracy."""

from __future__ import annotations

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.strategies import RunContext
from reflectnb.strategies.tree import Task, TreeResult, mcts, tot_bfs
from reflectnb.trace import ListRecorder

pytestmark = pytest.mark.model

GEN = GenerationParams(max_new_tokens=16, temperature=0.7, seed=0)
VALUE = GenerationParams(max_new_tokens=6, temperature=0.7, seed=0)


def assert_well_formed(result: TreeResult, recorder: ListRecorder) -> None:
    ids = [n.node_id for n in result.nodes]
    assert ids == list(range(len(ids))) and result.nodes[0].parent is None
    for node in result.nodes[1:]:
        parent = result.nodes[node.parent]
        assert parent.node_id < node.node_id and node.depth == parent.depth + 1
        assert node.text and node.prompt and node.value is not None
        assert node.status in ("expanded", "pruned", "selected", "terminal")
    assert TreeResult.rebuild_from_rows([n.to_dict() for n in recorder.nodes]).nodes == result.nodes
    assert result.best_path[0] == 0 and result.nodes[result.best_path[-1]].attributes["best"]


def test_tot_bfs_runs_on_the_embedded_model(smol_backend):
    recorder = ListRecorder()
    result = tot_bfs(RunContext(smol_backend, recorder=recorder), Task("What is 12 + 7?"), depth=2, branch=2, beam=2,
                     generate="sample", n_evaluate=1, params=GEN, value_params=VALUE)
    assert_well_formed(result, recorder)
    layer1 = result.children(0)
    assert 1 <= len(layer1) <= 2 and all(n.iteration == 1 for n in layer1)
    assert all(result.nodes[n.parent].status in ("selected", "terminal") for n in result.nodes if n.depth == 2)
    assert result.stop_reason in ("depth", "all_final") and 2 <= result.generate_calls <= 4


def test_mcts_runs_on_the_embedded_model(smol_backend):
    recorder = ListRecorder()
    result = mcts(RunContext(smol_backend, recorder=recorder), Task("What is 12 + 7?"), iterations=2, branch=2,
                  depth=2, roll_forward_steps=1, n_evaluate=1, params=GEN, value_params=VALUE)
    assert_well_formed(result, recorder)
    assert result.nodes[0].visits == 2 and 1 <= len(result.children(0)) <= 2
    assert all(0.0 <= n.value <= 1.0 for n in result.nodes)
    assert result.stop_reason in ("iterations", "solved")
