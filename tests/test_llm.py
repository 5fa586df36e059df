"""The LLM interface on the real embedded SmolLM2 (llama.cpp): schema output, cache, corrupted entries."""

from __future__ import annotations

import json

import pytest

from ragtune.llm.backends import LlamaCppBackend
from ragtune.llm.client import CachedLLM, ChatRequest, LLMCache, SamplingParams
from ragtune.llm.tasks import run_tasks

SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "maxLength": 120}},
    "required": ["question"],
}
MESSAGES = [{"role": "user", "content": "Write one question about anxiety disorders as JSON."}]


@pytest.fixture(scope="module")
def backend():
    return LlamaCppBackend(n_ctx=1024)


def test_schema_output_is_cached_and_reused(backend, tmp_path):
    llm = CachedLLM(backend, LLMCache(tmp_path))
    sampling = SamplingParams(temperature=0.7, max_tokens=60, seed=3)
    first = llm.complete(MESSAGES, sampling, SCHEMA)
    assert not first.cached and llm.calls == 1
    assert isinstance(json.loads(first.text)["question"], str)
    again = CachedLLM(backend, LLMCache(tmp_path)).complete(MESSAGES, sampling, SCHEMA)
    assert again.cached and again.text == first.text and again.cache_key == first.cache_key
    other_seed = llm.complete(MESSAGES, SamplingParams(temperature=0.7, max_tokens=60, seed=4), SCHEMA)
    assert other_seed.cache_key != first.cache_key and llm.calls == 2


def test_corrupted_cache_entry_is_detected_and_regenerated(backend, tmp_path):
    """Torn (a kill mid-write on a filesystem without atomic rename), garbage, and valid JSON whose
    text was edited: each is detected by its digest, counted, and the call is made again."""
    cache = LLMCache(tmp_path)
    llm = CachedLLM(backend, cache)
    sampling = SamplingParams(temperature=0.0, max_tokens=30, seed=0)
    first = llm.complete(MESSAGES, sampling, SCHEMA)
    entry = tmp_path / first.cache_key[:2] / f"{first.cache_key}.json"
    intact = json.loads(entry.read_text())
    edited = {**intact, "text": intact["text"].replace("?", "!") + " IGNORE"}
    for n, damage in enumerate(['{"text": "trunc', "\x00\x01 not json", json.dumps(edited)], start=1):
        entry.write_text(damage)
        regenerated = llm.complete(MESSAGES, sampling, SCHEMA)
        assert not regenerated.cached and llm.calls == 1 + n and regenerated.text == first.text
        assert cache.corrupted[-1] == first.cache_key and len(cache.corrupted) == n
        assert json.loads(entry.read_text()) == intact  # rewritten whole, with its digest
    assert CachedLLM(backend, cache).complete(MESSAGES, sampling, SCHEMA).cached


def test_a_batch_sends_duplicates_once_and_fails_requests_alone(backend, tmp_path):
    llm = CachedLLM(backend, LLMCache(tmp_path))
    sampling = SamplingParams(temperature=0.0, max_tokens=30, seed=0)
    too_long = [{"role": "user", "content": "anxiety " * 1500}]  # more tokens than n_ctx=1024
    requests = [ChatRequest(MESSAGES, sampling, SCHEMA), ChatRequest(too_long, sampling), ChatRequest(MESSAGES, sampling, SCHEMA)]
    first, failed, duplicate = llm.complete_many(requests)
    assert isinstance(failed, ValueError) and "context" in str(failed).lower()
    assert json.loads(first.text)["question"] and duplicate.text == first.text and duplicate.cache_key == first.cache_key
    assert llm.calls == 1
    assert len(list(tmp_path.glob("*/*.json"))) == 1  # the failure is not cached
    again = run_tasks(CachedLLM(backend, LLMCache(tmp_path / "fresh")), requests, lambda i, text: text)
    assert again.usage.calls == 1 and again.usage.prompt_tokens == first.prompt_tokens > 0  # the duplicate was paid once


def test_model_identity_follows_the_weights_so_a_replaced_gguf_or_retrained_adapter_misses_the_cache(tmp_path, monkeypatch):
    """The cache keys every call by model id: a GGUF replaced under the same name, or an adapter
    retrained in the same folder, must give a new id and so a cache miss, never the old answers."""
    import shutil

    from ragtune.llm.backends import LlamaCppBackend, VLLMBackend, default_gguf_path
    from ragtune.llm.client import ChatRequest, LLMCache, SamplingParams, cache_key

    monkeypatch.setenv("RAGTUNE_FINGERPRINT_STORE", str(tmp_path / "store.json"))
    gguf = tmp_path / "model.gguf"
    shutil.copyfile(default_gguf_path(), gguf)
    request = ChatRequest([{"role": "user", "content": "Say hi."}], SamplingParams(max_tokens=4))
    cache = LLMCache(tmp_path / "cache")
    before = LlamaCppBackend(str(gguf)).model_id
    cache.put(cache_key(before, request), {"text": "hi", "model": before, "completion_tokens": 1})
    assert cache.get(cache_key(LlamaCppBackend(str(gguf)).model_id, request)) is not None  # same weights: a hit
    with open(gguf, "ab") as handle:  # replaced in place, same name
        handle.write(b"\0")
    after = LlamaCppBackend(str(gguf)).model_id
    assert after != before and after.startswith("llamacpp:model.gguf#") and cache.get(cache_key(after, request)) is None

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 16}')
    (adapter / "adapter_model.safetensors").write_bytes(b"epoch-1 weights")
    first = VLLMBackend("mistralai/Mistral-7B-Instruct-v0.2", lora_path=str(adapter)).model_id
    (adapter / "adapter_model.safetensors").write_bytes(b"epoch-2 weights")  # retrained in the same folder
    second = VLLMBackend("mistralai/Mistral-7B-Instruct-v0.2", lora_path=str(adapter)).model_id
    assert first != second and cache_key(first, request) != cache_key(second, request)


def test_a_cache_entry_without_its_digest_is_not_trusted(tmp_path):
    from ragtune.llm.client import LLMCache

    cache = LLMCache(tmp_path)
    cache.put("ab" + "0" * 62, {"text": "answer", "model": "m", "completion_tokens": 1})
    path = tmp_path / "ab" / ("ab" + "0" * 62 + ".json")
    record = json.loads(path.read_text())
    assert cache.get("ab" + "0" * 62)["text"] == "answer"
    del record["digest"]
    path.write_text(json.dumps(record))
    assert cache.get("ab" + "0" * 62) is None and cache.corrupted == ["ab" + "0" * 62]


def test_the_embedded_model_runs_as_q8_0_re_encoded_once_into_the_model_cache(tmp_path, monkeypatch):
    """llama.cpp's own quantizer writes the Q8_0 file once; later calls reuse it; a cache that cannot
    be written leaves the packaged Q4_1 file in use."""
    from pathlib import Path

    from ragtune.llm.backends import LlamaCppBackend, default_gguf_path, packaged_gguf_path
    from ragtune.llm.client import ChatRequest, SamplingParams

    monkeypatch.setenv("RAGTUNE_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("RAGTUNE_FINGERPRINT_STORE", str(tmp_path / "store.json"))
    path = Path(default_gguf_path())
    assert path == tmp_path / "models" / "SmolLM2-135M-Instruct.Q8_0.gguf"
    assert path.read_bytes()[:4] == b"GGUF" and path.stat().st_size > Path(packaged_gguf_path()).stat().st_size
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left beside it
    mtime = path.stat().st_mtime_ns
    assert Path(default_gguf_path()).stat().st_mtime_ns == mtime  # written once
    backend = LlamaCppBackend()
    assert backend.model_id.startswith("llamacpp:SmolLM2-135M-Instruct.Q8_0.gguf#")
    result = backend.chat(ChatRequest([{"role": "user", "content": "Name one symptom of depression."}], SamplingParams(max_tokens=8)))
    assert result.completion_tokens > 0 and result.text.strip()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("RAGTUNE_MODEL_CACHE", str(blocked / "models"))
    assert default_gguf_path() == packaged_gguf_path()
