"""Runs as OpenTelemetry spans in OTLP/JSON, with GenAI and OpenInference attributes.

Contract
--------
* One trace per run (``traceId`` = the run's UUID as 32 hex digits): a root
  ``invoke_workflow {kind}`` span, one child span per step (``chat {model}``
  when the step has a generation, else ``{kind}``) and one per tree node
  (``graph.node.id`` / ``graph.node.parent_id``). Scores become
  ``gen_ai.evaluation.result`` events on the span of the step they target.
* Attributes use OTel GenAI names (``gen_ai.operation.name``,
  ``gen_ai.request.model``, ``gen_ai.usage.*``, ``gen_ai.response.finish_reasons``,
  ``gen_ai.agent.name``) and OpenInference names (``openinference.span.kind``,
  ``input.value``, ``output.value``, ``llm.token_count.*``); loop roles use
  ``reflectnb.step.kind`` / ``reflectnb.iteration`` (no standard has them).
* ``content=False`` leaves prompts and outputs out (OTel: content is opt-in);
  with content, key-like patterns are redacted again.
* The file is OTLP/JSON (``{"resourceSpans": [...]}``) as Phoenix, Langfuse and
  the OTel collector's file receiver read it. Token rows are not exported.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from reflectnb.store.exports import records
from reflectnb.store.redact import redact_text

EVALUATOR_KINDS = {"feedback", "critique", "judge", "moderator", "verdict"}
STATUS = {"completed": 1, "failed": 2, "interrupted": 2, "running": 0}


def _isna(v: Any) -> bool:
    if v is None or isinstance(v, (list, tuple, dict)):
        return v is None
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _int(v: Any) -> int | None:
    return None if _isna(v) else int(v)


def _span_id(*parts: Any) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:16]


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    return {"stringValue": str(v)}


def _attrs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in d.items() if not _isna(v)]


def _ns(ts: Any) -> str:
    return "0" if _isna(ts) else str(int(ts.timestamp() * 1e9))


def export_otlp(store: Any, path: str | os.PathLike, run_ids: Sequence[str] | None = None,
                content: bool = True) -> int:
    """Write OTLP/JSON spans for ``run_ids`` (default: all runs) to ``path``; returns the span count.

    Examples
    --------
    >>> store.export_otlp("traces.otlp.json")  # doctest: +SKIP
    7
    """
    where = " WHERE list_contains($ids, run_id)" if run_ids is not None else ""
    params = {"ids": list(run_ids)} if run_ids is not None else None
    frames = {name: records(store.sql(f"SELECT * FROM {name}{where}", params))
              for name in ("runs", "steps", "generations", "scores", "nodes")}
    spans = []
    for run in frames["runs"]:
        spans.extend(_run_spans(run, frames, content))
    doc = {"resourceSpans": [{
        "resource": {"attributes": _attrs({"service.name": "reflectnb"})},
        "scopeSpans": [{"scope": {"name": "reflectnb.store"}, "spans": spans}]}]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return len(spans)


def _run_spans(run: dict[str, Any], frames: dict[str, list[dict]], content: bool) -> list[dict[str, Any]]:
    rid = run["run_id"]
    trace_id, root_id = rid.replace("-", ""), _span_id(rid)
    gens = {g["step_index"]: g for g in frames["generations"] if g["run_id"] == rid}
    scores = [s for s in frames["scores"] if s["run_id"] == rid]
    root = {"traceId": trace_id, "spanId": root_id, "name": f"invoke_workflow {run['kind']}", "kind": 1,
            "startTimeUnixNano": _ns(run["started_at"]), "endTimeUnixNano": _ns(run["ended_at"]),
            "attributes": _attrs({
                "gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": run["kind"],
                "gen_ai.request.model": run["model"], "openinference.span.kind": "CHAIN",
                "llm.invocation_parameters": run["params"], "reflectnb.run.status": run["status"],
                "reflectnb.stop_reason": run["stop_reason"],
                "output.value": _text(run["final_answer"], content)}),
            "status": {"code": STATUS.get(run["status"], 0),
                       "message": run["status"] if _isna(run["error"]) else run["error"]}}
    spans = [root]
    for step in (s for s in frames["steps"] if s["run_id"] == rid):
        spans.append(_step_span(step, gens.get(step["step_index"]), trace_id, root_id, run, content,
                                [s for s in scores if s["target_step"] == step["step_index"]]))
    for node in (n for n in frames["nodes"] if n["run_id"] == rid):
        spans.append({"traceId": trace_id, "spanId": _span_id(rid, "node", node["node_id"]),
                      "parentSpanId": root_id, "name": f"node {node['node_id']}", "kind": 1,
                      "startTimeUnixNano": _ns(node["recorded_at"]), "endTimeUnixNano": _ns(node["recorded_at"]),
                      "attributes": _attrs({
                          "openinference.span.kind": "CHAIN", "graph.node.id": str(node["node_id"]),
                          "graph.node.parent_id": None if _isna(node["parent"]) else str(node["parent"]),
                          "reflectnb.node.depth": _int(node["depth"]),
                          "reflectnb.node.value": node["value"], "reflectnb.node.visits": _int(node["visits"]),
                          "reflectnb.node.status": node["status"], "output.value": _text(node["text"], content)})})
    return spans


def _step_span(step: dict, gen: dict | None, trace_id: str, root_id: str, run: dict, content: bool,
               scores: list[dict]) -> dict[str, Any]:
    kind = "EVALUATOR" if step["kind"] in EVALUATOR_KINDS else ("LLM" if gen else "CHAIN")
    attrs = {"gen_ai.operation.name": "chat" if gen else None, "openinference.span.kind": kind,
             "reflectnb.step.kind": step["kind"], "reflectnb.step.index": int(step["step_index"]),
             "reflectnb.iteration": _int(step["round"]), "gen_ai.agent.name": step["agent"],
             "reflectnb.step.parent": _int(step["parent"]), "output.value": _text(step["text"], content)}
    end = step["created_at"]
    start_ns = _ns(end)
    if gen:
        attrs.update({"gen_ai.request.model": gen["model"] or run["model"],
                      "gen_ai.usage.input_tokens": _int(gen["prompt_tokens"]),
                      "gen_ai.usage.output_tokens": _int(gen["completion_tokens"]),
                      "llm.token_count.prompt": _int(gen["prompt_tokens"]),
                      "llm.token_count.completion": _int(gen["completion_tokens"]),
                      "gen_ai.response.finish_reasons": [gen["finish_reason"]],
                      "input.value": _text(gen["prompt"], content), "input.mime_type": "application/json"})
        start_ns = str(int(_ns(end)) - int((0.0 if _isna(gen["seconds"]) else gen["seconds"]) * 1e9))
    return {"traceId": trace_id, "spanId": _span_id(run["run_id"], step["step_index"]), "parentSpanId": root_id,
            "name": f"chat {attrs['gen_ai.request.model']}" if gen else step["kind"], "kind": 1,
            "startTimeUnixNano": start_ns, "endTimeUnixNano": _ns(end), "attributes": _attrs(attrs),
            "events": [_score_event(s, content) for s in scores]}


def _score_event(score: dict, content: bool) -> dict[str, Any]:
    return {"name": "gen_ai.evaluation.result", "timeUnixNano": _ns(score["created_at"]),
            "attributes": _attrs({"gen_ai.evaluation.name": score["name"],
                                  "gen_ai.evaluation.score.value": score["value"],
                                  "gen_ai.evaluation.score.label": score["label"],
                                  "gen_ai.evaluation.explanation": _text(score["explanation"], content)})}


def _text(value: Any, content: bool) -> str | None:
    if not content or _isna(value):
        return None
    return redact_text(str(value))
