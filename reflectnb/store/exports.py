"""Exports for post-training libraries: SFT and preference JSONL, and Parquet tables.

Contract
--------
* :func:`export_sft` writes one example per run that has a final answer:
  ``fmt='trl'`` → ``{"messages": [...prompt, assistant answer], "metadata": {...}}``
  (TRL conversational language modelling); ``fmt='openai'`` →
  ``{"messages": [...]}`` only (OpenAI's fine-tuning file rejects unknown keys),
  with provenance in a sidecar ``<name>.metadata.jsonl``, line for line.
* :func:`export_dpo` writes a pair **only where a score ranks two answers of
  the same run** (draft vs refined, loser vs winner): per run and score name
  the best-scored answer is ``chosen`` and the worst ``rejected``; ties and
  identical texts give no pair. A score on an evaluator step (feedback,
  critique, judge, moderator) counts for the answer it evaluates (its parent).
  ``fmt='trl'`` → ``{"prompt", "chosen", "rejected", "metadata"}``
  (conversational); ``fmt='openai'`` →
  ``{"input": {"messages"}, "preferred_output", "non_preferred_output"}``.
* The prompt is ``runs.task`` as a user message when recorded
  (``run.set_result(..., task=...)``), else the messages of the run's first
  generation. Rows are de-duplicated by a hash of their training fields.
* :func:`export_parquet` writes each table, optionally for some runs only.

Non-goals: tokenisation, chat templates, train/test splits.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterable, Sequence

from reflectnb.errors import OptionError
from reflectnb.store import rows, schema

EVALUATOR_KINDS = ("feedback", "critique", "judge", "moderator", "verdict")
FORMATS = ("trl", "openai")


def _check_fmt(fmt: str) -> None:
    if fmt not in FORMATS:
        raise OptionError(f"`fmt` must be one of {list(FORMATS)}, got {fmt!r}")


def _runs(store: Any, run_ids: Sequence[str] | None) -> list[dict[str, Any]]:
    where = "list_contains($ids, r.run_id)" if run_ids is not None else "r.status = 'completed'"
    frame = store.sql(f"""SELECT r.run_id, r.kind, r.model, r.status, r.task, r.final_answer,
        (SELECT g.prompt FROM generations g WHERE g.run_id = r.run_id ORDER BY g.gen_index LIMIT 1) AS first_prompt
        FROM runs r WHERE {where} ORDER BY r.started_at""",
        {"ids": list(run_ids)} if run_ids is not None else None)
    return records(frame)


def records(frame: Any) -> list[dict[str, Any]]:
    """Rows of a DataFrame as dicts, with missing values as ``None`` (not NaN/NA)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def prompt_messages(run: dict[str, Any]) -> list[dict[str, str]] | None:
    """The task as chat messages (see the module docstring), or None if unknown."""
    if run.get("task"):
        return [{"role": "user", "content": str(run["task"])}]
    raw = run.get("first_prompt")
    prompt = json.loads(raw) if isinstance(raw, str) else None
    if isinstance(prompt, list) and prompt:
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    if isinstance(prompt, str) and prompt:
        return [{"role": "user", "content": prompt}]
    return None


def _meta(run: dict[str, Any], export_id: str, **extra: Any) -> dict[str, Any]:
    return {"run_id": run["run_id"], "kind": run["kind"], "model": run["model"], "export_id": export_id,
            "schema_version": schema.SCHEMA_VERSION, "exported_at": rows.now().isoformat(), **extra}


def export_sft(store: Any, path: str | os.PathLike, run_ids: Sequence[str] | None = None,
               fmt: str = "trl") -> int:
    """SFT JSONL at ``path`` from each run's prompt and final answer; returns the row count.

    Examples
    --------
    >>> store.export_sft("sft.jsonl", fmt="trl")  # doctest: +SKIP
    12
    """
    _check_fmt(fmt)
    export_id, out = uuid.uuid4().hex, []
    for run in _runs(store, run_ids):
        prompt = prompt_messages(run)
        if not prompt or not run.get("final_answer"):
            continue
        messages = prompt + [{"role": "assistant", "content": run["final_answer"]}]
        out.append(({"messages": messages}, _meta(run, export_id, status=run["status"])))
    return _write(path, out, fmt)


def export_dpo(store: Any, path: str | os.PathLike, run_ids: Sequence[str] | None = None,
               fmt: str = "trl", score: str | None = None) -> int:
    """Preference JSONL at ``path`` from score-ranked answer pairs; returns the pair count."""
    _check_fmt(fmt)
    export_id, out = uuid.uuid4().hex, []
    runs = {r["run_id"]: r for r in _runs(store, run_ids)}
    for pair in _ranked_pairs(store, list(runs), score):
        run = runs[pair["run_id"]]
        prompt = prompt_messages(run)
        if not prompt:
            continue
        chosen = [{"role": "assistant", "content": pair["chosen"]}]
        rejected = [{"role": "assistant", "content": pair["rejected"]}]
        record = ({"prompt": prompt, "chosen": chosen, "rejected": rejected} if fmt == "trl" else
                  {"input": {"messages": prompt}, "preferred_output": chosen, "non_preferred_output": rejected})
        info = {k: pair[k] for k in ("score_name", "chosen_step", "rejected_step", "chosen_score",
                                     "rejected_score")}
        out.append((record, _meta(run, export_id, margin=pair["chosen_score"] - pair["rejected_score"], **info)))
    return _write(path, out, fmt)


def _ranked_pairs(store: Any, run_ids: list[str], score: str | None) -> Iterable[dict[str, Any]]:
    frame = store.sql("""WITH subject AS (
            SELECT sc.run_id, sc.name, sc.value,
                CASE WHEN list_contains($evaluators, s.kind) AND s.parent IS NOT NULL
                     THEN s.parent ELSE s.step_index END AS step_index
            FROM scores sc JOIN steps s ON s.run_id = sc.run_id AND s.step_index = sc.target_step
            WHERE sc.value IS NOT NULL AND isfinite(sc.value) AND list_contains($ids, sc.run_id)
                AND ($score IS NULL OR sc.name = $score))
        SELECT j.run_id, j.name, j.step_index, avg(j.value) AS value, any_value(a.text) AS text
        FROM subject j JOIN steps a USING (run_id, step_index)
        WHERE a.role = 'assistant' AND NOT list_contains($evaluators, a.kind)
        GROUP BY ALL ORDER BY j.run_id, j.name, j.step_index""",
        {"evaluators": list(EVALUATOR_KINDS), "ids": run_ids, "score": score})
    for (run_id, name), group in frame.groupby(["run_id", "name"], sort=False):
        best = group.sort_values(["value", "step_index"]).iloc[-1]
        worst = group.sort_values(["value", "step_index"], ascending=[True, True]).iloc[0]
        if best["value"] > worst["value"] and best["text"] != worst["text"]:
            yield {"run_id": run_id, "score_name": name, "chosen": best["text"], "rejected": worst["text"],
                   "chosen_step": int(best["step_index"]), "rejected_step": int(worst["step_index"]),
                   "chosen_score": float(best["value"]), "rejected_score": float(worst["value"])}


def _write(path: str | os.PathLike, out: list[tuple[dict, dict]], fmt: str) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seen, kept = set(), []
    for record, meta in out:
        digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append(({**record, "metadata": {**meta, "sha256": digest}} if fmt == "trl" else record,
                         {**meta, "sha256": digest}))
    _jsonl(path, (record for record, _ in kept))
    if fmt == "openai":
        _jsonl(path.with_suffix(".metadata.jsonl"), (meta for _, meta in kept))
    return len(kept)


def _jsonl(path: Path, records: Iterable[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)  # never leave a half-written export under the final name


def export_parquet(store: Any, folder: str | os.PathLike, run_ids: Sequence[str] | None = None) -> list[str]:
    """Each table as ``<folder>/<table>.parquet`` (all runs, or ``run_ids``); returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store.writer.flush(timeout=10.0)
    paths = []
    with store.db.connect(read_only=not store.db.memory) as con:
        for name in schema.TABLES:
            query = f"SELECT * FROM {name}" + (" WHERE list_contains($ids, run_id)" if run_ids is not None else "")
            target = folder / f"{name}.parquet"
            con.sql(query, params={"ids": list(run_ids)} if run_ids is not None else None).to_parquet(str(target))
            paths.append(str(target))
    return paths
