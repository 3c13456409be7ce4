"""Only a task's own folder (spkpeft/tasks/<name>/) may branch on its name: no code outside it
compares a task name (Python in spkpeft/, bench/ and local/, shell in run.sh, steps/, egs/ and
local/), and the check itself catches each kind of comparison in code made to have them.
Tests are not scanned: they assert on the task of the rows a run wrote."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import REPO
from spkpeft.tasks.registered import task_names

#: every registered task's name, and those of tasks on their way (spoof-aware SV)
TASK_NAMES = tuple(dict.fromkeys([*task_names(), "sv", "cls", "cm", "sasv"]))
PYTHON_ROOTS = ("spkpeft", "bench", "local")
SHELL_PATHS = ("run.sh", "steps", "egs", "local")
#: the one exception: the import of your own Kaldi directories writes either a verification
#: layout (trials) or a labelled one (utt2label), chosen by its ``--task sv|cls`` option, which
#: egs/kaldi/run.sh sets from the task it serves; it is corpus preparation (stage 1), not a stage
#: that a task owns
EXEMPT = ("local/prepare_kaldi_dir.py", "local/prepare_kaldi_dir.sh")


def is_task_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in TASK_NAMES


def names_in(node: ast.AST) -> list[ast.AST]:
    """A task-name constant, or the task-name members of a tuple / list / set literal."""
    if is_task_name(node):
        return [node]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [n for n in node.elts if is_task_name(n)]
    return []


def python_problems(path: Path, source: str) -> list[str]:
    """``file:line: why`` of every task-name comparison in a Python file:

    * a comparison (``==``, ``!=``, ``in``, ``not in``) of a task name (or a literal collection
      holding one) with an expression that mentions ``task`` (``cfg.task.type == "sv"``,
      ``task_of(row) != "cls"``, ``row["task"] in ("cls", "cm")``);
    * a comparison with a literal collection of two or more task names, whatever the other side;
    * a literal mapping or collection keyed by two or more task names (``{"sv": ..., "cls": ...}``,
      ``choices=("sv", "cls", "cm")``): a table of tasks kept outside the tasks.
    """
    problems = []
    tree = ast.parse(source, filename=str(path))
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for i, operand in enumerate(operands):
                found = names_in(operand)
                if not found:
                    continue
                others = operands[:i] + operands[i + 1:]
                mentions_task = any("task" in ast.unparse(o).lower() for o in others)
                if mentions_task or len(found) >= 2:
                    problems.append(f"{where}: compares a task name: {ast.unparse(node)}")
                    break
        elif isinstance(node, ast.Dict):
            if sum(is_task_name(k) for k in node.keys if k is not None) >= 2:
                problems.append(f"{where}: a mapping keyed by task names")
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(names_in(node)) >= 2:
            problems.append(f"{where}: a literal list of task names: {ast.unparse(node)}")
    return sorted(set(problems))


SHELL_NAMES = "|".join(TASK_NAMES)
SHELL_PATTERNS = (
    # a test against a task name, whatever the other side: [ "$task" = sv ], [[ $(f) != "cls" ]]
    re.compile(rf'\s(=|==|!=)\s+["\']?({SHELL_NAMES})["\']?(?=[\s\]);]|$)'),
    # the name on the left: [ sv = "$task" ]
    re.compile(rf'(^|[\s\[])["\']?({SHELL_NAMES})["\']?\s+(=|==|!=)\s'),
    # a case arm for a task: "  sv) ...", "cls|cm)"
    re.compile(rf'^\s*\(?["\']?({SHELL_NAMES})["\']?(\s*\|\s*["\']?\w+["\']?)*\s*\)'),
    # case "$task" in
    re.compile(r'\bcase\s+"?\$\{?task\}?"?\s+in\b'),
)


def shell_problems(path: Path, source: str) -> list[str]:
    """``file:line: why`` of every shell test against a task name (``[ X = sv ]``, ``[ sv != X ]``),
    every case arm for one, and every ``case "$task" in``."""
    problems = []
    for number, line in enumerate(source.splitlines(), 1):
        code = re.sub(r"(^|\s)#.*", "", line)  # comments, not $# or ${x#y}
        if any(p.search(code) for p in SHELL_PATTERNS):
            problems.append(f"{path}:{number}: tests the task name: {line.strip()}")
    return problems


def own_task_folder(path: Path) -> bool:
    """``spkpeft/tasks/<name>/...`` of a task: its own code may name it."""
    parts = path.relative_to(REPO).parts
    return len(parts) > 3 and parts[:2] == ("spkpeft", "tasks") and parts[2] in TASK_NAMES


def repository_problems() -> list[str]:
    problems = []
    for root in PYTHON_ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            if not own_task_folder(path) and str(path.relative_to(REPO)) not in EXEMPT:
                problems += python_problems(path.relative_to(REPO), path.read_text(encoding="utf-8"))
    for name in SHELL_PATHS:
        base = REPO / name
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in ("", ".sh"))
        for path in (p for p in files if str(p.relative_to(REPO)) not in EXEMPT):
            problems += shell_problems(path.relative_to(REPO), path.read_text(encoding="utf-8"))
    return problems


def test_no_task_name_is_compared_outside_its_task_folder():
    assert repository_problems() == []


@pytest.mark.parametrize("name", EXEMPT)
def test_each_exemption_is_still_needed(name):
    path = REPO / name
    check = python_problems if path.suffix == ".py" else shell_problems
    assert check(Path(name), path.read_text(encoding="utf-8")) != [], f"{name} no longer needs its exemption"


@pytest.mark.parametrize("code", [
    'if cfg.task.type == "sv":\n    pass\n',
    'ok = task_of(row) != "cls"\n',
    'ok = row["task"] in ("cls", "cm")\n',
    'ok = kind not in ("cls", "cm")\n',
    'columns = {"sv": 1, "cls": 2}\n',
    'parser.add_argument("--task", choices=("sv", "cls", "cm"))\n',
    'ok = row.get("task", "sv") != "sv"\n',
])
def test_python_comparisons_are_caught(code):
    assert len(python_problems(Path("x.py"), code)) >= 1


@pytest.mark.parametrize("code", [
    'if self.output == "cls":\n    pass\n',   # the AST's [CLS] token, not the task
    'TASKS.register("sv", Config, Task)\n',
    'name = "cls"\n',
])
def test_other_uses_of_the_words_pass(code):
    assert python_problems(Path("x.py"), code) == []


@pytest.mark.parametrize("line", [
    '[ "$task" = sv ] || require_file x',
    '[ "$task" != cm ] || echo',
    'if [[ $task == "cls" ]]; then',
    '[ sv = "$task" ]',
    'case "$task" in',
    '[ "$(python -m spkpeft.bin.config_value --config "$config" task.type)" = cm ] && x',
    '[[ $kind != sv ]] || y',
    '  cls|cm) echo labelled ;;',
    'if [ $# -eq 2 ] && [ "$t" == "sasv" ]; then',
])
def test_shell_comparisons_are_caught(line):
    assert shell_problems(Path("run.sh"), line + "\n") != []


def test_shell_comments_and_other_words_pass():
    text = ('# [ "$task" = sv ] in a comment\nsc_task=35\n[ "$sc_task" = 12 ] || x\ntask=sv\n'
            'recipe_start "sv cls" "$corpus"\n[ "$t" != "$task" ] || break\necho "stage 5 (sv): x"\n')
    assert shell_problems(Path("run.sh"), text) == []
