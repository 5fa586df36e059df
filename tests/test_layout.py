"""The layout tells the pipeline: ragtune's core is grouped by stage, each stage imports only the
stages before it (and the shared modules), nothing in the core imports Dagster or the Dagster glue,
and pipeline_assets/ carries the same stage names."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "ragtune"
STAGES = ["ingest", "index", "llm", "generate", "review", "curate", "train", "evaluate"]  # pipeline order
SHARED = {"text", "jsonl", "chat", "plots", "layout", "benchmarks", "project", "stopping", "tasks"}
ENTRY_POINTS: set[str] = set()  # the command line drives Dagster, so it lives in pipeline_assets/cli/
GLUE = ("dagster", "dagster_webserver", "pipeline_assets", "resources")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def place(path: Path) -> str:
    """The stage a core file belongs to, 'shared', or 'entry'."""
    parts = path.relative_to(CORE).with_suffix("").parts
    if len(parts) == 1:
        name = parts[0]
        return "entry" if name in ENTRY_POINTS else "shared"
    return parts[0]


def test_every_core_module_sits_in_a_stage_package_or_is_shared():
    loose = {p.stem for p in CORE.glob("*.py")} - SHARED - ENTRY_POINTS - {"__init__"}
    assert not loose, f"modules outside the stage packages: {sorted(loose)}"
    packages = {p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(STAGES), packages
    for stage in STAGES:
        doc = ast.get_docstring(ast.parse((CORE / stage / "__init__.py").read_text(encoding="utf-8")))
        assert doc and doc.lower().startswith(stage), f"ragtune/{stage}/__init__.py must say what the package owns"


def test_no_core_module_imports_dagster_or_a_later_stage():
    wrong = []
    for path in sorted(CORE.rglob("*.py")):
        where = place(path)
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in GLUE:
                wrong.append(f"{path.relative_to(ROOT)} imports {name} (the core knows nothing of Dagster)")
            if top != "ragtune" or where == "entry" or name == "ragtune":
                continue
            target = name.split(".")[1]
            if target in SHARED or target == "__version__":
                continue
            if where == "shared":
                wrong.append(f"{path.relative_to(ROOT)} (shared) imports the stage module {name}")
            elif target in STAGES and STAGES.index(target) > STAGES.index(where):
                wrong.append(f"{path.relative_to(ROOT)} ({where}) imports {name}, a later stage")
    assert not wrong, "\n".join(wrong)


def test_the_walk_sees_a_violation(tmp_path):
    """The import walk itself: a later-stage import written into a file is found."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from ragtune.evaluate.grading import grade_many\n    import dagster\n", encoding="utf-8")
    assert {"ragtune.evaluate.grading", "dagster"} <= imported_modules(sample)


def test_pipeline_assets_carry_the_stage_names():
    for stage in STAGES:
        if stage != "llm":  # the client has no asset of its own; resources/llm.py binds it
            assert (ROOT / "pipeline_assets" / f"{stage}.py").exists(), f"pipeline_assets/{stage}.py"


def test_the_glue_spells_no_data_folder_path():
    """Every artifact path comes from ragtune/layout.py: no asset builds one from string parts."""
    suffixes = (".json", ".jsonl", ".npy", ".faiss", ".png", ".version", ".md", ".txt")
    spelled = []
    for path in sorted([*(ROOT / "pipeline_assets").glob("*.py"), *(ROOT / "resources").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "path" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "storage":
                spelled.append(f"{path.name}:{node.lineno} storage.path(...)")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(suffixes):
                spelled.append(f"{path.name}:{node.lineno} {node.value!r}")
    assert not spelled, "paths outside the layout:\n" + "\n".join(spelled)
