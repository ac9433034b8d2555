"""The IPython magics: a thin adapter from a cell to the public Python API.

Every magic does three things: parse the line into options
(:mod:`reflectnb.magics.options`), call the same function a Python user would
(:mod:`reflectnb.api`, :mod:`reflectnb.store`), and display the result.
Errors that reflectnb raises on purpose become a one-line ``UsageError``;
Ctrl-C / the stop button leaves a saved, interrupted run and a usable kernel.
Before a loop starts, options it would ignore are refused and its model calls
are estimated (refused above ``--max-generations``). Each magic's docstring is
its option parser's help, so ``%%reflect?`` lists the options.

Defaults come from ``%config ReflectMagics.<name> = ...``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class, no_var_expand
from traitlets import Float, Int, Unicode, validate

from reflectnb.errors import ReflectnbError
from reflectnb.magics.options import fill_cell, magic_help, parse_line


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

    @no_var_expand  # `$name` is bound as a SQL parameter, never pasted into the text by IPython
    @line_cell_magic
    @_lazy_help("reflectnb.magics.sql", "parser", "%reflect_sql [options] SQL   or   %%reflect_sql "
                "[options] + SQL in the cell\n\nQuery the trace store with SQL; returns a DataFrame "
                "(read-only unless --write).")
    def reflect_sql(self, line: str, cell: str | None = None) -> Any:
        from reflectnb.magics.sql import reflect_sql

        return self._guard(lambda: reflect_sql(line, cell, self.shell.user_ns), one_line=False)

    @line_magic
    @_lazy_help("reflectnb.magics.evaluate", "reflect_eval_parser", "%reflect_eval TASKS [options]\n\n"
                "Compare methods on a task set with a verifier (accuracy with CIs, reflection outcomes).")
    def reflect_eval(self, line: str) -> Any:
        from reflectnb.magics.evaluate import reflect_eval

        defaults = {"model": self.model or None, "temperature": self.temperature, "max_tokens": self.max_tokens}
        return self._guard(lambda: reflect_eval(line, self.shell.user_ns, defaults))

    # -- one cell magic per strategy ------------------------------------------------------------------------
    def register_strategies(self) -> None:
        """Register ``%%<name>`` for every strategy with a cell magic, now and whenever one is registered."""
        from reflectnb.strategies.spec import on_register, strategies

        for spec in strategies("magic").values():
            self._register(spec)
        on_register(self._register)

    def _register(self, spec: Any) -> None:
        if "magic" not in spec.surfaces:
            return
        run = functools.partial(self.run_cell, spec.name)
        run.getdoc = lambda: magic_help(spec.name)  # what %%name? shows, built when asked
        run.__doc__ = f"{spec.summary}\n\nThe options: `%%{spec.name}?`, or docs/reference/magics.md."
        self.shell.register_magic_function(run, magic_kind="cell", magic_name=spec.name)

    def run_cell(self, name: str, line: str, cell: str) -> Any:
        """Run ``%%<name>``: parse the line, fill the cell, call :func:`reflectnb.api.run_strategy`, display."""
        return self._guard(self._run_cell, name, line, cell)

    def _run_cell(self, name: str, line: str, cell: str) -> Any:
        from reflectnb.api import run_strategy
        from reflectnb.strategies.spec import get_strategy

        spec = get_strategy(name, "magic")
        opts = parse_line(name, line)
        task = fill_cell(cell, self.shell.user_ns).strip()
        if not task:
            raise UsageError(f"%%{name}: the cell is empty; write the {spec.task_name} in the cell")
        try:
            result = run_strategy(name, task, live=not opts.no_stream, trace=not opts.no_trace, where=f"%%{name}",
                                  **self._kwargs(spec, opts))
        except KeyboardInterrupt as interrupt:
            result = getattr(interrupt, "partial", None)
            print(f"%%{name}: interrupted; what was produced so far is kept"
                  + (f" (run {result.run_id})" if getattr(result, "run_id", None) else ""))
        if opts.output:
            self.shell.user_ns[opts.output] = result
        return result if opts.no_stream else None

    def _kwargs(self, spec: Any, opts: Any) -> dict[str, Any]:
        """The API call's keywords: the line's options, then ``%config`` defaults; models and variables resolved."""
        given = vars(opts)
        out = {"model": self._model(opts.model, "-m") if opts.model is not None else self.model or None,
               "temperature": opts.temperature, "max_tokens": opts.max_tokens, "seed": opts.seed,
               "schedule": opts.schedule, "max_generations": given.get("max_generations")}
        for trait, default in (("temperature", 0.0), ("max_tokens", 256)):
            if out[trait] is None and getattr(self, trait) != default:
                out[trait] = getattr(self, trait)  # %config changed it: it overrides the method's own default
        for f in spec.fields:
            value = given.get(f.name)
            if value is None:
                continue
            if f.info.model:
                value = self._models(value, f, spec.name) if f.info.many else self._model(value, f.flag)
            elif f.info.variable:
                value = self._variable(value, f.flag)
            out[f.name] = value
        if self.rounds and "rounds" not in out and any(f.name == "rounds" for f in spec.fields):
            out["rounds"] = self.rounds
        if opts.model is not None and out.get("models"):
            raise UsageError(f"%%{spec.name}: give -m (one model for every agent) or --models (one per agent), "
                             "not both")
        return out

    def _model(self, name: str, option: str) -> Any:
        from reflectnb.magics.evaluate import model_from_namespace

        return model_from_namespace(name, self.shell.user_ns, option)

    def _models(self, text: str, f: Any, magic: str) -> list[Any]:
        names = [n.strip() for n in text.split(",")]
        if not all(names):
            raise UsageError(f"%%{magic}: {f.flag} {text!r} has an empty entry; give comma-separated model names or "
                             f"variables, e.g. {f.flag} bot1,bot2,bot3")
        return [self._model(name, f.flag) for name in names]

    def _variable(self, name: str, option: str) -> Any:
        if name not in self.shell.user_ns:
            raise UsageError(f"{option} names {name!r}, but no such Python variable exists")
        return self.shell.user_ns[name]

    @staticmethod
    def _guard(action: Callable[..., Any], *args: Any, one_line: bool = True) -> Any:
        """Turn reflectnb's own errors into a ``UsageError``: one line, no traceback.

        Newlines that came in with the user's text (a quoted option value, a cell
        placeholder) are shown as spaces so the message stays one line; SQL errors
        keep theirs (``one_line=False``: DuckDB points at the column on a second line).
        """
        try:
            return action(*args)
        except (ReflectnbError, UsageError) as exc:
            message = str(exc)
            raise UsageError(" ".join(message.splitlines()) if one_line else message) from None

    @line_magic
    def reflect_runs(self, line: str = "") -> Any:
        """%reflect_runs [PATH]: browse the stored runs (filter, sort, open, tag); PATH defaults to the trace store."""
        import reflectnb

        return self._guard(lambda: reflectnb.browse(line.strip() or None))
