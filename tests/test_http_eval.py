"""Evaluation over a server backend keeps as many items in flight as the backend allows (real loopback HTTP)."""

from __future__ import annotations

import pytest
from openai_server import OpenAIServer, Reply

from reflectnb.backends.openai_http import OpenAIBackend
from reflectnb.evaluate import compare
from reflectnb.evaluate.compare import default_batch_size

ROWS = [{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(20)]


@pytest.fixture()
def server():
    with OpenAIServer() as srv:
        # ~0.4 s a reply: long enough that all 16 requests of a wave are in flight together on a busy machine
        # (at 0.01 s a token one reply could finish before the 16th request arrived)
        srv.default = Reply("Adding one. The answer is 7", delay=0.05)
        yield srv


def test_an_evaluation_over_http_sends_a_batch_as_wide_as_the_backend_keeps_in_flight(server):
    backend = OpenAIBackend("m", server.url, concurrency=16, max_retries=0)
    result = compare(ROWS, ["baseline"], model=backend, trace=False, progress=False)
    assert result.settings["batch_size"] == 16
    assert server.max_in_flight == 16 and len(server.requests) == 20
    assert result.summary().iloc[0][["n", "correct"]].tolist() == [20, 1]  # only "6 + 1" is 7


def test_a_server_backend_with_few_in_flight_and_a_local_model_keep_the_default_of_8(server):
    from reflectnb.backends.scripted import ScriptedBackend

    assert default_batch_size(OpenAIBackend("m", server.url, concurrency=4)) == 8
    assert default_batch_size(OpenAIBackend("m", server.url, concurrency=32)) == 32
    assert default_batch_size(ScriptedBackend(["x"])) == 8


def test_a_batch_size_given_wins_over_the_backend_s_concurrency(server):
    backend = OpenAIBackend("m", server.url, concurrency=16, max_retries=0)
    result = compare(ROWS[:6], ["baseline"], model=backend, batch_size=2, trace=False, progress=False)
    assert result.settings["batch_size"] == 2 and server.max_in_flight == 2
