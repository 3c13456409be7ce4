"""The package obeys its layer rule (tests/layer_rule.py) and has no import cycle; the check
itself catches an upward import and a cycle in a package made to have them."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO
from layer_rule import cycles, import_graph, upward_imports

PACKAGE = REPO / "spkpeft"


def test_no_module_imports_a_higher_layer():
    assert upward_imports(PACKAGE) == []


def test_no_import_cycles():
    assert cycles(PACKAGE) == []


def test_every_module_is_in_the_graph():
    graph = import_graph(PACKAGE)
    assert "spkpeft.peft.lora" in graph and "spkpeft.tasks.cls.task" in graph
    assert ("spkpeft.upstream.base", ) == tuple({t for t, _, _ in graph["spkpeft.peft.lora"]} & {"spkpeft.upstream.base"})


def write(root: Path, module: str, text: str) -> None:
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in [path.parent, *path.parent.parents]:
        if parent == root:
            break
        (parent / "__init__.py").touch()
    path.write_text(text)


def test_an_upward_import_and_a_cycle_are_reported(tmp_path):
    root = tmp_path / "spkpeft"
    write(tmp_path, "spkpeft.errors", "")
    write(tmp_path, "spkpeft.tasks.base", "from spkpeft.errors import x\n")
    write(tmp_path, "spkpeft.peft.lora", "import torch\n\ndef f():\n    from spkpeft.tasks.base import Task\n")
    write(tmp_path, "spkpeft.nn.a", "from spkpeft.nn import b\n")
    write(tmp_path, "spkpeft.nn.b", "from . import a\n")
    problems = upward_imports(root)
    assert len(problems) == 1
    assert problems[0].endswith("lora.py:4: spkpeft.peft.lora (layer 3) imports spkpeft.tasks.base (layer 5)")
    assert cycles(root) == [["spkpeft.nn.a", "spkpeft.nn.b"]]
