"""Local generation with any transformers causal LM (the embedded model included).

:class:`LocalBackend` wraps ``model.generate`` rather than writing its own decode
loop, so greedy output equals plain ``model.generate`` token for token, and the
same user logits processors work in both. What it adds: chat templates, batched
left-padded prompts, per-token streaming with logprob and entropy
(``token_capture``), stop strings, seeds, and partial results on Ctrl-C.

Device and dtype: CUDA if available (bf16 where supported, else fp16), else CPU
in fp32. Both can be forced.

Engines (``engine=``): ``"transformers"`` runs ``model.generate`` as described
above. ``"fast"`` (the default on a CPU for Llama-style models) runs the same
contract on a hand-written decode step (``engine.py``, ``engine_loop.py``): bf16
weights on AVX-512 loops (``cpu_gemv.py``; int8 on request), a static KV cache, the KV cache of
the previous prompt's common prefix reused. It keeps the user's processors,
transformers' warpers, streaming, stop strings, seeds and Ctrl-C; greedy output
agrees with fp32 ``generate`` up to bf16 rounding (docs/engine.md has the
figures). ``backend.model`` stays the transformers model either way: the
controllers (budget forcing, PSR, SRGen …) decode with it. The embedded model
on the fast engine builds the engine from its safetensors (``checkpoint.py``)
and loads that transformers model on first use of ``backend.model``, which
takes its modeling code (~1.5 s of imports) off ``load_model``.

Repetition stop: a row whose text falls into a loop (``repetition.py``) stops
with ``finish_reason == "repetition"``; on by default for the embedded model.

Non-goals: decode loops that change hidden states (SRGen lives in ``decoding/``).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from reflectnb.backends.base import (Backend, GenerationInterrupted, GenerationParams, Prompt,
                                     TokenCallback, as_messages)
from reflectnb.backends.repetition import REASON as REPETITION
from reflectnb.backends.repetition import resolve as resolve_repetition
from reflectnb.backends.token_capture import RowStops, ScoreRecorder, TokenStreamer
from reflectnb.errors import ModelNotFoundError, OptionError
from reflectnb.trace import Generation

ENGINES = ("fast", "transformers")


def pick_device_dtype(device: str | None = None, dtype: str | torch.dtype | None = None):
    """Sensible defaults: fp32 on CPU, bf16 (or fp16) on a GPU."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype is None:
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return device, dtype


def load_pretrained(path: str, device: str | None = None, dtype: Any = None, fast_tokenizer: bool = False):
    """Load tokenizer and model from a folder or a hub id already on this machine.

    ``fast_tokenizer=True`` loads ``tokenizer.json`` directly with
    ``PreTrainedTokenizerFast`` (0.6 s faster than ``AutoTokenizer``'s class
    lookup); use it only for checkpoints known to ship a complete ``tokenizer.json``.
    """
    local_only = _local_only(path)
    return load_tokenizer(path, fast_tokenizer, local_only), load_transformers_model(path, device, dtype, local_only)


def load_tokenizer(path: str, fast_tokenizer: bool = False, local_only: bool | None = None):
    """The tokenizer half of :func:`load_pretrained`."""
    import transformers

    # Name only the class used: ``transformers.AutoTokenizer`` imports all of ``transformers.models`` (~0.3 s).
    tokenizer_class = transformers.PreTrainedTokenizerFast if fast_tokenizer else transformers.AutoTokenizer
    local_only = _local_only(path) if local_only is None else local_only
    with _not_found(path, local_only):
        return tokenizer_class.from_pretrained(path, local_files_only=local_only)


def load_transformers_model(path: str, device: str | None = None, dtype: Any = None,
                            local_only: bool | None = None):
    """The model half of :func:`load_pretrained`: the transformers model, on ``device``, in eval mode."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    device, dtype = pick_device_dtype(device, dtype)
    hf_logging.disable_progress_bar()  # no per-load "Loading weights" bar in notebooks
    local_only = _local_only(path) if local_only is None else local_only
    with _not_found(path, local_only):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=local_only)
    return model.to(device).eval()


def _local_only(path: str) -> bool:
    """Load without asking the hub: a local folder, offline mode, or a hub id already cached."""
    return Path(path).exists() or _offline() or _only_in_cache(path)


@contextmanager
def _not_found(path: str, local_only: bool):
    """Turns a failed load into :class:`ModelNotFoundError` that says where it looked."""
    try:
        yield
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelNotFoundError(
            f"cannot load model {path!r}: it is not a folder on this machine nor in the Hugging Face "
            f"cache{' (offline mode)' if local_only else ''}. Give a local path, e.g. 'hf:/path/to/model'. "
            f"({first_line})"
        ) from None


def checkpoint_weights(path: str, device: str | None, dtype: Any, engine: str | None):
    """The fast engine's weights read straight from ``path`` (``checkpoint.py``), when the model may load later.

    ``None`` (load the transformers model now) unless the model would be the fp32
    CPU one, the engine is the fast one and the folder is one ``checkpoint.py`` reads.
    """
    device, dtype = pick_device_dtype(device, dtype)
    chosen = engine or _engine_from_env() or "fast"
    if device != "cpu" or dtype != torch.float32 or chosen != "fast":
        return None
    from reflectnb.backends.checkpoint import open_checkpoint

    return open_checkpoint(path)


def _only_in_cache(path: str) -> bool:
    """True when ``path`` is a hub id to load from the local cache, without asking the network.

    A cached id loads offline (no retries against an unreachable hub). An id not
    in the cache while the hub is unreachable fails at once with a clear message
    instead of five retry warnings and a 46 s wait (issue #13).
    """
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(path, "config.json")
    except ValueError:  # not a valid repo id (HFValidationError): let from_pretrained say so
        return False
    if isinstance(cached, str):
        return True
    if not _hub_reachable():
        raise ModelNotFoundError(
            f"cannot load model {path!r}: it is not in the local Hugging Face cache and no network is "
            f"reachable to download it. Give a local folder ('hf:/path/to/model'), or download it once on a "
            f"machine with network (huggingface-cli download {path})")
    return False


def _hub_reachable(timeout: float = 2.0) -> bool:
    """Can this machine open a connection to the Hugging Face hub (``HF_ENDPOINT``)?"""
    import os
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def default_engine(model, device: str | None = None) -> str:
    """``"fast"`` on a CPU for a model the fast engine runs, else ``"transformers"``.

    ``REFLECTNB_ENGINE`` overrides the choice.
    """
    from reflectnb.backends.engine import supports

    chosen = _engine_from_env()
    if chosen:
        return chosen
    device = device or str(next(model.parameters()).device)
    return "fast" if device.startswith("cpu") and supports(model) is None else "transformers"


def _engine_from_env() -> str | None:
    """``REFLECTNB_ENGINE``'s engine (checked), or ``None`` when it is not set."""
    import os

    chosen = os.environ.get("REFLECTNB_ENGINE", "").strip()
    return check_engine(chosen) if chosen else None


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise OptionError(f"`engine` must be one of {', '.join(ENGINES)}; got {engine!r}")
    return engine


def fast_dtype(requested: torch.dtype | None) -> torch.dtype:
    """The fast engine's weight dtype: the one asked for, else ``engine.default_dtype`` (bf16 where the
    CPU computes it natively, else fp32; ``REFLECTNB_ENGINE_DTYPE`` overrides it)."""
    if requested is not None:
        return requested
    from reflectnb.backends.engine import default_dtype

    return default_dtype(_native_bf16())


def _native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def default_reflection_ids(tokenizer) -> frozenset[int]:
    """Ids flagged ``is_reflection`` in token traces: the default reflection words,
    every case and leading-space variant (so a mid-sentence " but" counts too)."""
    from reflectnb.decoding.vocab import ReflectionVocab

    return ReflectionVocab(tokenizer, variants="all_case_space").ids


def _offline() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "") not in ("", "0")


class LocalBackend(Backend):
    """A transformers causal LM running in this process.

    Parameters
    ----------
    model, tokenizer : a loaded ``PreTrainedModel`` and its tokenizer.
    model_loader : callable, optional
        Loads the transformers model on first use of ``backend.model``; ``model`` is
        then a stand-in holding the weights the fast engine copies
        (``checkpoint.CheckpointModel``). Cold load skips transformers' modeling
        code this way (``load_model("smollm2-135m")`` does it).
    name : str
        The registry name shown in traces.
    reflection_ids : iterable of int, optional
        Token ids flagged ``is_reflection`` in the token trace.
    engine : ``"transformers"`` (default here) or ``"fast"``; see the module docstring.
    engine_dtype : torch.dtype, optional
        The fast engine's weight dtype (default: ``engine.default_dtype``).
    repetition_default : bool
        Whether the repetition stop is on when ``GenerationParams.repetition_stop`` is None.

    Examples
    --------
    >>> backend = reflectnb.load_model("smollm2-135m")          # doctest: +SKIP
    >>> backend.generate_one("Say hi", GenerationParams(max_new_tokens=5)).text  # doctest: +SKIP
    """

    can_stream = True
    can_batch = True
    can_process_logits = True
    has_logprobs = True

    def __init__(self, model, tokenizer, name: str = "local", reflection_ids=(), engine: str = "transformers",
                 engine_dtype: torch.dtype | None = None, repetition_default: bool = False,
                 model_loader: Callable[[], Any] | None = None):
        self._model, self._model_loader = model, model_loader
        self._model_lock = threading.Lock()
        self.tokenizer = tokenizer
        self.name = name
        self.reflection_ids = frozenset(int(i) for i in reflection_ids)
        self.repetition_default = repetition_default
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.engine = check_engine(engine)
        self.fast = self._fast_generator(engine_dtype) if engine == "fast" else None
        if self.fast is None:
            self._load_model()  # the transformers engine decodes with the model itself: load it now

    @property
    def model(self):
        """The transformers model (loaded here on first use when the backend was built with ``model_loader``)."""
        self._load_model()
        return self._model

    def _load_model(self) -> None:
        if self._model_loader is not None:
            with self._model_lock:  # two threads asking at once load it once
                if self._model_loader is not None:
                    self._model, self._model_loader = self._model_loader(), None

    @property
    def model_loaded(self) -> bool:
        """Whether ``backend.model`` is the transformers model already (no load on first use)."""
        return self._model_loader is None

    def _fast_generator(self, dtype: torch.dtype | None):
        from reflectnb.backends.engine import FastLlama
        from reflectnb.backends.engine_loop import FastGenerator

        engine = FastLlama(self._model, fast_dtype(dtype))
        return FastGenerator(engine, self.tokenizer.pad_token_id, stop_ids(self._model, self.tokenizer))

    @classmethod
    def from_pretrained(cls, path: str, name: str | None = None, device=None, dtype=None,
                        fast_tokenizer: bool = False, engine: str | None = None,
                        repetition_default: bool = False, lazy_model: bool = False) -> "LocalBackend":
        """Load ``path``. The model loads in ``dtype`` (default fp32 on a CPU); the fast
        engine computes in ``dtype`` when one is given, else in ``engine.default_dtype``.

        ``lazy_model=True``: when the fast engine runs the fp32 CPU model and
        ``checkpoint.py`` reads the folder, the engine copies its weights from the
        safetensors and the transformers model loads on first use of ``backend.model``."""
        engine = check_engine(engine) if engine is not None else None
        weights = checkpoint_weights(path, device, dtype, engine) if lazy_model else None
        if weights is None:
            (tokenizer, model), loader = load_pretrained(path, device, dtype, fast_tokenizer), None
        else:
            tokenizer, model = load_tokenizer(path, fast_tokenizer), weights
            loader = partial(load_transformers_model, path, device, dtype)
        engine_dtype = next(model.parameters()).dtype if dtype is not None else None
        return cls(model, tokenizer, name=name or f"hf:{path}", reflection_ids=default_reflection_ids(tokenizer),
                   engine=engine or default_engine(model, device), engine_dtype=engine_dtype,
                   repetition_default=repetition_default, model_loader=loader)

    @property
    def device(self) -> torch.device:
        return next(self._model.parameters()).device

    @property
    def dtype(self) -> str:
        """The dtype generation runs in (the fast engine's weights, or the model's)."""
        dtype = self.fast.engine.dtype if self.fast is not None else next(self.model.parameters()).dtype
        return str(dtype).removeprefix("torch.")

    def describe(self) -> str:
        """``"fast engine, bfloat16"``: what ``%reflectnb`` and the trace show."""
        return f"{self.engine} engine, {self.dtype}"

    def render(self, prompt: Prompt) -> str:
        """The exact text fed to the model: raw text, or the chat template applied."""
        messages = as_messages(prompt)
        if messages is None:
            return prompt  # type: ignore[return-value]
        if not self.tokenizer.chat_template:
            return "\n".join(f"{m.role}: {m.content}" for m in messages) + "\nassistant:"
        return self.tokenizer.apply_chat_template([m.to_openai() for m in messages],
                                                  add_generation_prompt=True, tokenize=False)

    def encode(self, prompts: Sequence[Prompt]) -> dict[str, torch.Tensor]:
        texts = [self.render(p) for p in prompts]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.device) for k, v in batch.items()}

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None,
                 on_token: TokenCallback | None = None) -> list[Generation]:
        params = params or GenerationParams()
        self.check_params(params)
        inputs = self.encode(prompts)
        recorder = ScoreRecorder(params.logits_processors, params.top_logprobs)
        streamer = TokenStreamer(self.tokenizer, recorder, len(prompts), stop_ids(self._model, self.tokenizer),
                                 on_token, self.reflection_ids)
        stops = RowStops(streamer, params.stop, resolve_repetition(params.repetition_stop, self.repetition_default))
        start = time.perf_counter()
        try:
            self._run(inputs, params, recorder, streamer, stops)
        except KeyboardInterrupt:
            raise GenerationInterrupted(self._results(prompts, inputs, params, streamer, stops, start,
                                                      True)) from None
        return self._results(prompts, inputs, params, streamer, stops, start, False)

    def _run(self, inputs, params: GenerationParams, recorder, streamer, stops: RowStops) -> None:
        for processor in params.logits_processors:
            if hasattr(processor, "set_prompt_len"):
                processor.set_prompt_len(inputs["input_ids"].shape[1])
        if params.seed is not None:
            torch.manual_seed(params.seed)
        processors = [*params.logits_processors, recorder]
        if self.fast is not None:
            sample = None if params.temperature == 0 else \
                _warpers(params.temperature, params.top_k, params.top_p)
            self.fast.generate(inputs["input_ids"], inputs["attention_mask"], params.max_new_tokens,
                               processors, sample, streamer.put, stops)
            return
        with torch.inference_mode():
            self.model.generate(**inputs, **self._generate_kwargs(params), streamer=streamer,
                                logits_processor=processors, stopping_criteria=stops.criteria())

    def _generate_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_new_tokens,
                                  "pad_token_id": self.tokenizer.pad_token_id}
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p,
                          top_k=params.top_k or 0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        return kwargs

    def _results(self, prompts, inputs, params, streamer: TokenStreamer, stops: RowStops, start: float,
                 interrupted: bool) -> list[Generation]:
        seconds = time.perf_counter() - start
        prompt_lens = inputs["attention_mask"].sum(-1).tolist()
        record = {**params.to_dict(), "engine": self.engine, "dtype": self.dtype}
        out = []
        for row, prompt in enumerate(prompts):
            text, finish = self._finish(streamer, stops, row, params, interrupted)
            out.append(Generation(text=text, model=self.name, prompt=prompt, tokens=streamer.events[row],
                                  prompt_tokens=int(prompt_lens[row]), seconds=seconds,
                                  completion_tokens=len(streamer.ids[row]), finish_reason=finish,
                                  params=dict(record)))
        return out

    @staticmethod
    def _finish(streamer: TokenStreamer, stops: RowStops, row: int, params: GenerationParams,
                interrupted: bool):
        text = streamer.texts[row]
        for stop in params.stop:
            if stop in text:
                return text[: text.index(stop)], "stop"
        if row in stops.repeated:
            return text, REPETITION
        if interrupted and not streamer.done[row]:
            return text, "interrupted"
        return text, "stop" if streamer.done[row] else "length"


def stop_ids(model: Any, tokenizer: Any) -> set[int]:
    """The ids that end a row: the generation config's and tokenizer's end-of-sequence ids, and the pad id.

    The pad id belongs: batched ``generate`` fills a finished row with it, so it is
    never text, and a loop that samples it has nothing more to say. (SmolLM2's pad
    id *is* its end id, ``<|im_end|>``; a model without a pad token gets the end
    token as pad in :class:`LocalBackend`.) The generation controllers stop on the
    same ids, so both decode loops end where ``generate`` does.
    """
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids])
    ids.update((tokenizer.eos_token_id, tokenizer.pad_token_id))
    return {int(i) for i in ids if i is not None}


def _warpers(temperature: float, top_k: int | None, top_p: float) -> list:
    from reflectnb.backends.engine_loop import warpers

    return warpers(temperature, top_k, top_p)

