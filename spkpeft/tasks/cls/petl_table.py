"""The PETL comparison table: one row per method (variant), its trainable parameters and their
share, and its accuracy on each corpus (the layout of Cappellazzo et al., "Parameter-Efficient
Transfer Learning of Audio Spectrogram Transformers", arXiv 2312.03694, Table 1).

Input: per corpus an experiment root holding one directory per variant (as
``steps/compare.sh`` and ``steps/cv.sh`` leave them): ``<root>/<variant>/cv_results.json``
(a cross-validated corpus, :mod:`spkpeft.tasks.cls.crossval`: accuracy = mean +- std over the
folds) or ``<root>/<variant>/results.json`` (accuracy of its cls row for the chosen set,
``test`` by default).

Output rows (long form, one per variant x corpus; the CSV has these keys as columns):
``variant``, ``corpus``, ``upstream``, ``trainable_params``, ``total_params``,
``trainable_pct`` (``100 trainable / total``), ``accuracy_pct``, ``accuracy_std`` (None
without folds), ``n_folds`` (1 without folds), ``set``.  The Markdown table pivots them:
``method | upstream | trainable params | trainable % | <corpus> accuracy (%) ...``; where a
method's parameter count differs between corpora (the classification layer grows with the
classes), the cells list the corpora's values in column order, ``a / b``.  A variant a
corpus lacks gets an empty cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.tasks.cls.crossval import CV_FILE, fold_row
from spkpeft.eval.report import markdown_table

KEYS = ("variant", "corpus", "upstream", "trainable_params", "total_params", "trainable_pct",
        "accuracy_pct", "accuracy_std", "n_folds", "set")


def _pct(trainable: Any, total: Any) -> float | None:
    return 100.0 * trainable / total if trainable is not None and total else None


def variant_row(exp: Path, corpus: str, set_name: str) -> dict[str, Any]:
    """The long-form row of one variant on one corpus (cross-validated when ``cv_results.json`` exists)."""
    cv_path = exp / CV_FILE
    if cv_path.is_file():
        try:
            cv = json.loads(cv_path.read_text(encoding="utf-8"))
            accuracy, std, n_folds = cv["mean"]["accuracy_pct"], cv["std"]["accuracy_pct"], cv["n_folds"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise file_error(cv_path, f"not a cross-validation summary ({err})") from None
        info, set_name = cv, cv.get("set", set_name)
    else:
        info = fold_row(exp, set_name)
        accuracy, std, n_folds = info["accuracy_pct"], None, 1
    trainable, total = info.get("trainable_params"), info.get("total_params")
    return {"variant": exp.name, "corpus": corpus, "upstream": info.get("upstream"),
            "trainable_params": trainable, "total_params": total, "trainable_pct": _pct(trainable, total),
            "accuracy_pct": accuracy, "accuracy_std": std, "n_folds": n_folds, "set": set_name}


def variants_of(root: Path) -> list[str]:
    """Sorted names of ``root``'s directories holding ``cv_results.json`` or ``results.json``."""
    if not root.is_dir():
        raise file_error(root, "experiment root does not exist")
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and ((p / CV_FILE).is_file() or (p / "results.json").is_file()))


def petl_rows(corpora: Sequence[tuple[str, Path]], variants: Sequence[str] | None = None,
              set_name: str = "test") -> list[dict[str, Any]]:
    """Long-form rows for every variant (``variants`` in order, else every one found, sorted) on every corpus."""
    names = [name for name, _ in corpora]
    if len(set(names)) != len(names):
        raise SpkpeftError(f"corpus names must differ, got {' '.join(names)}")
    found = {name: variants_of(root) for name, root in corpora}
    order = list(variants) if variants else sorted({v for vs in found.values() for v in vs})
    if not order:
        raise SpkpeftError("no experiment with results under " + ", ".join(str(root) for _, root in corpora))
    return [variant_row(root / v, name, set_name) for v in order for name, root in corpora if v in found[name]]


def _joined(values: Sequence[Any], fmt: str) -> str:
    """One value when all agree, else each in column order (``a / b``); empty for none."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    if all(v == known[0] for v in known):
        return fmt.format(known[0])
    return " / ".join("" if v is None else fmt.format(v) for v in values)


def _accuracy(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    if row["accuracy_std"] is None:
        return f"{row['accuracy_pct']:.2f}"
    return f"{row['accuracy_pct']:.2f} +- {row['accuracy_std']:.2f}"


def petl_markdown(rows: Sequence[dict[str, Any]], corpora: Sequence[str]) -> str:
    """The pivoted Markdown table of the module docstring."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    cells = []
    for variant in variants:
        by_corpus = {r["corpus"]: r for r in rows if r["variant"] == variant}
        ordered = [by_corpus.get(c) for c in corpora]
        present = [r for r in ordered if r is not None]
        cells.append([variant, _joined([r["upstream"] for r in present], "{}"),
                      _joined([r and r["trainable_params"] for r in ordered], "{:,}"),
                      _joined([r and r["trainable_pct"] for r in ordered], "{:.2f}"),
                      *(_accuracy(r) for r in ordered)])
    titles = ["method", "upstream", "trainable params", "trainable %", *(f"{c} accuracy (%)" for c in corpora)]
    return markdown_table(titles, cells)
