"""Cosine scoring of Kaldi ark/scp embeddings, results.json and the report."""

from __future__ import annotations

import json

import kaldiio
import numpy as np

from conftest import python_module
from spkpeft.eval.metrics import compute_metrics


def write_embeddings(path, table):
    with kaldiio.WriteHelper(f"ark,scp:{path}.ark,{path}.scp") as writer:
        for utt, vec in table.items():
            writer(utt, np.asarray(vec, dtype=np.float32))
    return f"{path}.scp"


def setup(tmp_path, n_spk=6, per_spk=4, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_spk, dim))
    emb = {f"s{s}/u{u}": centers[s] + 0.8 * rng.normal(size=dim) for s in range(n_spk) for u in range(per_spk)}
    utts = sorted(emb)
    rows = sorted((a, b) for i, a in enumerate(utts) for b in utts[i + 1:])
    trials = tmp_path / "vox1_o"
    trials.write_text("".join(f"{a} {b} {'target' if a.split('/')[0] == b.split('/')[0] else 'nontarget'}\n"
                              for a, b in rows))
    train = {f"t{i}": rng.normal(size=dim) + 3.0 for i in range(10)}
    return emb, rows, trials, write_embeddings(tmp_path / "test", emb), write_embeddings(tmp_path / "train", train), train


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_scores_results_and_report(tmp_path):
    emb, rows, trials, test_scp, train_scp, train = setup(tmp_path)
    results = tmp_path / "exp" / "results.json"
    res = python_module("spkpeft.bin.score", "--embeddings", test_scp, "--trials", trials,
                        "--score-dir", tmp_path / "exp" / "scores", "--results", results, "--mean", train_scp)
    assert res.returncode == 0, res.stderr
    mean = np.mean([np.float32(v).astype(np.float64) for v in train.values()], axis=0)
    lines = (tmp_path / "exp" / "scores" / "vox1_o.score").read_text().splitlines()
    assert len(lines) == len(rows)
    scores = []
    for line, (a, b) in zip(lines, rows):
        u1, u2, s = line.split()
        assert (u1, u2) == (a, b)
        expected = cosine(np.float32(emb[a]) - mean, np.float32(emb[b]) - mean)
        assert abs(float(s) - expected) < 1e-6
        scores.append(float(s))
    (entry,) = json.loads(results.read_text())
    assert list(entry)[:5] == ["trials", "n_trials", "eer_pct", "mindcf_p0.01", "mindcf_p0.05"]
    labels = np.array([a.split("/")[0] == b.split("/")[0] for a, b in rows])
    expected = compute_metrics(np.array(scores), labels)
    assert entry["trials"] == "vox1_o" and entry["n_trials"] == len(rows)
    assert abs(entry["eer_pct"] - expected["eer_pct"]) < 1e-6

    report = python_module("spkpeft.bin.report", results)
    assert report.returncode == 0, report.stderr
    assert "vox1_o" in report.stdout


def test_missing_embedding_names_trials_line(tmp_path):
    emb, rows, trials, _, _, _ = setup(tmp_path)
    missing = rows[3][1]
    partial = write_embeddings(tmp_path / "partial", {u: v for u, v in emb.items() if u != missing})
    res = python_module("spkpeft.bin.score", "--embeddings", partial, "--trials", trials,
                        "--score-dir", tmp_path / "s", "--results", tmp_path / "r.json")
    assert res.returncode == 1
    assert "vox1_o:" in res.stderr and f"'{missing}'" in res.stderr
    assert not (tmp_path / "r.json").exists()


def test_report_rejects_incomplete_results(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps([{"trials": "x", "n_trials": 3}]))
    res = python_module("spkpeft.bin.report", bad)
    assert res.returncode == 1 and "eer_pct" in res.stderr
