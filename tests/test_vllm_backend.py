"""The vLLM backend at its seam, without vLLM installed: the import error says how to install it,
and with a stand-in `vllm` package in sys.modules the backend builds the engine, sampling params,
structured outputs and LoRA request the way vLLM's offline API takes them."""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, field

import pytest

from ragtune.llm.backends import VLLMBackend
from ragtune.llm.client import CachedLLM, ChatRequest, LLMCache, SamplingParams

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_missing_vllm_names_the_gpu_extra():
    backend = VLLMBackend("Qwen/Qwen2.5-7B-Instruct")
    with pytest.raises(ImportError, match=r"pip install -e '\.\[gpu\]'"):
        backend.chat_many([ChatRequest([{"role": "user", "content": "hi"}])], lambda i, r: None)


@dataclass
class _Engine:
    options: dict
    calls: list = field(default_factory=list)

    def chat(self, conversations, sampling_params, lora_request=None, use_tqdm=True):
        self.calls.append({"conversations": conversations, "sampling": sampling_params, "lora": lora_request})
        if any("fail" in c[-1]["content"] for c in conversations):
            raise RuntimeError("CUDA out of memory")
        return [
            types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f'{{"answer": "{n}"}}', token_ids=[1, 2, 3])])
            for n, _ in enumerate(conversations)
        ]


@pytest.fixture
def stand_in_vllm(monkeypatch):
    engines: list[_Engine] = []
    vllm = types.ModuleType("vllm")
    vllm.LLM = lambda **options: engines.append(_Engine(options)) or engines[-1]
    vllm.SamplingParams = lambda **options: options
    params = types.ModuleType("vllm.sampling_params")
    params.StructuredOutputsParams = lambda **options: ("structured", options)
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = lambda name, number, path: ("lora", name, number, path)
    for name, module in {"vllm": vllm, "vllm.sampling_params": params, "vllm.lora": types.ModuleType("vllm.lora"),
                         "vllm.lora.request": lora}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return engines


def _requests(n: int, word: str = "question") -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"{word} {i}"}], SamplingParams(seed=i, repeat_penalty=1.2), SCHEMA)
            for i in range(n)]


def test_a_partition_is_one_engine_call_with_structured_outputs(stand_in_vllm, tmp_path):
    backend = VLLMBackend("mistralai/Mistral-7B-Instruct-v0.2", tensor_parallel_size=2, lora_path="/adapters/psych")
    llm = CachedLLM(backend, LLMCache(tmp_path))
    results = llm.complete_many(_requests(5))
    (engine,) = stand_in_vllm
    assert engine.options == {"model": "mistralai/Mistral-7B-Instruct-v0.2", "tensor_parallel_size": 2,
                              "gpu_memory_utilization": 0.9, "enable_prefix_caching": True,
                              "enable_lora": True, "max_lora_rank": 64}
    assert len(engine.calls) == 1 and len(engine.calls[0]["conversations"]) == 5
    first = engine.calls[0]["sampling"][0]
    assert first["seed"] == 0 and first["repetition_penalty"] == 1.2
    assert first["structured_outputs"] == ("structured", {"json": SCHEMA})
    assert engine.calls[0]["lora"] == ("lora", "adapter", 1, "/adapters/psych")
    assert [r.text for r in results] == [f'{{"answer": "{n}"}}' for n in range(5)]
    assert all(r.completion_tokens == 3 and r.model.endswith("+lora:/adapters/psych") for r in results)
    again = llm.complete_many(_requests(5))
    assert all(r.cached for r in again) and len(engine.calls) == 1


def test_a_failed_engine_batch_fails_only_its_requests(stand_in_vllm, tmp_path):
    backend = VLLMBackend("m", batch_size=2)
    results = CachedLLM(backend, LLMCache(tmp_path)).complete_many(_requests(2) + _requests(1, "fail"))
    assert [type(r).__name__ for r in results] == ["Completion", "Completion", "RuntimeError"]
    assert len(stand_in_vllm[0].calls) == 2  # batches of at most 2 requests
