"""docs/architecture.md stays true: its tree names every module of ragtune/, pipeline_assets/ and
resources/, and nothing else (it once named a ragtune/cli.py that did not exist and left out four
modules that did)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ragtune", "pipeline_assets", "resources")


def tree_paths(doc: str) -> set[str]:
    """The .py paths the '## Tree' block spells out, folders by their indentation (two spaces a level)."""
    block = doc.split("## Tree", 1)[1].split("```", 2)[1]
    folders: list[str] = []
    paths = set()
    for line in block.splitlines():
        found = re.match(r"^( *)(\S+)", line)
        if not found:
            continue
        depth, name = len(found.group(1)) // 2, found.group(2)
        folders = folders[:depth]
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
        elif name.endswith(".py"):
            paths.add("/".join([*folders, name]))
    return paths


def test_the_architecture_tree_names_every_module_and_no_other():
    modules = {str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
               if p.name != "__init__.py" and "__pycache__" not in p.parts}
    named = tree_paths((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    assert sorted(modules - named) == [], "modules missing from docs/architecture.md's tree"
    assert sorted(named - modules) == [], "docs/architecture.md names modules that do not exist"


def test_the_tree_reader_follows_indentation():
    doc = "## Tree\n\n```\nragtune/\n  text.py   x\n  llm/\n    client.py  y\n    backends/\n      vllm.py z\n  chat.py\nresources/\n  llm.py\n```\n"
    assert tree_paths(doc) == {"ragtune/text.py", "ragtune/llm/client.py", "ragtune/llm/backends/vllm.py", "ragtune/chat.py", "resources/llm.py"}


def test_each_asset_is_in_the_group_of_its_stage():
    """An asset's group in the UI is the stage module that defines it (pipeline_assets/<stage>.py, the
    core's ragtune/<stage>/), so the UI, the code and docs/architecture.md use one set of names. The one
    module beside its stage's: estimate.py, generation_estimate, the dry run of generate's qa_candidates."""
    from pipeline_assets.definitions import defs

    beside = {"estimate": "generate"}

    graph = defs.resolve_asset_graph()
    stages = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        definition = defs.get_assets_def(key)
        module = definition.op.compute_fn.decorated_fn.__module__.rsplit(".", 1)[-1]
        stages[key.to_user_string()] = (node.group_name, beside.get(module, module))
    assert {name: group for name, (group, _) in stages.items()}["qa_judged"] == "curate"
    assert all(group == stage for group, stage in stages.values()), {n: s for n, s in stages.items() if s[0] != s[1]}


def test_no_module_but_the_task_registry_names_a_task():
    """A task style is one record (ragtune/tasks.py): a module that compares a task with its name, or keeps a
    table keyed by task names, is a second place to change when a style is added."""
    import ast

    from ragtune.tasks import TASK_STYLES

    spelled = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "ragtune" / "tasks.py" or "__pycache__" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in TASK_STYLES:
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert spelled == [], "task names outside ragtune/tasks.py"
