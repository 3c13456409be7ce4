"""Synthetic mini spoofing corpus (spkpeft.data.synth_spoof, local/make_mini_cm_corpus.{py,sh}) and its baseline."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sklearn.metrics import roc_auc_score

from cm_baseline import flac_path, lfcc_logreg_baseline_eer, load_features, read_protocol
from conftest import REPO, run
from spkpeft.data.synth_spoof import (KNOWN_ATTACKS, UNSEEN_ATTACKS, CmCorpusSpec, spoof_voice, write_cm_corpus)
from spkpeft.data.synth import SR, sample_phones, sample_session, sample_speaker
from spkpeft.errors import SpkpeftError
from spkpeft.io.audio import read_audio

SCRIPT = REPO / "local" / "make_mini_cm_corpus.py"
SHELL = REPO / "local" / "make_mini_cm_corpus.sh"
SETS = ("train", "dev", "eval")
PROTO = {s: f"LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{x}.txt"
         for s, x in (("train", "train.trn"), ("dev", "dev.trl"), ("eval", "eval.trl"))}
ASV = {s: f"LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{s}.gi.trl.scores.txt" for s in ("dev", "eval")}
SMALL = ["--n-train", "14", "--n-dev", "8", "--n-eval", "6", "--n-train-spk", "3", "--n-dev-spk", "2",
         "--n-eval-spk", "2", "--min-dur", "0.5", "--max-dur", "0.8"]
LINE_RE = re.compile(r"^LA_(\d{4}) LA_([TDE])_(\d{7}) - (-|A\d\d) (bonafide|spoof)$")


def make(out: Path, *args: str) -> str:
    proc = run([sys.executable, str(SCRIPT), "--out", str(out), *args])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def make_sh(root: Path, opts: str | None = None):
    return run(["bash", str(SHELL)] + (["--mini-opts", opts] if opts is not None else []) + [str(root)])


def load_script():
    spec = importlib.util.spec_from_file_location("make_mini_cm_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cm_small")
    out = make(root, *SMALL, "--seed", "3")
    assert out.count("\n") == 1 and "28 utterances" in out
    return root


@pytest.fixture(scope="module")
def default_cm_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default corpus (300 / 150 / 200 utterances of 1-2 s, 30 % bona fide, seed 0): about 15 s on one core."""
    root = tmp_path_factory.mktemp("cm_default")
    make(root)
    return root


# ----------------------------------------------------------------------------- layout


def test_small_layout(small_corpus: Path) -> None:
    assert sorted(p.name for p in (small_corpus / "LA").iterdir()) == [
        "ASVspoof2019_LA_asv_scores", "ASVspoof2019_LA_cm_protocols", "ASVspoof2019_LA_dev",
        "ASVspoof2019_LA_eval", "ASVspoof2019_LA_train"]
    expected_files = set(PROTO.values()) | set(ASV.values())
    speakers: dict[str, set[str]] = {}
    counts = {"train": 14, "dev": 8, "eval": 6}
    for s in SETS:
        lines = (small_corpus / PROTO[s]).read_text().splitlines()
        assert len(lines) == counts[s]
        utts = [line.split()[1] for line in lines]
        assert utts == sorted(utts) and len(set(utts)) == len(utts)
        keys = []
        for line in lines:
            m = LINE_RE.match(line)
            assert m and m.group(2) == s[0].upper(), line
            attack, key = m.group(4), m.group(5)
            assert (attack == "-") == (key == "bonafide")
            assert attack == "-" or attack in (UNSEEN_ATTACKS if s == "eval" else KNOWN_ATTACKS)
            keys.append(key)
            rel = f"LA/ASVspoof2019_LA_{s}/flac/{line.split()[1]}.flac"
            expected_files.add(rel)
            info = sf.info(str(small_corpus / rel))
            assert (info.samplerate, info.channels, info.format, info.subtype) == (16000, 1, "FLAC", "PCM_16")
            assert 8000 <= info.frames <= 12800
        assert keys.count("bonafide") == round(0.3 * counts[s])
        speakers[s] = {line.split()[0] for line in lines}
        if s in ASV:
            asv = [line.split() for line in (small_corpus / ASV[s]).read_text().splitlines()]
            assert len(asv) == len(lines)
            for (source, akey, score), line in zip(asv, lines):
                attack = line.split()[3]
                assert source == ("bonafide" if attack == "-" else attack)
                assert akey in (("target", "nontarget") if attack == "-" else ("spoof",))
                float(score)
    assert len(speakers["train"]) == 3 and len(speakers["dev"]) == 2 and len(speakers["eval"]) == 2
    assert not (speakers["train"] & speakers["dev"] or speakers["train"] & speakers["eval"]
                or speakers["dev"] & speakers["eval"])
    assert set(all_files(small_corpus)) == expected_files


def test_audio_is_sane(small_corpus: Path) -> None:
    for s in SETS:
        for _, utt, _, _ in read_protocol(small_corpus, s):
            x = read_audio(flac_path(small_corpus, s, utt)).astype(np.float64)
            assert np.all(np.isfinite(x)) and 0 < np.max(np.abs(x)) <= 0.95 + 1e-4
            assert -40.0 < 20 * np.log10(np.sqrt(np.mean(x ** 2))) < -15.0


def test_deterministic_and_seed_dependent(small_corpus: Path, tmp_path: Path) -> None:
    make(tmp_path / "again", *SMALL, "--seed", "3")
    make(tmp_path / "other", *SMALL, "--seed", "4")
    files = all_files(small_corpus)
    assert all_files(tmp_path / "again") == files
    for rel in files:
        assert (small_corpus / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes(), rel
    assert (tmp_path / "other" / PROTO["train"]).read_text() != (small_corpus / PROTO["train"]).read_text()


def test_every_attack_runs_and_changes_the_voice() -> None:
    spk = sample_speaker(np.random.default_rng([0, 1]))
    sess = sample_session(np.random.default_rng([0, 2]))
    phones = sample_phones(np.random.default_rng([0, 3]), 0.6, spk.rate)
    from spkpeft.data.synth import synthesize_voice
    clean = synthesize_voice(np.random.default_rng([0, 4]), spk, sess, phones, 9600)
    for attack in KNOWN_ATTACKS + UNSEEN_ATTACKS:
        y = spoof_voice(attack, np.random.default_rng([5]), (0, 4), spk, sess, phones, 9600)
        assert y.shape == (9600,) and np.all(np.isfinite(y)), attack
        assert not np.allclose(y, clean), attack
        assert np.array_equal(y, spoof_voice(attack, np.random.default_rng([5]), (0, 4), spk, sess, phones, 9600))
    with pytest.raises(SpkpeftError, match="unknown attack"):
        spoof_voice("A99", np.random.default_rng(0), (0, 4), spk, sess, phones, 9600)


@pytest.mark.parametrize("args", [
    ["--n-train", "0"], ["--n-dev-spk", "0"], ["--n-eval", "3", "--n-eval-spk", "4"], ["--bonafide-frac", "0"],
    ["--bonafide-frac", "1"], ["--min-dur", "0.1"], ["--min-dur", "2", "--max-dur", "1"], ["--seed", "-1"],
    ["--n-dev", "x"],
])
def test_bad_options_are_usage_errors(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        load_script().main(["--out", str(tmp_path), *args])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "LA").exists()


def test_refuses_directory_of_another_corpus(tmp_path: Path) -> None:
    stray = tmp_path / "LA" / "ASVspoof2019_LA_train" / "flac" / "LA_T_0000000.flac"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"")
    with pytest.raises(SpkpeftError, match="another corpus"):
        load_script().main(["--out", str(tmp_path), *SMALL])
    assert not (tmp_path / PROTO["train"]).exists() and stray.exists()


def test_interrupted_run_leaves_no_protocols(tmp_path: Path) -> None:
    spec = CmCorpusSpec(n_train=4, n_dev=3, n_eval=3, n_train_spk=1, n_dev_spk=1, n_eval_spk=1,
                        min_dur=0.3, max_dur=0.3, seed=1)
    write_cm_corpus(tmp_path, spec)
    assert all((tmp_path / p).is_file() for p in [*PROTO.values(), *ASV.values()])

    def stop(done: int, total: int) -> None:
        assert total == 10
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_cm_corpus(tmp_path, spec, progress=stop)
    assert not any((tmp_path / p).exists() for p in [*PROTO.values(), *ASV.values()])
    assert not list(tmp_path.rglob("*.tmp*"))


# ----------------------------------------------------------------------------- local/make_mini_cm_corpus.sh


def test_sh_generates_skips_regenerates_and_refuses(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    opts = ("--n-train 4 --n-dev 3 --n-eval 3 --n-train-spk 1 --n-dev-spk 1 --n-eval-spk 1 "
            "--min-dur 0.3 --max-dur 0.3")
    res = make_sh(root, opts)
    assert res.returncode == 0, res.stderr
    assert (root / ".mini_cm_corpus_options").read_text().strip() == opts
    assert len(list(root.rglob("*.flac"))) == 10
    first = flac_path(root, "train", read_protocol(root, "train")[0][1])
    stamp = first.stat().st_mtime_ns

    res = make_sh(root, opts)
    assert res.returncode == 0 and "up to date" in res.stderr, res.stderr
    assert first.stat().st_mtime_ns == stamp

    changed = opts.replace("--n-train 4", "--n-train 5")
    res = make_sh(root, changed)
    assert res.returncode == 0 and "regenerating" in res.stderr, res.stderr
    assert len(list(root.rglob("*.flac"))) == 11 and len(read_protocol(root, "train")) == 5

    (root / PROTO["eval"]).unlink()  # an interrupted run: regenerated even with the same options
    (root / ".mini_cm_corpus_options").write_text("incomplete: " + changed)
    res = make_sh(root, changed)
    assert res.returncode == 0 and "regenerating" in res.stderr, res.stderr
    assert (root / PROTO["eval"]).is_file()

    other = tmp_path / "precious"
    other.mkdir()
    (other / "keep.txt").write_text("mine\n")
    res = make_sh(other, opts)
    assert res.returncode == 1 and "refusing" in res.stderr, res.stderr
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]

    res = make_sh(tmp_path / "bad", "--n-train 0")
    assert res.returncode != 0 and not (tmp_path / "bad" / PROTO["eval"]).exists()


# ----------------------------------------------------------------------------- default corpus


def shortcut_features(x: np.ndarray) -> tuple[float, float, float]:
    """RMS level (dBFS), duration (s), leading silence (s: first 10 ms frame within 25 dB of the loudest)."""
    x = x.astype(np.float64)
    frames = x[: x.size // 160 * 160].reshape(-1, 160)
    e = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    lead = int(np.argmax(e > e.max() - 25.0)) * 0.01
    return 20 * np.log10(np.sqrt(np.mean(x ** 2))), x.size / SR, lead


def test_default_corpus_has_no_level_duration_or_silence_shortcut(default_cm_corpus: Path) -> None:
    """Measured (seed 0, train+dev+eval, 650 utterances): symmetric AUC of RMS level 0.51, duration 0.55,
    leading silence 0.53."""
    feats, labels = [], []
    for s in SETS:
        for _, utt, _, key in read_protocol(default_cm_corpus, s):
            feats.append(shortcut_features(read_audio(flac_path(default_cm_corpus, s, utt))))
            labels.append(key == "bonafide")
    feats, labels = np.array(feats), np.array(labels)
    assert len(labels) == 650 and labels.sum() == 195
    aucs = [roc_auc_score(labels, feats[:, k]) for k in range(3)]
    aucs = [max(a, 1.0 - a) for a in aucs]
    print("shortcut AUCs (level, duration, leading silence):", [round(a, 3) for a in aucs])
    assert all(a < 0.65 for a in aucs), aucs


def test_default_corpus_lfcc_baseline_is_hard_but_learnable(default_cm_corpus: Path) -> None:
    """LFCC mean/std + logistic regression trained on train (seed 0, measured): EER dev 24.4 %, eval 30.0 %
    (unseen attacks A07-A09); seed 1: 26.7 %, 34.3 %."""
    x, y = load_features(default_cm_corpus, "train")
    assert x.shape == (300, 40) and y.sum() == 90
    dev = lfcc_logreg_baseline_eer(default_cm_corpus, "dev")
    eval_ = lfcc_logreg_baseline_eer(default_cm_corpus, "eval")
    assert eval_ == lfcc_logreg_baseline_eer(default_cm_corpus, "eval")
    print(f"LFCC + logistic regression on the default mini spoofing corpus: dev EER {dev:.1f} %, eval {eval_:.1f} %")
    assert 10.0 < dev < 35.0
    assert 15.0 < eval_ < 40.0
