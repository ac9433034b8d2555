"""End to end on the real embedded model (<= 4 items, <= 16 new tokens): every layer, nothing scripted."""

from __future__ import annotations

import pytest

from reflectnb.evaluate import compare

pytestmark = pytest.mark.model


def test_baseline_and_reflect_on_reasoning_gym_with_the_embedded_model(smol_backend, trace_file):
    result = compare("rg:basic_arithmetic", ["baseline", "reflect(rounds=1)"], model=smol_backend, n=3, seed=5,
                     max_tokens=16, batch_size=3, progress=False)
    summary = result.summary().set_index("method")
    assert summary["n"].tolist() == [3, 3]
    assert (summary["tokens_per_item"] > 0).all() and (summary["tokens_per_item"] <= 3 * 16).all()
    assert (summary["unparsed"] + summary["correct"] <= 3).all()
    matrix = result.outcome_matrix()
    assert matrix["round"].tolist() == ["1", "first→final"] and (matrix["items"] == 3).all()
    cols = ["wrong→right", "right→wrong", "right→right", "wrong→wrong"]
    assert (matrix[cols].sum(axis=1) == 3).all()
    for r in result.rows_of("reflect(rounds=1)"):
        assert len(r["round_answers"]) == 2 and r["tokens"] > 0
    from reflectnb.store import open_store

    stored = open_store().sql("SELECT kind, count(*) AS n, sum(completion_tokens) AS tokens FROM runs "
                              "WHERE status = 'completed' GROUP BY kind ORDER BY kind")
    assert stored["n"].tolist() == [3, 3] and (stored["tokens"] > 0).all()
    tokens = open_store().sql("SELECT count(*) AS n FROM tokens")["n"][0]
    assert tokens == sum(r["tokens"] for r in result.rows)  # every generated token is in the store


def test_batched_and_unbatched_baseline_agree_on_greedy_answers(smol_backend):
    rows = [{"question": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in [(2, 3), (10, 7), (4, 4)]]
    batched = compare(rows, ["baseline"], model=smol_backend, max_tokens=12, batch_size=3, trace=False, progress=False)
    single = compare(rows, ["baseline"], model=smol_backend, max_tokens=12, batch_size=1, trace=False, progress=False)
    same = sum(a["final_text"][:20] == b["final_text"][:20] for a, b in zip(batched.rows, single.rows))
    assert same >= 2  # left padding may flip a near-tie, but greedy texts should mostly match


def test_a_schedule_method_biases_the_embedded_model_and_the_trace_records_it(smol_backend, trace_file):
    rows = [{"question": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in [(2, 3), (10, 7)]]
    # nothing kept from earlier tests' calls: reused bf16 keys (prefilled in another batch shape) may move a near-tie
    smol_backend.fast.forget()
    result = compare(rows, ["baseline@constant(8)"], model=smol_backend, max_tokens=8, batch_size=2, progress=False)
    assert result.summary()["n"].tolist() == [2]
    from reflectnb.store import open_store

    tokens = open_store().sql("""SELECT count(*) AS n, count(schedule_value) AS scheduled, min(schedule_value) AS low,
        max(schedule_value) AS high, count(*) FILTER (WHERE is_reflection) AS reflective FROM tokens""").iloc[0]
    assert tokens["scheduled"] == tokens["n"] > 0 and tokens["low"] == tokens["high"] == 8.0  # every token biased by 8
    assert tokens["reflective"] >= 2  # a +8 bias on "But", "Wait", … makes the model use them
    runs = open_store().sql("SELECT json_extract_string(params, '$.schedule') AS schedule, "
                            "json_extract_string(params, '$.generation.logits_processors[0]') AS processor FROM runs")
    assert runs.values.tolist() == [["constant(8)", "WordScheduleProcessor"]] * 2


def test_the_same_model_on_another_engine_or_dtype_is_a_different_evaluation(smol_backend):
    from reflectnb.backends import load_model
    from reflectnb.evaluate import default_eval_id, load_tasks
    from reflectnb.evaluate.identity import backend_dtype

    fp32 = load_model("smollm2-135m", engine="transformers")
    bf16 = load_model("smollm2-135m", engine="transformers", dtype="bfloat16")
    tasks = load_tasks([{"question": "2+2?", "answer": "4"}])
    settings = {"temperature": 0.0, "max_tokens": 8, "seed": 0}
    assert fp32.name == bf16.name == smol_backend.name
    assert (backend_dtype(fp32), backend_dtype(bf16)) == ("transformers engine, float32", "transformers engine, bfloat16")
    assert backend_dtype(smol_backend) == f"fast engine, {smol_backend.dtype}"  # the CPU default
    ids = {default_eval_id(tasks, b, settings) for b in (fp32, bf16, smol_backend)}
    assert len(ids) == 3
