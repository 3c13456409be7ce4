"""Smoke test of bench/peft_cost.py (it keeps running; no timing is checked) and of its
Markdown section writer, shared with bench/scoring.py."""

from __future__ import annotations

import json
import sys

from conftest import REPO, run

sys.path.insert(0, str(REPO))  # bench/ is no installed package
from bench.peft_cost import update_section  # noqa: E402


def test_peft_cost_runs_on_a_tiny_upstream(tmp_path):
    doc, results = tmp_path / "benchmarks.md", tmp_path / "cost.jsonl"
    doc.write_text("# Benchmarks\n\nkept text\n")
    cmd = [sys.executable, str(REPO / "bench" / "peft_cost.py"), "--upstreams", "random:tiny_wavlm",
           "--configs", "full_ft", "lora", "--steps", "1", "--warmup", "0", "--infer-runs", "1",
           "--infer-seconds", "1", "--doc", str(doc), "--results", str(results)]
    proc = run(cmd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["config"] for r in rows] == ["full_ft", "lora"]
    full, lora = rows
    assert full["infer_merged"] is None and lora["infer_merged"] is not None
    assert 0 < lora["trainable"] < full["trainable"]
    assert all(r["peak_mb"] >= 0 and r["step_s"]["wall"] > 0 for r in rows)
    text = doc.read_text()
    assert "kept text" in text and "## PEFT cost (CPU)" in text
    assert "| `full_ft` |" in text and "| `lora` |" in text
    row = next(line for line in text.splitlines() if line.startswith("| `full_ft` |"))
    assert row.count("|") == 14 and "| 1.00 |" in row  # 13 columns; ratios to itself

    again = run(cmd)  # the rows in --results are reused, nothing is measured again
    assert again.returncode == 0, again.stderr[-2000:]
    assert "tiny_wavlm lora:" in proc.stderr and "tiny_wavlm lora:" not in again.stderr
    assert len(results.read_text().splitlines()) == 2 and doc.read_text().count("| `lora` |") == 1


def test_update_section_replaces_only_its_own_section(tmp_path):
    doc = tmp_path / "b.md"
    update_section(doc, "a", "first A")
    update_section(doc, "b", "first B")
    update_section(doc, "a", "second A")
    text = doc.read_text()
    assert "second A" in text and "first B" in text and "first A" not in text
    assert text.index("second A") < text.index("first B")
    assert text.count("<!-- BEGIN a -->") == 1 and text.count("<!-- END a -->") == 1


def test_dataloader_bench_measures_the_pipelines(tmp_path):
    """bench/dataloader.py on a tiny corpus (a partial run: no FLOPs counted, no section written)."""
    results = tmp_path / "dl.jsonl"
    proc = run([sys.executable, str(REPO / "bench" / "dataloader.py"), "--utts", "3", "--crops", "4",
                "--min-seconds", "3.5", "--max-seconds", "4", "--pipelines", "plain", "shards",
                "--results", str(results), "--doc", str(tmp_path / "b.md")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["pipeline"], r["format"]) for r in rows] == [("plain", "wav"), ("plain", "flac"),
                                                            ("shards", "wav"), ("shards", "flac")]
    assert all(r["crops"] >= 4 and r["crops_per_cpu_s"] > 0 for r in rows)
    assert not (tmp_path / "b.md").exists()


def _tone_speaker_dir(root, speakers: dict[str, float], utts: int) -> dict[str, str]:
    """A Kaldi directory of ``utts`` noisy tones per speaker (the speaker is the pitch)."""
    import numpy as np
    import soundfile as sf

    root.mkdir(parents=True)
    rng = np.random.default_rng(len(speakers))
    utt2spk = {}
    for spk, pitch in speakers.items():
        for i in range(utts):
            t = np.arange(8000 + 800 * i) / 16000
            wav = 0.1 * np.sin(2 * np.pi * pitch * (1 + 0.01 * i) * t) + 0.01 * rng.standard_normal(t.size)
            utt = f"{spk}-{i}"
            sf.write(str(root / f"{utt}.wav"), wav, 16000)
            utt2spk[utt] = spk
    (root / "wav.scp").write_text("".join(f"{u} {root / u}.wav\n" for u in sorted(utt2spk)))
    (root / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    return utt2spk


def test_frozen_lda_floor_runs_and_scores(tmp_path):
    """bench/frozen_lda_sv.py on a 3-speaker tone corpus: LDA to speakers - 1 = 2 dimensions,
    stage 5's results.json, and the train_done.json that spkpeft.bin.compare reads."""
    import kaldiio

    data = tmp_path / "data"
    _tone_speaker_dir(data / "train", {"a": 150.0, "b": 300.0, "c": 600.0}, utts=3)
    test = _tone_speaker_dir(data / "test", {"x": 200.0, "y": 450.0}, utts=2)
    (data / "trials").mkdir()
    utts = sorted(test)
    (data / "trials" / "vox1_o").write_text("".join(
        f"{u} {v} {'target' if test[u] == test[v] else 'nontarget'}\n" for i, u in enumerate(utts) for v in utts[i + 1:]))
    out = tmp_path / "exp"
    proc = run([sys.executable, str(REPO / "bench" / "frozen_lda_sv.py"), "--data", str(data),
                "--upstream", "random:tiny_whisper", "--out", str(out)],
               env={"SPKPEFT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    vectors = dict(kaldiio.load_scp(str(out / "embeddings" / "test.scp")))
    assert sorted(vectors) == utts and all(v.shape == (2,) for v in vectors.values())
    rows = json.loads((out / "results.json").read_text())
    assert rows[0]["trials"] == "vox1_o" and 0.0 <= rows[0]["eer_pct"] <= 100.0
    done = json.loads((out / "train_done.json").read_text())
    assert done["trainable_params"] == 0 and done["upstream"] == "random:tiny_whisper"
