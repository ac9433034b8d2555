"""The IPython magics: a thin adapter from a cell to the public Python API.

Every magic does three things: parse the line into options
(:mod:`reflectnb.magic_options`), call the same function a Python user would
(:mod:`reflectnb.api`, :mod:`reflectnb.store`), and display the result.
Errors that reflectnb raises on purpose become a one-line ``UsageError``;
Ctrl-C / the stop button leaves a saved, interrupted run and a usable kernel.
Before a loop starts, options it would ignore are refused and its model calls
are estimated (refused above ``--max-generations``). Each magic's docstring is
its option parser's help, so ``%%reflect?`` lists the options.

Defaults come from ``%config ReflectMagics.<name> = ...``.
"""

from __future__ import annotations

from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class, no_var_expand
from traitlets import Float, Int, Unicode, validate

from reflectnb.errors import OptionError, ReflectnbError
from reflectnb.magic_options import MAX_GENERATIONS, fill_cell, generation_estimate, magic_help, parse_line


CELL_NOTE = "In the cell, {name} is replaced by the Python variable name; {{ and }} are literal braces."


def _help(magic: str, summary: str) -> Callable[[Callable], Callable]:
    """Put the magic's option help into its docstring, which is what ``%%magic?`` shows."""
    def document(func: Callable) -> Callable:
        func.__doc__ = magic_help(magic, summary)
        return func
    return document


def _lazy_help(module: str, factory: str, summary: str) -> Callable[[Callable], Callable]:
    """Like :func:`_help` for a parser whose module is heavy to import (pandas, duckdb).

    IPython's ``?`` asks an object for ``getdoc()`` before reading ``__doc__``, so
    the help is built when the user asks for it, not at ``%load_ext``.
    """
    def document(func: Callable) -> Callable:
        def getdoc() -> str:
            import importlib

            return f"{summary}\n\n{getattr(importlib.import_module(module), factory)().format_help()}"

        func.__doc__ = f"{summary}\n\nThe options: `%{func.__name__}?` in IPython, or docs/reference/magics.md."
        func.getdoc = getdoc
        return func
    return document


@magics_class
class ReflectMagics(Magics):
    """``%reflectnb``, ``%%reflect``, ``%%critique``, ``%%debate``, ``%%tree``, ``%reflect_sql``, ``%reflect_eval``."""

    model = Unicode("", help="Default model name for the magics ('' = REFLECTNB_MODEL or smollm2-135m)").tag(config=True)
    temperature = Float(0.0, help="Default sampling temperature (0 = greedy)").tag(config=True)
    max_tokens = Int(256, help="Default number of new tokens per generation").tag(config=True)
    rounds = Int(0, help="Default number of rounds (0 = each loop's own default)").tag(config=True)
    concurrency = Int(16, help="Requests in flight at once to a server model (openai:...) "
                               "that names none itself").tag(config=True)

    @validate("concurrency")
    def _set_concurrency(self, proposal: Any) -> int:
        from reflectnb.backends.openai_pool import set_default_concurrency

        set_default_concurrency(proposal["value"])  # an OptionError for 0 or less leaves both unchanged
        return proposal["value"]

    @line_magic
    def reflectnb(self, line: str = "") -> Any:
        """Show the version, the configured model, where traces and the cache live, and known models.

        Takes no options. Set defaults with ``%config ReflectMagics.model = 'smollm2-135m'``
        (also ``.temperature``, ``.max_tokens``, ``.rounds``).
        """
        from reflectnb.status import status_report

        if line.strip():
            raise UsageError(f"%reflectnb takes no options, got {line.strip()[:60]!r}; it only shows the "
                             "status. Set the model with %config ReflectMagics.model = 'smollm2-135m'")

        return status_report(self.model or None)

    @cell_magic
    @_help("reflect", "%%reflect [options]\n<task>\n\n" + CELL_NOTE)
    def reflect(self, line: str, cell: str) -> Any:
        return self._loop("reflect", line, cell)

    @cell_magic
    @_help("critique", "%%critique [options]\n<task>\n\n" + CELL_NOTE)
    def critique(self, line: str, cell: str) -> Any:
        return self._loop("critique", line, cell)

    @cell_magic
    @_help("debate", "%%debate [options]\n<question>\n\n" + CELL_NOTE)
    def debate(self, line: str, cell: str) -> Any:
        return self._loop("debate", line, cell)

    @cell_magic
    @_help("tree", "%%tree [options]\n<task>\n\n" + CELL_NOTE)
    def tree(self, line: str, cell: str) -> Any:
        return self._loop("tree", line, cell)

    @no_var_expand  # `$name` is bound as a SQL parameter, never pasted into the text by IPython
    @line_cell_magic
    @_lazy_help("reflectnb.store.sql_magic", "parser", "%reflect_sql [options] SQL   or   %%reflect_sql "
                "[options] + SQL in the cell\n\nQuery the trace store with SQL; returns a DataFrame "
                "(read-only unless --write).")
    def reflect_sql(self, line: str, cell: str | None = None) -> Any:
        from reflectnb.store.sql_magic import reflect_sql

        return self._guard(lambda: reflect_sql(line, cell, self.shell.user_ns), one_line=False)

    @line_magic
    @_lazy_help("reflectnb.evaluate.magic", "reflect_eval_parser", "%reflect_eval TASKS [options]\n\n"
                "Compare methods on a task set with a verifier (accuracy with CIs, reflection outcomes).")
    def reflect_eval(self, line: str) -> Any:
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
            result = getattr(interrupt, "partial", None)
            print(f"%%{kind}: interrupted; what was produced so far is kept"
                  + (f" (run {result.run_id})" if getattr(result, "run_id", None) else ""))
        if opts.output:
            self.shell.user_ns[opts.output] = result
        return result if opts.no_stream else None

    _NOT_API = ("output", "no_stream", "no_trace", "templates", "verifier", "game24", "max_generations",
                "critic", "models")

    def _options(self, kind: str, opts) -> dict[str, Any]:
        options = {k: v for k, v in vars(opts).items() if k not in self._NOT_API and v is not None}
        if opts.model is not None:
            options["model"] = self._model(opts.model, "-m")  # a Backend variable, or a name
        if kind == "tree":
            return self._tree_options(opts, options)
        options.setdefault("model", self.model or None)
        options.setdefault("temperature", self.temperature)
        options.setdefault("max_tokens", self.max_tokens)
        if self.rounds and "rounds" not in options:
            options["rounds"] = self.rounds
        if opts.templates:
            options["templates"] = self._variable(opts.templates, "--templates")
        if kind == "critique" and opts.critic is not None:
            options["critic"] = self._model(opts.critic, "--critic")
        if kind == "debate":
            self._debate_options(opts, options)
        self._check_budget(kind, opts, options)
        return options

    def _model(self, name: str, option: str) -> Any:
        from reflectnb.evaluate.magic import model_from_namespace

        return model_from_namespace(name, self.shell.user_ns, option)

    def _debate_options(self, opts, options: dict[str, Any]) -> None:
        """Refuse what the chosen debate method would ignore; resolve ``--models`` one by one."""
        if opts.method == "mad":
            for flag, value in (("--agents", opts.agents), ("--aggregator", opts.aggregator)):
                if value is not None:
                    raise OptionError(f"%%debate: {flag} applies to --method du only; MAD has three fixed roles "
                                      "(affirmative, negative, moderator): give them models with --models a,b,c")
        if opts.models is None:
            return
        if opts.model is not None:
            raise OptionError("%%debate: give -m (one model for every agent) or --models (one per agent), not both")
        names = [n.strip() for n in opts.models.split(",")]
        if not all(names):
            raise OptionError(f"%%debate: --models {opts.models!r} has an empty entry; give comma-separated model "
                              "names or variables, e.g. --models bot1,bot2,bot3")
        if opts.method == "mad" and len(names) not in (1, 3):
            raise OptionError(f"%%debate --method mad: --models takes 1 model, or 3 (affirmative, negative, "
                              f"moderator); got {len(names)}")
        options["models"] = [self._model(name, "--models") for name in names]

    def _check_budget(self, kind: str, opts, options: dict[str, Any]) -> None:
        """Refuse a loop that could make more model calls than ``--max-generations``, with the estimate."""
        from reflectnb.strategies.engine import check_estimate

        loop = opts.method if kind == "debate" else kind
        agents = options.get("agents") or (len(options["models"]) if len(options.get("models") or ()) > 1 else None)
        estimate, detail = generation_estimate(loop, options.get("rounds"), agents)
        fix = "lower --rounds" + (" or --agents" if loop == "du" else "") + ", or raise --max-generations"
        check_estimate(estimate, opts.max_generations or MAX_GENERATIONS, "--max-generations",
                       f"%%{kind}: this run could make", f"model calls ({detail})", fix)

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
    def _guard(action: Callable[[], Any], one_line: bool = True) -> Any:
        """Turn reflectnb's own errors into a ``UsageError``: one line, no traceback.

        Newlines that came in with the user's text (a quoted option value, a cell
        placeholder) are shown as spaces so the message stays one line; SQL errors
        keep theirs (``one_line=False``: DuckDB points at the column on a second line).
        """
        try:
            return action()
        except (ReflectnbError, UsageError) as exc:
            message = str(exc)
            raise UsageError(" ".join(message.splitlines()) if one_line else message) from None

    @line_magic
    def reflect_runs(self, line: str = "") -> Any:
        """%reflect_runs [PATH]: browse the stored runs (filter, sort, open, tag); PATH defaults to the trace store."""
        import reflectnb

        return self._guard(lambda: reflectnb.browse(line.strip() or None))
