"""Stage 5 of ``task: cls``: accuracy, macro-F1, per-class scores and confusion matrices.

Inputs: the experiment ``EXP`` (``EXP/classes.txt``: class ``i`` is line ``i``;
``EXP/posteriors/<set>/posteriors.scp``: each utterance's ``K`` class posteriors, from
stage 4) and data directories ``data/<corpus>/<set>`` with ``utt2label``. A data
directory is evaluated when it has ``utt2label`` and its posteriors exist; the others
are skipped (:func:`evaluable`). The prediction of an utterance is the class of its
highest posterior (the first on a tie).

Outputs, per set, in ``EXP/scores/<set>/`` (utterances in ``utt2label`` order):

* ``predictions.txt``: ``<utt> <predicted class> <its posterior>``;
* ``per_class.tsv``: ``class n precision recall f1``, one row per class of ``classes.txt``
  (:func:`spkpeft.eval.report.per_class_lines`);
* ``confusion.tsv``: a header row of predicted classes, one row of counts per true
  class (:func:`spkpeft.eval.report.confusion_lines`);

and ``results.json`` with one row per set (:func:`result_row`)::

    {"task": "cls", "set": "test", "n": 120, "accuracy_pct": 87.5, "macro_f1": 0.8612,
     "config": ..., "upstream": ..., "trainable_params": ..., "total_params": ...,
     "train_seconds": ..., "peak_memory_mb": ...}      # the info keys when given
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import kaldiio
import numpy as np

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.metrics import accuracy_pct, confusion_matrix, macro_f1
from spkpeft.eval.report import confusion_lines, per_class_lines
from spkpeft.io.atomic import write_json_atomic, write_text_atomic
from spkpeft.io.datadir import read_data_dir
from spkpeft.tasks.labelled import duplicate_name

CLASSES_FILE = "classes.txt"
POSTERIORS_NAME = "posteriors.scp"
#: the keys of every row, in table order (after ``task``)
RESULT_KEYS = ("set", "n", "accuracy_pct", "macro_f1")


def posteriors_path(exp: Path, data_dir: Path) -> Path:
    """``EXP/posteriors/<set>/posteriors.scp`` of a data directory (``<set>`` its name)."""
    return Path(exp) / "posteriors" / Path(data_dir).name / POSTERIORS_NAME


def evaluable(exp: Path, data_dir: Path) -> bool:
    """Whether ``data_dir`` has ``utt2label`` and stage 4 wrote its posteriors."""
    return (Path(data_dir) / "utt2label").is_file() and posteriors_path(exp, data_dir).is_file()


def read_class_names(exp: Path) -> list[str]:
    """``EXP/classes.txt``: one class name per line (no blank lines, no whitespace, no repeats)."""
    path = Path(exp) / CLASSES_FILE
    if not path.is_file():
        raise file_error(path, "class list does not exist (written when a cls experiment starts training)")
    names: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if len(fields) != 1:
            raise file_error(path, f"expected one class name, got {line!r}", number)
        if fields[0] in names:
            raise file_error(path, f"class '{fields[0]}' repeats line {names.index(fields[0]) + 1}", number)
        names.append(fields[0])
    if not names:
        raise file_error(path, "no classes")
    return names


def read_posteriors(scp: Path, utts: Sequence[str], utt2label_path: Path, num_classes: int) -> np.ndarray:
    """``(n, K)`` float64 posteriors of ``utts`` (in that order) from a Kaldi scp.

    The scp must hold exactly ``utts`` (the utterances of ``utt2label_path``), each a
    finite vector of ``num_classes`` values.
    """
    table: dict[str, np.ndarray] = {}
    try:
        for utt, vector in kaldiio.load_scp_sequential(str(scp)):
            if utt in table:
                raise file_error(scp, f"utterance '{utt}' appears twice")
            table[utt] = np.asarray(vector)
    except SpkpeftError:
        raise
    except Exception as err:  # kaldiio: missing/truncated ark, bad scp line
        raise file_error(scp, f"cannot read the posteriors ({type(err).__name__}: {err})") from None
    wanted = set(utts)
    missing = [u for u in utts if u not in table]
    if missing:
        raise file_error(scp, f"no posteriors for {len(missing)} utterance(s) of {utt2label_path}, "
                              f"the first '{missing[0]}'")
    extra = [u for u in table if u not in wanted]
    if extra:
        raise file_error(scp, f"{len(extra)} utterance(s) are not in {utt2label_path}, the first '{extra[0]}'")
    out = np.empty((len(utts), num_classes), dtype=np.float64)
    for i, utt in enumerate(utts):
        vector = table[utt]
        if vector.shape != (num_classes,):
            raise file_error(scp, f"utterance '{utt}': posteriors of shape {vector.shape}, "
                                  f"expected ({num_classes},) for the classes of classes.txt")
        if not np.isfinite(vector).all():
            raise file_error(scp, f"utterance '{utt}': non-finite posteriors")
        out[i] = vector
    return out


def label_indices(utt2label: Mapping[str, str], path: Path, class_names: Sequence[str]) -> np.ndarray:
    """Class indices of the labels of ``utt2label`` (read from ``path``); an unknown label names its line."""
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.empty(len(utt2label), dtype=np.int64)
    for number, (utt, label) in enumerate(utt2label.items(), 1):
        if label not in index:
            raise file_error(path, f"label '{label}' of '{utt}' is not a class of the experiment (classes.txt)",
                             number)
        labels[number - 1] = index[label]
    return labels


def result_row(name: str, labels: np.ndarray, predictions: np.ndarray, confusion: np.ndarray,
               info: Mapping[str, Any]) -> dict[str, Any]:
    """One ``results.json`` row (keys in the contract's order)."""
    return {"task": "cls", "set": name, "n": int(labels.size), "accuracy_pct": accuracy_pct(labels, predictions),
            "macro_f1": macro_f1(confusion), **info}


def evaluate_set(exp: Path, data_dir: Path, class_names: Sequence[str],
                 info: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate one data directory: write its ``EXP/scores/<set>/`` files and return its row."""
    data = read_data_dir(data_dir)
    utt2label_path = Path(data_dir) / "utt2label"
    if data.utt2label is None:
        raise file_error(utt2label_path, "missing (task cls needs '<utt-id> <label>' lines)")
    utts = list(data.utt2label)
    labels = label_indices(data.utt2label, utt2label_path, class_names)
    posteriors = read_posteriors(posteriors_path(exp, data_dir), utts, utt2label_path, len(class_names))
    predictions = np.argmax(posteriors, axis=1)
    confusion = confusion_matrix(labels, predictions, len(class_names))
    out = Path(exp) / "scores" / Path(data_dir).name
    write_text_atomic(out / "predictions.txt", (f"{utt} {class_names[k]} {posteriors[i, k]:.6f}"
                                                for i, (utt, k) in enumerate(zip(utts, predictions))))
    write_text_atomic(out / "per_class.tsv", per_class_lines(confusion, class_names))
    write_text_atomic(out / "confusion.tsv", confusion_lines(confusion, class_names))
    return result_row(Path(data_dir).name, labels, predictions, confusion, info)


def evaluate_cls(exp: Path, data_dirs: list[Path], results: Path, info: dict | None = None) -> list[dict]:
    """Evaluate every data directory of ``data_dirs`` that has labels and posteriors (see the module
    docstring); write ``results`` (all rows) and return the rows.

    ``info`` (e.g. :func:`spkpeft.eval.report.read_experiment_info` of ``EXP/train_done.json``)
    joins every row. Raises :class:`SpkpeftError` when no directory can be evaluated, when two
    directories share a name (their posteriors and scores would collide), or on any bad input.
    """
    exp = Path(exp)
    duplicate = duplicate_name(data_dirs)
    if duplicate:
        raise SpkpeftError(f"two data directories are named '{duplicate}'; "
                           f"their posteriors and scores would both be {exp}/*/{duplicate}")
    todo = [Path(d) for d in data_dirs if evaluable(exp, Path(d))]
    if not todo:
        raise SpkpeftError(f"nothing to evaluate: none of {' '.join(map(str, data_dirs)) or '(no data directory)'} "
                           f"has both utt2label and {exp}/posteriors/<set>/{POSTERIORS_NAME}")
    class_names = read_class_names(exp)
    rows = [evaluate_set(exp, d, class_names, info or {}) for d in todo]
    write_json_atomic(results, rows)
    return rows
