"""The ``spkpeft`` command: the tools of spkpeft.bin as subcommands, declared as the package's
console script, working from any directory."""

from __future__ import annotations

import json
import sys
import tomllib

from conftest import REPO, run


def test_console_script_is_declared():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"spkpeft": "spkpeft.cli:main"}


def test_subcommands_run_the_tools_from_another_directory(tmp_path):
    (tmp_path / "trials").write_text("a b target\na c nontarget\nb c nontarget\n")
    (tmp_path / "scores").write_text("a b 0.9\na c 0.1\nb c 0.2\n")
    res = run([sys.executable, "-m", "spkpeft", "compute-metrics", "--trials", "trials", "--scores", "scores",
               "--json"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"eer_pct": 0.0, "mindcf_p0.01": 0.0, "mindcf_p0.05": 0.0, "n_trials": 3,
                                      "n_target": 1}

    listing = run([sys.executable, "-m", "spkpeft", "--help"], cwd=tmp_path)
    assert listing.returncode == 0
    commands = [line.split()[0] for line in listing.stdout.splitlines()[3:]]
    assert {"infer", "export", "compute-metrics", "validate-data-dir"} <= set(commands)

    bad = run([sys.executable, "-m", "spkpeft", "infer", "--model", str(tmp_path / "none"), "embed", "x.wav"],
              cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.startswith("infer: error: ") and len(bad.stderr.splitlines()) == 1
    unknown = run([sys.executable, "-m", "spkpeft", "nope"], cwd=tmp_path)
    assert unknown.returncode == 1 and "unknown command 'nope'" in unknown.stderr


def test_every_tool_builds_its_parser_in_process(capsys, monkeypatch):
    """``spkpeft COMMAND --help`` for every tool, in this process: each module imports and its
    options parse (the fast tier's way of reaching every tool without a process per tool)."""
    import pytest

    from spkpeft.cli import commands, main

    monkeypatch.setattr(sys, "argv", ["pytest"])  # main names the subcommand in sys.argv[0]
    for command in commands():
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0, command
        assert capsys.readouterr().out.startswith("usage: "), command
