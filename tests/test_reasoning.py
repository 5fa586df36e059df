"""Reasoning models: thinking blocks split off before parsing and kept. Against a real server: the
llama.cpp server on the embedded SmolLM2 behind a proxy that makes it answer like a reasoning model
(a <think> block before the JSON, DeepSeek's reasoning_content field, or thinking cut off by max_tokens)."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request
from contextlib import contextmanager

import pytest

from ragtune.curate.exports import to_alpaca, to_sharegpt, with_thinking
from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa
from ragtune.llm.backends import OpenAICompatibleBackend
from ragtune.llm.client import CachedLLM, LLMCache
from ragtune.llm.reasoning import UNFINISHED, split_reasoning
from tests.conftest import chapter_of
from tests.servers import free_port, llama_server_url

THOUGHT = "The passage is about panic attacks, so the question should ask what they are."


def test_split_reasoning_handles_the_shapes_providers_send():
    assert split_reasoning('<think>\nplan\n</think>\n{"a": 1}') == ('{"a": 1}', "plan", True)
    assert split_reasoning('  <THINKING>x</THINKING>{"a": 1}') == ('{"a": 1}', "x", True)
    # Qwen3 / R1 chat templates open <think> in the prompt: the answer holds only the closing tag
    assert split_reasoning('first I read it\n</think>\n\n{"a": 1}') == ('{"a": 1}', "first I read it", True)
    assert split_reasoning('{"a": 1}', "from the field") == ('{"a": 1}', "from the field", True)
    assert split_reasoning("<think>cut off by max_tok") == ("", "cut off by max_tok", False)
    assert split_reasoning('{"a": "text mentioning </think> inside"}') == ('{"a": "text mentioning </think> inside"}', "", True)
    assert split_reasoning('{"a": 1}') == ('{"a": 1}', "", True)


@contextmanager
def reasoning_proxy(upstream: str):
    """http://127.0.0.1:port/<mode>/v1 forwards to the llama.cpp server and rewrites each chat answer:
    inline (a think block before the content), field (reasoning_content) or unfinished (only thinking)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _forward(self, body: bytes | None):
            mode, _, rest = self.path.lstrip("/").partition("/")
            request = urllib.request.Request(upstream.rsplit("/v1", 1)[0] + "/" + rest, data=body, method=self.command,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                data = json.load(response)
            if rest.endswith("chat/completions"):
                message = data["choices"][0]["message"]
                if mode == "inline":
                    message["content"] = f"<think>\n{THOUGHT}\n</think>\n\n{message['content']}"
                elif mode == "field":
                    message["reasoning_content"] = THOUGHT
                elif mode == "unfinished":
                    message["content"] = f"<think>\n{THOUGHT} Then I should also consider"
            payload = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            self._forward(None)

        def do_POST(self):
            self._forward(self.rfile.read(int(self.headers["Content-Length"])))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def proxy():
    with llama_server_url("--n_ctx", "2048") as upstream, reasoning_proxy(upstream) as url:
        yield url


@pytest.fixture(scope="module")
def plan(handbook_document, handbook_index, embedder):
    return plan_chapter_evidence(chapter_of(handbook_document, "anxiety-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=6, top_k=2))


SETTINGS = GenerationSettings(quota=2, max_waves=1, max_tokens=160, retries=0)


@pytest.mark.parametrize("mode", ["inline", "field"])
def test_thinking_is_kept_on_the_row_and_in_the_cache_not_parsed(proxy, plan, tmp_path, mode):
    llm = CachedLLM(OpenAICompatibleBackend(f"{proxy}/{mode}/v1", "smollm2", json_mode="json_object", concurrency=2), LLMCache(tmp_path))
    result = generate_chapter_qa(plan, llm, SETTINGS)
    assert result.qa_pairs, result.failures
    assert all(row["reasoning"] == THOUGHT for row in result.qa_pairs)
    assert all("<think>" not in row["question"] + row["answer"] for row in result.qa_pairs)
    assert not [f for f in result.failures if "JSON" in f["reason"]]  # the think block never reached the parser
    entry = json.loads(next(tmp_path.glob("*/*.json")).read_text())
    assert entry["reasoning"] == THOUGHT and not entry["text"].startswith("<think>")
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0  # the server's own counts
    rerun = generate_chapter_qa(plan, CachedLLM(llm.backend, LLMCache(tmp_path)), SETTINGS)
    assert rerun.llm_calls == 0 and [r["reasoning"] for r in rerun.qa_pairs] == [r["reasoning"] for r in result.qa_pairs]

    row = result.qa_pairs[0]
    thought = with_thinking(row)
    assert to_alpaca(thought)["output"] == f"<think>\n{THOUGHT}\n</think>\n\n{row['answer']}"
    assert to_sharegpt(thought)["conversations"][-1]["value"].startswith("<think>\n")


def test_thinking_cut_off_by_max_tokens_is_a_ledger_entry_with_the_reasoning(proxy, plan, tmp_path):
    llm = CachedLLM(OpenAICompatibleBackend(f"{proxy}/unfinished/v1", "smollm2", json_mode="json_object", concurrency=2),
                    LLMCache(tmp_path))
    result = generate_chapter_qa(plan, llm, SETTINGS)
    assert not result.qa_pairs and result.failures
    assert all(f["reason"] == UNFINISHED and f["reasoning"].startswith(THOUGHT) and f["raw"] == "" for f in result.failures)
    assert len(result.failures) == result.llm_calls
