"""Search over reasoning trees: Tree of Thoughts BFS/DFS, ReST-MCTS*, best-of-N, self-consistency.

Every search takes a run context (a :class:`~reflectnb.strategies.context.RunContext`,
or a bare backend) and a task (a question string or a :class:`Task` such as
:class:`Game24Task`), reports each node through the context's
:class:`~reflectnb.trace.Recorder` (``on_node``; re-reported when its value,
visits or status change), generates all expansions of one layer/iteration in
one batched ``backend.generate`` call (tokens through ``ctx.token``, so a stop
request ends it), and returns a :class:`TreeResult`. Generation settings are
the search's own ``params=`` keyword (default: T = 0.7, see ``common``), not ``ctx.params``.

Layer 4: imports errors, trace, ``backends.base``, ``strategies.voting`` (answers),
``strategies.context`` (the run context) and ``strategies.engine`` (the Ctrl-C wrapper) only
(no torch, no store). See ``docs/trees.md``.
"""

from __future__ import annotations

import inspect

from typing import Any

from reflectnb.errors import OptionError
from reflectnb.strategies.tree.bfs import tot_bfs
from reflectnb.strategies.tree.budget import MAX_NODES, estimate_bfs, estimate_dfs, estimate_mcts
from reflectnb.strategies.tree.dfs import tot_dfs
from reflectnb.strategies.tree.game24 import Game24Task, can_reach_24, check_24, game24_puzzles
from reflectnb.strategies.tree.mcts import backup_value, mcts, rollout_update
from reflectnb.strategies.tree.oneshot import best_of_n, self_consistency
from reflectnb.strategies.tree.result import TreeResult, nodes_from_rows
from reflectnb.strategies.tree.select import select_greedy, select_sample, uct_score
from reflectnb.strategies.tree.tasks import ArithmeticTask, Task, arithmetic_tasks
from reflectnb.strategies.tree.values import (VALUE_MAP, VerifierError, prm_path_targets, prm_target, prm_targets,
                                              value_from_outputs, votes_from_outputs)

METHODS = {"bfs": tot_bfs, "dfs": tot_dfs, "mcts": mcts, "best_of_n": best_of_n,
           "self_consistency": self_consistency}


def tree_search(ctx: Any, task: Task | str, method: str = "bfs", **options: Any) -> TreeResult:
    """Run the named search (``bfs`` | ``dfs`` | ``mcts`` | ``best_of_n`` | ``self_consistency``).

    ``ctx`` is a :class:`~reflectnb.strategies.context.RunContext` or a bare backend;
    ``options`` are the search's keywords (``params`` included: default T = 0.7).

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> t = ArithmeticTask("3 + 4", 7)
    >>> r = tree_search(ScriptedBackend(lambda p, i: "3 + 4 = 7\\nAnswer: 7"), t, "best_of_n", n=2,
    ...                 verifier=t.verify)
    >>> r.answer, len(r.nodes)
    ('7', 3)
    """
    if method not in METHODS:
        raise OptionError(f"`method` must be one of {list(METHODS)}, got {method!r}")
    search = METHODS[method]
    accepted = [name for name in inspect.signature(search).parameters if name not in ("ctx", "task")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise OptionError(f"method {method!r} does not take {', '.join(unknown)}; it takes: {', '.join(accepted)}")
    return search(ctx, task, **options)


__all__ = ["tree_search", "tot_bfs", "tot_dfs", "mcts", "best_of_n", "self_consistency", "TreeResult",
           "nodes_from_rows", "Task", "Game24Task", "ArithmeticTask", "arithmetic_tasks", "game24_puzzles",
           "check_24", "can_reach_24", "VALUE_MAP", "value_from_outputs", "votes_from_outputs", "prm_target",
           "prm_path_targets", "prm_targets", "VerifierError", "select_greedy", "select_sample", "uct_score",
           "rollout_update", "backup_value", "estimate_bfs", "estimate_dfs", "estimate_mcts", "MAX_NODES",
           "METHODS"]
