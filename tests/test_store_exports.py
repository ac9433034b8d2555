"""Exports, validated the way their readers load them (JSON Schema, pandas, pyarrow)."""

from __future__ import annotations

import json
import re

import jsonschema
import pandas as pd
import pyarrow.parquet as pq
import pytest

from reflectnb.errors import OptionError
from reflectnb.store import open_store
from reflectnb.trace import Generation, Message, Score, Step, TokenEvent

MESSAGE = {"type": "object", "required": ["role", "content"], "additionalProperties": False,
           "properties": {"role": {"enum": ["system", "user", "assistant", "tool"]}, "content": {"type": "string"}}}
MESSAGES = {"type": "array", "minItems": 1, "items": MESSAGE}
ASSISTANT = {"type": "array", "minItems": 1, "maxItems": 1,
             "items": {**MESSAGE, "properties": {**MESSAGE["properties"], "role": {"const": "assistant"}}}}
METADATA = {"type": "object", "required": ["run_id", "model", "kind", "export_id", "sha256"]}
TRL_SFT = {"type": "object", "required": ["messages", "metadata"], "additionalProperties": False,
           "properties": {"messages": MESSAGES, "metadata": METADATA}}
TRL_DPO = {"type": "object", "required": ["prompt", "chosen", "rejected", "metadata"], "additionalProperties": False,
           "properties": {"prompt": MESSAGES, "chosen": ASSISTANT, "rejected": ASSISTANT, "metadata": METADATA}}
OPENAI_SFT = {"type": "object", "required": ["messages"], "additionalProperties": False,
              "properties": {"messages": MESSAGES}}
OPENAI_DPO = {"type": "object", "required": ["input", "preferred_output", "non_preferred_output"],
              "additionalProperties": False,
              "properties": {"input": {"type": "object", "required": ["messages"], "properties": {"messages": MESSAGES}},
                             "preferred_output": ASSISTANT, "non_preferred_output": ASSISTANT}}


def gen(text: str, task: str, n: int = 3) -> Generation:
    tokens = [TokenEvent(0, i, i, f"t{i}", -0.2, 0.4) for i in range(n)]
    return Generation(text, "m", [Message("system", "Be brief."), Message("user", task)], tokens, 5, n)


@pytest.fixture()
def store(trace_file):
    store = open_store()
    with store.run("reflect", "m", {}) as run:  # refined beats draft by a score
        run.on_step(Step("draft", "2+2=5", generation=gen("2+2=5", "What is 2+2?")))
        run.on_step(Step("feedback", "wrong", parent=0))
        run.on_step(Step("refine", "2+2=4", round=1, parent=1, generation=gen("2+2=4", "What is 2+2?")))
        run.on_score(Score("score", 0.0, target_step=0))
        run.on_score(Score("score", 1.0, target_step=2))
        run.set_result("2+2=4", "score_threshold", task="What is 2+2?")
    with store.run("critique", "m", {}) as run:  # scores on critique steps rank the answers they judge
        run.on_step(Step("answer", "Paris is in Spain", agent="actor", generation=gen("Paris is in Spain", "Where is Paris?")))
        run.on_step(Step("critique", "incorrect", agent="critic", parent=0))
        run.on_step(Step("revise", "Paris is in France", agent="actor", round=1, parent=1))
        run.on_step(Step("critique", "correct", agent="critic", round=1, parent=2))
        run.on_score(Score("final_correct", 0.0, target_step=1))
        run.on_score(Score("final_correct", 1.0, target_step=3))
        run.set_result("Paris is in France", "critic_satisfied")
    with store.run("reflect", "m", {}) as run:  # revised but never scored: no preference pair
        run.on_step(Step("draft", "a", generation=gen("a", "Say a letter")))
        run.on_step(Step("refine", "b", parent=0))
        run.set_result("b", "max_rounds", task="Say a letter")
    with pytest.raises(KeyboardInterrupt):
        with store.run("reflect", "m", {}) as run:  # interrupted runs are not training data by default
            run.on_step(Step("draft", "half", generation=gen("half", "Unfinished")))
            raise KeyboardInterrupt
    return store


def read_jsonl(path) -> list[dict]:
    frame = pd.read_json(path, lines=True)  # how pandas/`datasets` JSON loaders read it
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def test_trl_sft_has_one_conversation_per_completed_run_with_provenance(store, tmp_path):
    path = tmp_path / "sft.jsonl"
    assert store.export_sft(path, fmt="trl") == 3
    records = read_jsonl(path)
    for record in records:
        jsonschema.validate(record, TRL_SFT)
    first = records[0]["messages"]
    assert first == [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "2+2=4"}]
    # no task recorded: the prompt is the messages of the run's first generation
    assert records[1]["messages"][:2] == [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Where is Paris?"}]


def test_openai_sft_has_only_messages_and_a_line_aligned_metadata_sidecar(store, tmp_path):
    path = tmp_path / "openai_sft.jsonl"
    assert store.export_sft(path, fmt="openai") == 3
    records, meta = read_jsonl(path), read_jsonl(tmp_path / "openai_sft.metadata.jsonl")
    for record in records:
        jsonschema.validate(record, OPENAI_SFT)
    assert len(meta) == 3 and meta[0]["kind"] == "reflect"


def test_dpo_pairs_exist_only_where_a_score_ranks_the_answers(store, tmp_path):
    path = tmp_path / "dpo.jsonl"
    assert store.export_dpo(path, fmt="trl") == 2
    records = read_jsonl(path)
    for record in records:
        jsonschema.validate(record, TRL_DPO)
    pairs = {(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in records}
    assert pairs == {("2+2=4", "2+2=5"), ("Paris is in France", "Paris is in Spain")}
    margins = sorted(r["metadata"]["margin"] for r in records)
    assert margins == [1.0, 1.0]


def test_openai_dpo_uses_input_preferred_and_non_preferred_output(store, tmp_path):
    path = tmp_path / "openai_dpo.jsonl"
    assert store.export_dpo(path, fmt="openai", score="score") == 1
    (record,) = read_jsonl(path)
    jsonschema.validate(record, OPENAI_DPO)
    assert record["preferred_output"][0]["content"] == "2+2=4"


def test_an_unknown_export_format_is_an_option_error(store, tmp_path):
    with pytest.raises(OptionError, match=r"`fmt` must be one of \['trl', 'openai'\], got 'alpaca'"):
        store.export_sft(tmp_path / "x.jsonl", fmt="alpaca")


def test_parquet_export_round_trips_every_table(store, tmp_path):
    paths = store.export_parquet(tmp_path / "pq")
    counts = {p.rsplit("/", 1)[1].removesuffix(".parquet"): pq.read_table(p).num_rows for p in paths}
    assert counts == {"runs": 4, "steps": 10, "generations": 5, "tokens": 15, "node_events": 0, "scores": 4}
    one = store.sql("SELECT run_id FROM runs WHERE kind = 'critique'")["run_id"].tolist()
    assert pq.read_table(store.export_parquet(tmp_path / "one", run_ids=one)[1]).num_rows == 4


def test_otlp_export_is_spans_with_genai_and_openinference_attributes(store, tmp_path):
    path = tmp_path / "spans.json"
    assert store.export_otlp(path) == 4 + 10
    doc = json.loads(path.read_text())
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert all(re.fullmatch(r"[0-9a-f]{32}", s["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", s["spanId"])
               for s in spans)
    roots = [s for s in spans if "parentSpanId" not in s]
    assert len(roots) == 4 and {s["status"]["code"] for s in roots} == {1, 2}
    chat = next(s for s in spans if s["name"] == "chat m")
    keys = {a["key"] for a in chat["attributes"]}
    assert {"gen_ai.operation.name", "gen_ai.usage.output_tokens", "openinference.span.kind", "input.value"} <= keys
    events = [e for s in spans for e in s.get("events", [])]
    assert len(events) == 4 and {e["name"] for e in events} == {"gen_ai.evaluation.result"}
