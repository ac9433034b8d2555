"""The IPython magics: a thin adapter from a cell to the public Python API.

Every magic does three things: parse the line into options
(:mod:`reflectnb.magic_options`), call the same function a Python user would
(:mod:`reflectnb.api`, :mod:`reflectnb.store`), and display the result.
Errors that reflectnb raises on purpose become a one-line ``UsageError``;
Ctrl-C / the stop button leaves a saved, interrupted run and a usable kernel.

Defaults come from ``%config ReflectMagics.<name> = ...``.
"""

from __future__ import annotations

from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class, no_var_expand
from traitlets import Float, Int, Unicode

from reflectnb.errors import ReflectnbError
from reflectnb.magic_options import fill_cell, parse_line


@magics_class
class ReflectMagics(Magics):
    """``%reflectnb``, ``%%reflect``, ``%%critique``, ``%%debate``, ``%%tree``, ``%reflect_sql``, ``%reflect_eval``."""

    model = Unicode("", help="Default model name for the magics ('' = REFLECTNB_MODEL or smollm2-135m)").tag(config=True)
    temperature = Float(0.0, help="Default sampling temperature (0 = greedy)").tag(config=True)
    max_tokens = Int(256, help="Default number of new tokens per generation").tag(config=True)
    rounds = Int(0, help="Default number of rounds (0 = each loop's own default)").tag(config=True)

    @line_magic
    def reflectnb(self, line: str = "") -> Any:
        """Show the version, the configured model, where traces and the cache live, and known models."""
        from reflectnb.status import status_report

        return status_report(self.model or None)

    @cell_magic
    def reflect(self, line: str, cell: str) -> Any:
        """Draft -> self-feedback -> refine. See ``%%reflect?`` for the options."""
        return self._loop("reflect", line, cell)

    @cell_magic
    def critique(self, line: str, cell: str) -> Any:
        """An actor answers step by step, a critic judges each step, the actor revises."""
        return self._loop("critique", line, cell)

    @cell_magic
    def debate(self, line: str, cell: str) -> Any:
        """Multi-agent debate (Du et al. N agents, or MAD with a moderator)."""
        return self._loop("debate", line, cell)

    @cell_magic
    def tree(self, line: str, cell: str) -> Any:
        """Tree search over reasoning steps (ToT BFS/DFS, MCTS, best-of-N, self-consistency)."""
        return self._loop("tree", line, cell)

    @no_var_expand  # `$name` is bound as a SQL parameter, never pasted into the text by IPython
    @line_cell_magic
    def reflect_sql(self, line: str, cell: str | None = None) -> Any:
        """Query the trace store with SQL; returns a DataFrame (read-only unless --write)."""
        from reflectnb.store.sql_magic import reflect_sql

        return self._guard(lambda: reflect_sql(line, cell, self.shell.user_ns))

    @line_magic
    def reflect_eval(self, line: str) -> Any:
        """Compare methods on a task set with a verifier (accuracy with CIs, reflection outcomes)."""
        from reflectnb.evaluate.magic import reflect_eval

        defaults = {"model": self.model or None, "temperature": self.temperature, "max_tokens": self.max_tokens}
        return self._guard(lambda: reflect_eval(line, self.shell.user_ns, defaults))

    def _loop(self, kind: str, line: str, cell: str) -> Any:
        def run():
            opts = parse_line(kind, line)
            task = self._task(kind, cell)
            if getattr(opts, "game24", False):
                from reflectnb.strategies.tree import Game24Task

                task = Game24Task(task)
            return self._run_loop(kind, opts, task)

        return self._guard(run)

    def _task(self, kind: str, cell: str) -> str:
        task = fill_cell(cell, self.shell.user_ns).strip()
        if not task:
            raise UsageError(f"%%{kind}: the cell is empty; write the task or question in the cell")
        return task

    def _run_loop(self, kind: str, opts, task: str) -> Any:
        from reflectnb import api

        options = self._options(kind, opts)
        try:
            result = getattr(api, kind)(task, live=not opts.no_stream, trace=not opts.no_trace, **options)
        except KeyboardInterrupt as interrupt:
            result = getattr(interrupt, "partial_result", None)
            print(f"%%{kind}: interrupted; what was produced so far is kept"
                  + (f" (run {result.run_id})" if getattr(result, "run_id", None) else ""))
        if opts.output:
            self.shell.user_ns[opts.output] = result
        return result if opts.no_stream else None

    def _options(self, kind: str, opts) -> dict[str, Any]:
        options = {k: v for k, v in vars(opts).items()
                   if k not in ("output", "no_stream", "no_trace", "templates", "verifier", "game24")
                   and v is not None}
        if opts.model:
            from reflectnb.evaluate.magic import model_from_namespace

            options["model"] = model_from_namespace(opts.model, self.shell.user_ns)  # a Backend variable, or a name
        if kind == "tree":
            return self._tree_options(opts, options)
        options.setdefault("model", self.model or None)
        options.setdefault("temperature", self.temperature)
        options.setdefault("max_tokens", self.max_tokens)
        if self.rounds and "rounds" not in options:
            options["rounds"] = self.rounds
        if opts.templates:
            options["templates"] = self._variable(opts.templates, "--templates")
        return options

    def _tree_options(self, opts, options: dict[str, Any]) -> dict[str, Any]:
        options.setdefault("model", self.model or None)
        if opts.verifier:
            options["verifier"] = self._variable(opts.verifier, "--verifier")
        return options

    def _variable(self, name: str, option: str) -> Any:
        if name not in self.shell.user_ns:
            raise UsageError(f"{option} names {name!r}, but no such Python variable exists")
        return self.shell.user_ns[name]

    @staticmethod
    def _guard(action: Callable[[], Any]) -> Any:
        try:
            return action()
        except ReflectnbError as exc:
            raise UsageError(str(exc)) from None
