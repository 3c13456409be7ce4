"""In-process checks of the inference entry points that need no trained model (the fast tier's
way into spkpeft.inference): a missing experiment or package is one error naming it, export
writes nothing, and each ``spkpeft infer`` verb names the tasks whose models answer it."""

from __future__ import annotations

import pytest

import spkpeft
from spkpeft.errors import SpkpeftError


def test_loading_a_missing_model_names_the_path(tmp_path):
    with pytest.raises(SpkpeftError, match=f"{tmp_path / 'nope'}: neither a spkpeft package"):
        spkpeft.load(tmp_path / "nope")


def test_export_of_an_untrained_experiment_names_its_config_and_writes_nothing(tmp_path):
    from spkpeft.bin.export import main

    (tmp_path / "exp").mkdir()
    with pytest.raises(SpkpeftError, match=f"{tmp_path / 'exp' / 'config.yaml'}: missing"):
        main(["--exp", str(tmp_path / "exp"), "--out", str(tmp_path / "pkg"), "--onnx"])
    assert not (tmp_path / "pkg").exists()


def test_each_infer_verb_names_the_tasks_answering_it():
    from spkpeft.inference.model import tasks_answering
    from spkpeft.tasks.registered import all_tasks

    for task in all_tasks():
        for verb in task.infer_commands:
            assert f"'{task.name}'" in tasks_answering(verb)
    assert tasks_answering("no-such-verb") == "a (no task's)"
