"""Strategy specs: each method declared once, everything else derived from the declaration.

A method is a :class:`Strategy`: its name, an options dataclass (types,
defaults, help and validation in one place), ``run(ctx, task, options)``, the
live view layout and an estimate of its model calls. From the spec come

* the Python function ``reflectnb.<name>(task, model=..., **options)`` (``reflectnb.api``),
* the cell magic ``%%<name>`` and its ``%%<name>?`` help (``reflectnb.magics``),
* the ``%reflect_eval`` method ``<name>(option=value)`` (``reflectnb.evaluate.methods``),
* the live view's layout, and the magic reference in the docs.

Register one the way ``simonw/llm`` registers models: with the decorator, or
from another package through the ``reflectnb.strategies`` entry point group
(each entry point names a module, or a function called with no arguments, that
registers its strategies when loaded)::

    @dataclass
    class Options:
        n: int = option(4, "samples to draw", short="-n", check=positive_int)

    @register_strategy("majority_of_n", options=Options, summary="Majority of n answers.")
    def run(ctx, task, options):
        ...

Options: each field of the dataclass is made with :func:`option`. Its type
annotation decides how a magic reads it (``int``, ``float``, ``str``, ``bool``,
optionally ``| None``); ``check`` narrows it (:func:`~reflectnb.strategies.engine.positive_int`,
:func:`~reflectnb.strategies.engine.above_zero` …); ``choices`` lists the allowed values; ``model=True``
takes a model (a name or a loaded backend; a magic also accepts a variable
holding one); ``variable=True`` takes a Python object that a magic names by its
variable (templates, verifiers). ``__post_init__`` on the dataclass checks
options against each other. :meth:`Strategy.options_from` is the one place
values are checked, whichever surface they came from.

Non-goals: running a strategy with tracing and views (``reflectnb.api``), magics.
"""

from __future__ import annotations

import dataclasses
import threading
import typing
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from reflectnb.errors import OptionError
from reflectnb.strategies.engine import finite_number

MAX_GENERATIONS = 10_000  # model calls one run may make before it is refused (max_generations raises it)
SURFACES = ("api", "magic", "eval")
RESERVED = ("model", "temperature", "max_tokens", "seed", "schedule", "trace", "live", "max_generations", "where",
            "output", "no_stream", "no_trace", "task")  # what every run and magic already takes
VIEWS = ("reflect", "critique", "debate", "generate", "tree")
ENTRY_POINT_GROUP = "reflectnb.strategies"
_METADATA_KEY = "reflectnb"


# -- options ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OptionInfo:
    """What :func:`option` attaches to a dataclass field."""

    help: str
    short: str | None = None
    choices: tuple[Any, ...] | None = None
    check: Callable[[str, Any], Any] | None = None
    model: bool = False
    many: bool = False
    variable: bool = False


def option(default: Any, help: str, *, short: str | None = None, choices: Iterable[Any] | None = None,
           check: Callable[[str, Any], Any] | None = None, model: bool = False, many: bool = False,
           variable: bool = False) -> Any:
    """A field of a strategy's options dataclass (see the module docstring).

    ``many=True`` with ``model=True`` takes a list of models (one per agent);
    a magic reads it comma-separated.
    """
    info = OptionInfo(help, short, tuple(choices) if choices is not None else None, check, model, many, variable)
    if isinstance(default, (list, dict, set)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata={_METADATA_KEY: info})
    return field(default=default, metadata={_METADATA_KEY: info})


@dataclass(frozen=True)
class OptionField:
    """One option of a strategy, as the surfaces see it."""

    name: str
    type: Any  # int, float, str, bool, or object (models, variables)
    optional: bool  # None is allowed
    default: Any
    info: OptionInfo

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> Any:
        """``value`` if it fits this option (converted where lossless), else an OptionError naming it."""
        if value is None:
            if self.optional or self.default is None:
                return None
            raise OptionError(f"`{self.name}` cannot be None; give {self._expected()}")
        value = self._typed(value)
        if self.info.choices is not None and value not in self.info.choices:
            raise OptionError(f"`{self.name}` must be one of {list(self.info.choices)}, got {value!r:.60}")
        return self.info.check(self.name, value) if self.info.check is not None else value

    def _typed(self, value: Any) -> Any:
        if self.info.check is not None and self.type in (int, float):
            return value  # the option's own check reads the number (its message says what it must be)
        if self.type is bool and not isinstance(value, bool):
            raise OptionError(f"`{self.name}` must be True or False, got {value!r:.60}")
        if self.type is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise OptionError(f"`{self.name}` must be a whole number, got {value!r:.60}")
        if self.type is float:
            return finite_number(self.name, value)
        if self.type is str and not isinstance(value, str):
            raise OptionError(f"`{self.name}` must be a string, got {value!r:.60}")
        return value

    def _expected(self) -> str:
        return {int: "a whole number", float: "a number", str: "a string", bool: "True or False"}.get(
            self.type, "a value")


def option_fields(options: type) -> list[OptionField]:
    """The options of an options dataclass, in declaration order."""
    hints = typing.get_type_hints(options)
    out = []
    for f in dataclasses.fields(options):
        info = f.metadata.get(_METADATA_KEY) or OptionInfo(help="")
        kind, optional = _plain_type(hints.get(f.name, object))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        out.append(OptionField(f.name, object if info.model or info.variable else kind, optional, default, info))
    return out


def _plain_type(hint: Any) -> tuple[Any, bool]:
    """``int | None`` → ``(int, True)``; anything unusual → ``(object, …)``."""
    args = typing.get_args(hint)
    optional = type(None) in args
    members = [a for a in args if a is not type(None)] if args else [hint]
    kind = members[0] if len(members) == 1 and members[0] in (int, float, str, bool) else object
    return kind, optional


# -- the spec --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Strategy:
    """One method, declared once (see the module docstring).

    ``calls(options)`` returns ``(most model calls, how that was counted)``; a run
    whose estimate is above ``max_generations`` is refused before it starts.
    ``eval_answers(result, answer)`` returns the answer after each round (round 0
    first; already read with ``answer``) and how many reflection rounds ran;
    the default reads ``result.answers`` or ``result.answer``. ``eval_task`` is
    what an evaluation hands ``run`` as the task: ``"prompt"`` (the question
    with the task set's instruction) or ``"question"``. ``sampling`` holds the
    method's own defaults for ``temperature`` and ``max_tokens``.
    """

    name: str
    run: Callable[[Any, Any, Any], Any]
    options: type
    summary: str
    view: str = "reflect"
    calls: Callable[[Any], tuple[int, str]] | None = None
    eval_answers: Callable[[Any, Callable[[str], Any]], tuple[list[Any], int]] | None = None
    eval_task: str = "prompt"
    task_name: str = "task"
    sampling: Mapping[str, Any] = field(default_factory=lambda: {"temperature": 0.0, "max_tokens": 256})
    surfaces: tuple[str, ...] = SURFACES
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.startswith("_"):
            raise OptionError(f"a strategy name must be a Python identifier not starting with _, got {self.name!r}")
        if not dataclasses.is_dataclass(self.options):
            raise OptionError(f"strategy {self.name!r}: `options` must be a dataclass, got {self.options!r}")
        for name, value, allowed in (("view", self.view, VIEWS), ("eval_task", self.eval_task, ("prompt", "question"))):
            if value not in allowed:
                raise OptionError(f"strategy {self.name!r}: `{name}` must be one of {list(allowed)}, got {value!r}")
        taken = sorted({f.name for f in dataclasses.fields(self.options)} & set(RESERVED))
        if taken:
            raise OptionError(f"strategy {self.name!r}: options may not be called {taken}: every run takes them "
                              f"already ({', '.join(RESERVED)})")
        unknown = sorted(set(self.surfaces) - set(SURFACES))
        if unknown:
            raise OptionError(f"strategy {self.name!r}: unknown surfaces {unknown}; known: {list(SURFACES)}")

    @property
    def fields(self) -> list[OptionField]:
        return option_fields(self.options)

    def options_from(self, values: Mapping[str, Any], where: str = "", flags: bool = False) -> Any:
        """The options dataclass from ``values``: unknown names refused, every value checked, defaults filled.

        ``flags=True`` (a magic asking) names options in errors as flags: ``--agents``, not `` `agents` ``.
        """
        try:
            return self._options_from(values, where)
        except OptionError as exc:
            if not flags:
                raise
            message = str(exc)
            for f in self.fields:
                message = message.replace(f"`{f.name}`", f.flag)
            raise OptionError(message) from None

    def _options_from(self, values: Mapping[str, Any], where: str) -> Any:
        known = {f.name: f for f in self.fields}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise OptionError(f"{where or self.name}: no option {', '.join(map(repr, unknown))}; "
                              f"its options: {', '.join(known) or 'none'}")
        try:
            checked = {name: known[name].check(value) for name, value in values.items()}
            return self.options(**checked)
        except OptionError as exc:
            raise OptionError(f"{where}: {exc}" if where else str(exc)) from None

    def estimate(self, options: Any) -> tuple[int, str] | None:
        """The most model calls a run with ``options`` makes, or ``None`` if not estimated."""
        return self.calls(options) if self.calls is not None else None

    def answers_for_eval(self, result: Any, answer: Callable[[str], Any]) -> tuple[list[Any], int]:
        if self.eval_answers is not None:
            return self.eval_answers(result, answer)
        texts = list(getattr(result, "answers", None) or [getattr(result, "answer", "")])
        rounds = int(getattr(result, "rounds", len(texts) - 1) or 0)
        answers = [answer(text) for text in texts]
        return answers + [answers[-1]] * (rounds + 1 - len(answers)), rounds  # an early stop keeps its answer

    def help_text(self) -> str:
        """Summary, then one line per option (what ``reflectnb.<name>?`` shows for options)."""
        lines = [self.summary, "", "Options", "-------"]
        for f in self.fields:
            choices = f" (one of {', '.join(map(str, f.info.choices))})" if f.info.choices else ""
            lines.append(f"{f.name} : default {f.default!r}{choices}\n    {f.info.help}")
        return "\n".join(lines)


# -- the registry ----------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Strategy] = {}
_LISTENERS: list[Callable[[], Callable[[Strategy], None] | None]] = []  # weak references
_LOCK = threading.RLock()
_LOADED = {"builtin": False, "entry_points": False}


def register_strategy(name: str | Strategy, *, options: type | None = None, summary: str = "",
                      replace: bool = False, **spec: Any) -> Any:
    """Register a method; use as a decorator on ``run(ctx, task, options)``, or pass a :class:`Strategy`.

    ``spec`` takes the other :class:`Strategy` fields (``view``, ``calls`` …).
    Registering a name twice is an error unless ``replace=True`` (a notebook
    re-running the cell that defines it).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> from reflectnb.strategies.engine import positive_int
    >>> @dataclass
    ... class Options:
    ...     n: int = option(2, "answers to draw", check=positive_int)
    >>> @register_strategy("twice_doc", options=Options, summary="Answer n times, keep the last.")
    ... def run(ctx, task, options):
    ...     return None
    >>> get_strategy("twice_doc").fields[0].default
    2
    """
    if isinstance(name, Strategy):
        return _add(name, replace)

    def decorate(run: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
        doc = spec.pop("doc", None) or (run.__doc__ or "")
        _add(Strategy(name=name, run=run, options=options or _NoOptions, summary=summary or doc.split("\n")[0],
                      doc=doc, **spec), replace)
        return run

    return decorate


@dataclass
class _NoOptions:
    """A strategy without options."""


def _add(spec: Strategy, replace: bool) -> Strategy:
    with _LOCK:
        _load_builtin()
        if spec.name in _REGISTRY and not replace and _REGISTRY[spec.name].run is not spec.run:
            raise OptionError(f"a strategy named {spec.name!r} is already registered; pick another name, "
                              "or pass replace=True to register_strategy")
        _REGISTRY[spec.name] = spec
        _LISTENERS[:] = [ref for ref in _LISTENERS if ref() is not None]
        listeners = [ref() for ref in _LISTENERS]
    for listener in listeners:
        if listener is not None:
            listener(spec)
    return spec


def on_register(listener: Callable[[Strategy], None]) -> None:
    """Call ``listener(spec)`` for every strategy registered from now on (the magics use it).

    A bound method is held weakly: a closed IPython shell's magics drop out by themselves.
    """
    ref = weakref.WeakMethod(listener) if hasattr(listener, "__self__") else (lambda: listener)
    with _LOCK:
        _LISTENERS.append(ref)


def strategies(surface: str | None = None) -> dict[str, Strategy]:
    """Every registered strategy (built-in, entry points, then user-registered), optionally for one surface."""
    _load_builtin()
    _load_entry_points()
    with _LOCK:
        return {n: s for n, s in _REGISTRY.items() if surface is None or surface in s.surfaces}


def get_strategy(name: str, surface: str | None = None) -> Strategy:
    """The strategy called ``name``, or an OptionError listing the known ones."""
    known = strategies(surface)
    if name not in known:
        raise OptionError(f"unknown method {name!r}; known: {', '.join(sorted(known))} "
                          "(a new one is added with reflectnb.register_strategy)")
    return known[name]


BUILTIN_MODULES = ("reflectnb.strategies.builtin", "reflectnb.strategies.leap", "reflectnb.strategies.speculative")


def _load_builtin() -> None:
    """Import the modules that register the built-in methods (each registers itself on import)."""
    if not _LOADED["builtin"]:
        _LOADED["builtin"] = True
        import importlib

        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def _load_entry_points() -> None:
    """Load the ``reflectnb.strategies`` entry points once; a broken plugin is reported, not fatal."""
    if _LOADED["entry_points"]:
        return
    _LOADED["entry_points"] = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            if callable(loaded) and not isinstance(loaded, type):
                loaded()
        except Exception as exc:  # another package's bug must not break reflectnb
            import warnings

            warnings.warn(f"reflectnb: the strategy plugin {entry.name!r} ({entry.value}) failed to load: "
                          f"{type(exc).__name__}: {exc}", stacklevel=2)


def check_budget(estimate: tuple[int, str] | None, cap: int | None, where: str, fix: str) -> None:
    """Refuse a run whose estimated model calls exceed ``cap`` (default :data:`MAX_GENERATIONS`)."""
    from reflectnb.strategies.engine import check_estimate

    if estimate is not None:
        count, detail = estimate
        check_estimate(count, MAX_GENERATIONS if cap is None else cap, "max_generations",
                       f"{where}: this run could make", f"model calls ({detail})", fix)
