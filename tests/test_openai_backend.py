"""The OpenAI-compatible backend against a real OpenAI-compatible server on localhost:
llama-cpp-python's server running the same SmolLM2 GGUF."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from ragtune.llm import CachedLLM, LLMCache, OpenAICompatibleBackend, SamplingParams, default_gguf_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", default_gguf_path(), "--host", "127.0.0.1",
         "--port", str(port), "--model_alias", "smollm2", "--n_ctx", "1024"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                    if json.load(response)["data"]:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("llama_cpp.server did not start")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_openai_backend_returns_schema_json_and_caches(server_url, tmp_path):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    llm = CachedLLM(OpenAICompatibleBackend(server_url, "smollm2", json_mode="json_object"), LLMCache(tmp_path))
    messages = [{"role": "user", "content": "Name one symptom of depression. Reply as JSON."}]
    first = llm.complete(messages, SamplingParams(temperature=0.0, max_tokens=40, seed=1), schema)
    assert isinstance(json.loads(first.text)["answer"], str)
    assert first.model == f"openai:smollm2@{server_url}" and first.completion_tokens > 0
    again = llm.complete(messages, SamplingParams(temperature=0.0, max_tokens=40, seed=1), schema)
    assert again.cached and llm.calls == 1


def test_openai_backend_error_is_raised_not_swallowed(tmp_path):
    backend = OpenAICompatibleBackend(f"http://127.0.0.1:{_free_port()}/v1", "smollm2", timeout_s=2)
    with pytest.raises(Exception):
        backend.chat([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=5), None)
