"""HTTP backend benchmark: requests in flight at once, ratios measured in one run.

* Loopback: 32 chat prompts to the test suite's loopback server (``tests/openai_server.py``,
  in its own process: it streams, serves every request in its own thread, and takes a
  fixed time per token),
  sent by one ``generate`` call (16 in flight, the default) against 32 ``generate_one``
  calls one after another (goal >= 10x faster).
* A real batching server: ``transformers serve --continuous-batching`` on the embedded
  model (offline, on a loopback socket), the same chat prompts sent by reflectnb's
  ``generate`` and by the official ``openai`` client's ``AsyncOpenAI`` with
  ``asyncio.gather`` (all at once, streaming, the same settings); reflectnb's rate over
  the client's (goal >= 0.9x). Runs alternate (who goes first, too) and the best of
  ``--repeats`` counts, since a shared machine's load moves between runs.

Usage: ``python benchmarks/bench_http.py [--prompts 32] [--delay 0.01] [--serve-prompts 16]
[--serve-tokens 16] [--no-serve]``; writes ``benchmarks/results/http.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from report import Goal, write_result

from reflectnb.backends.base import GenerationParams
from reflectnb.backends.openai_http import OpenAIBackend
from reflectnb.trace import Message

HERE = Path(__file__).resolve().parent

WORDS = " ".join(f"w{i}" for i in range(16))  # 16 streamed tokens per loopback reply


def chats(n: int) -> list[list[Message]]:
    return [[Message("user", f"Question {i}: name one animal that lives in the sea.")] for i in range(n)]


SERVE_LOOPBACK = """
import sys, time
sys.path.insert(0, sys.argv[1])
from openai_server import OpenAIServer, Reply
with OpenAIServer() as server:
    server.default = Reply(sys.argv[2], delay=float(sys.argv[3]))
    print(server.url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    print(server.max_in_flight, flush=True)
"""


def loopback(prompts: int, delay: float) -> dict:
    """Both ways against the loopback server, run in its own process (as a real server would be)."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE_LOOPBACK, str(HERE.parent / "tests"), WORDS, str(delay)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        model = OpenAIBackend("bench", proc.stdout.readline().strip())
        model.generate(chats(2))  # warm-up: imports, first connections
        start = time.perf_counter()
        for prompt in chats(prompts):
            model.generate_one(prompt)
        sequential = time.perf_counter() - start
        start = time.perf_counter()
        gens = model.generate(chats(prompts))
        concurrent = time.perf_counter() - start
        assert all(g.text == WORDS for g in gens)
    finally:
        out, _ = proc.communicate("", timeout=30)
    return {"prompts": prompts, "tokens_each": 16, "delay_per_token_s": delay, "in_flight": model.in_flight(),
            "sequential_s": sequential, "concurrent_s": concurrent, "speedup": sequential / concurrent,
            "max_in_flight_seen_by_server": int(out.split()[-1])}


class TransformersServe:
    """``transformers serve --continuous-batching`` on the embedded model, on a socket bound here."""

    def __init__(self) -> None:
        from reflectnb.backends.embedded import ensure_converted

        self.path = str(ensure_converted(progress=False))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE.parent / "tests" / "serve_on_socket.py"), str(self.sock.fileno()),
             "transformers.cli.transformers", "serve", self.path, "--continuous-batching", "--device", "cpu",
             "--log-level", "warning"],
            pass_fds=[self.sock.fileno()], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.sock.close()


def official_client(url: str, model: str, prompts: list[list[Message]], tokens: int) -> float:
    """Seconds for the official AsyncOpenAI client to stream every prompt, all sent at once."""
    import openai

    async def one(client, messages) -> str:
        stream = await client.chat.completions.create(
            model=model, messages=[m.to_openai() for m in messages], max_tokens=tokens, temperature=0.0,
            stream=True, stream_options={"include_usage": True})
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def all_at_once() -> float:
        async with openai.AsyncOpenAI(base_url=url, api_key="EMPTY", timeout=600, max_retries=0) as client:
            start = time.perf_counter()
            await asyncio.gather(*(one(client, p) for p in prompts))
            return time.perf_counter() - start

    return asyncio.run(all_at_once())


def reflectnb_client(model: OpenAIBackend, prompts: list[list[Message]], tokens: int) -> float:
    start = time.perf_counter()
    model.generate(prompts, GenerationParams(max_new_tokens=tokens))
    return time.perf_counter() - start


def against_official(prompts: int, tokens: int, repeats: int) -> dict:
    serve = TransformersServe()
    try:
        model = OpenAIBackend(serve.path, serve.url, timeout=600, max_retries=0, concurrency=prompts, logprobs=False)
        batch = chats(prompts)
        start = time.perf_counter()
        reflectnb_client(model, batch[:2], 4)  # warm-up: waits for the model to load
        loaded = time.perf_counter() - start
        official_client(serve.url, serve.path, batch[:2], 4)
        theirs, ours = [], []
        for i in range(repeats):  # alternate who goes first: the load on a shared machine drifts
            if i % 2 == 0:
                theirs.append(official_client(serve.url, serve.path, batch, tokens))
            ours.append(reflectnb_client(model, batch, tokens))
            if i % 2 == 1:
                theirs.append(official_client(serve.url, serve.path, batch, tokens))
            print(f"  official {theirs[-1]:.2f} s, reflectnb {ours[-1]:.2f} s", flush=True)
    finally:
        serve.close()
    return {"prompts": prompts, "max_tokens": tokens, "startup_and_warmup_s": loaded, "official_s": theirs,
            "reflectnb_s": ours, "rate_ratio": min(theirs) / min(ours)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.01, help="loopback server: seconds per token")
    parser.add_argument("--serve-prompts", type=int, default=16)
    parser.add_argument("--serve-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-serve", action="store_true", help="skip the transformers serve comparison")
    args = parser.parse_args()
    loop = loopback(args.prompts, args.delay)
    print(f"loopback, {args.prompts} prompts: one after another {loop['sequential_s']:.2f} s, "
          f"{loop['in_flight']} in flight {loop['concurrent_s']:.2f} s, speed-up {loop['speedup']:.1f}x (goal >= 10x)")
    result = {"loopback": loop}
    goals = [Goal(f"{args.prompts} prompts to a loopback server, concurrent vs one after another",
                  loop["speedup"], ">=", 10)]
    if not args.no_serve:
        real = against_official(args.serve_prompts, args.serve_tokens, args.repeats)
        print(f"transformers serve, {args.serve_prompts} prompts x {args.serve_tokens} tokens: "
              f"reflectnb at {real['rate_ratio']:.2f}x the official client's rate (goal >= 0.9x)")
        result["transformers_serve"] = real
        goals.append(Goal("reflectnb ÷ official openai client on transformers serve (rate)",
                          real["rate_ratio"], ">=", 0.9))
    write_result("http", result, goals)


if __name__ == "__main__":
    main()
