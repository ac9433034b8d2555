"""What an evaluation's rows depend on: the key behind the default eval id.

Contract
--------
:func:`eval_key` is a JSON-friendly dict of everything that decides how an
item is asked and scored, so two ``compare`` calls share a default eval id
(and the second resumes the first) only when they would produce the same rows:

* the task set's fingerprint (name, ids, questions, answers) and its
  ``instruction``;
* the checker and the extraction rule (:func:`rule_identity`), and the version
  of the built-in rules (``RULES_VERSION``, so a fix to ``"auto"`` rescores);
* the model: ``backend.name`` and how it computes (``backend.describe()``, the
  engine and dtype, e.g. ``"fast engine, bfloat16"``; else ``backend.dtype`` or
  ``backend.model.dtype``), so ``smollm2-135m`` on the fast engine, in fp32 and in
  bf16 on transformers are three evaluations;
* the generation settings (temperature, max_tokens, seed).

Methods are not in the key: each method is its own run kind in the store.

A built-in checker or rule is named (``"exact"``, ``"numeric:0.01"``, ``"auto"``).
A Python function is its module-qualified name plus a hash of its source
(:func:`callable_identity`), or of its bytecode when the source cannot be
read, so editing the function starts a new evaluation. Values a function reads
from outside its source (globals, closed-over variables) are not seen: pass
``eval_id=`` or ``resume=False`` when those change.

Non-goals: hashing model weights (the name and dtype stand for them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from typing import Any

from reflectnb.evaluate.checkers import ItemChecker, UserFunction
from reflectnb.strategies.voting import RULES_VERSION


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def callable_identity(fn: Any) -> str:
    """``module.qualname#<hash of the source>`` of a function (or of a callable object's class).

    Examples
    --------
    >>> callable_identity(len)
    'builtins.len'
    """
    target = fn if inspect.isroutine(fn) or inspect.isclass(fn) else type(fn)
    name = f"{getattr(target, '__module__', None) or '?'}.{getattr(target, '__qualname__', repr(target))}"
    try:
        return f"{name}#{_sha(inspect.getsource(target).encode())}"
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        return f"{name}#{_sha(code.co_code + repr(code.co_consts).encode())}" if code is not None else name


def rule_identity(rule: Any) -> str:
    """A checker's or extraction rule's identity: its name if built in, else :func:`callable_identity`."""
    if isinstance(rule, str):
        return rule
    if isinstance(rule, UserFunction):
        return callable_identity(rule.fn)
    if isinstance(rule, ItemChecker):
        if not type(rule).__module__.startswith("reflectnb."):
            return callable_identity(type(rule))
        fields = dataclasses.asdict(rule) if dataclasses.is_dataclass(rule) else {}
        return repr(rule) + (f"{sorted(fields.items())}" if fields else "")
    return callable_identity(rule)


def backend_dtype(backend: Any) -> str | None:
    """How a local backend computes: its engine and dtype (``"fast engine, bfloat16"``), or ``None`` for
    servers and scripts. Both decide the tokens a greedy run produces, so both belong to the eval id."""
    describe = getattr(backend, "describe", None)
    if callable(describe):
        return describe()
    dtype = getattr(backend, "dtype", None)
    if dtype is None:
        dtype = getattr(getattr(backend, "model", None), "dtype", None)
    return None if dtype is None else str(dtype)


def eval_key(tasks: Any, backend: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """Everything the rows of an evaluation depend on (see the module docstring)."""
    model = backend if isinstance(backend, str) else backend.name
    dtype = None if isinstance(backend, str) else backend_dtype(backend)
    return {"tasks": tasks.fingerprint(), "instruction": tasks.instruction,
            "checker": rule_identity(tasks.checker), "extract": rule_identity(tasks.extract),
            "extract_rules": RULES_VERSION, "model": model, "dtype": dtype, "settings": settings}
