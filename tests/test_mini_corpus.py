"""Synthetic mini corpus (local/make_mini_corpus.py, spkpeft.data.synth), features and the MFCC baseline."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from spkpeft.data import synth
from mfcc_baseline import cosine, mfcc_baseline_scores, mfcc_stats, read_veri_trials, score_veri_test
from spkpeft.io.audio import read_audio
from spkpeft.errors import SpkpeftError
from mfcc_features import deltas, fbank, mfcc
from spkpeft.eval.metrics import compute_eer

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "local" / "make_mini_corpus.py"
WAV_RE = re.compile(r"^(id\d{5})/([A-Za-z0-9_-]{11})/\d{5}\.wav$")
TRIAL_RE = re.compile(r"^[01] (id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav) (id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav)$")
SMALL = ["--n-train-spk", "3", "--n-test-spk", "3", "--n-sessions", "2", "--n-utts", "2",
         "--min-dur", "1", "--max-dur", "1.5"]


def eer(labels: list[int], scores: list[float]) -> float:
    """Equal error rate in percent (spkpeft.eval.metrics)."""
    return 100.0 * compute_eer(scores, labels)


def make(out: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *args],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


def load_script():
    spec = importlib.util.spec_from_file_location("make_mini_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wav_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root / "wav").as_posix() for p in (root / "wav").rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def default_stats(default_mini_corpus: Path) -> dict[str, np.ndarray]:
    """MFCC-statistics vector of every file of the default corpus, keyed by relative path."""
    return {rel: mfcc_stats(read_audio(default_mini_corpus / "wav" / rel)) for rel in wav_files(default_mini_corpus)}


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mini_small")
    proc = make(root, *SMALL, "--seed", "7")
    assert proc.stdout.count("\n") == 1 and "24 utterances" in proc.stdout
    return root


# ----------------------------------------------------------------------------- layout


def test_small_layout(small_corpus: Path) -> None:
    files = wav_files(small_corpus)
    assert len(files) == 6 * 2 * 2
    assert all(WAV_RE.match(f) for f in files), files
    speakers = sorted({f.split("/")[0] for f in files})
    assert speakers == [f"id{10001 + i}" for i in range(6)]
    sessions = {f.split("/")[1] for f in files}
    assert len(sessions) == 6 * 2
    for rel in files:
        info = sf.info(str(small_corpus / "wav" / rel))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 1.0 <= info.frames / 16000 <= 1.5
    assert sorted(p.name for p in small_corpus.iterdir()) == ["veri_test.txt", "wav"]


def test_small_trials(small_corpus: Path) -> None:
    lines = (small_corpus / "veri_test.txt").read_text().splitlines()
    files = set(wav_files(small_corpus))
    # 3 test speakers x 2 sessions x 2 utts: 4 cross-session pairs each -> 12 targets, 24 trials
    assert len(lines) == 24
    pairs = set()
    for line in lines:
        m = TRIAL_RE.match(line)
        assert m, line
        a, b = m.group(1), m.group(2)
        assert a in files and b in files and a != b
        label = int(line[0])
        assert label == int(a.split("/")[0] == b.split("/")[0])
        if label:
            assert a.split("/")[1] != b.split("/")[1], "targets should cross sessions"
        pairs.add(frozenset((a, b)))
    assert len(pairs) == len(lines)
    assert sum(int(line[0]) for line in lines) == 12


def test_test_speakers_disjoint_from_train(small_corpus: Path) -> None:
    trials = read_veri_trials(small_corpus / "veri_test.txt")
    test_spk = {u.split("/")[0] for _, a, b in trials for u in (a, b)}
    train_spk = {f.split("/")[0] for f in wav_files(small_corpus)} - test_spk
    assert test_spk == {"id10004", "id10005", "id10006"}
    assert train_spk == {"id10001", "id10002", "id10003"}


def test_deterministic_and_seed_dependent(small_corpus: Path, tmp_path: Path) -> None:
    make(tmp_path / "again", *SMALL, "--seed", "7")
    make(tmp_path / "other", *SMALL, "--seed", "8")
    files = wav_files(small_corpus)
    assert wav_files(tmp_path / "again") == files
    for rel in ["../veri_test.txt", *files]:
        assert (small_corpus / "wav" / rel).read_bytes() == (tmp_path / "again" / "wav" / rel).read_bytes(), rel
    assert wav_files(tmp_path / "other") != files
    x = read_audio(small_corpus / "wav" / files[0])
    y = read_audio(tmp_path / "other" / "wav" / wav_files(tmp_path / "other")[0])
    assert x.size != y.size or not np.array_equal(x, y)


def test_n_trials_option(tmp_path: Path) -> None:
    make(tmp_path, *SMALL, "--n-trials", "31")
    trials = read_veri_trials(tmp_path / "veri_test.txt")
    assert len(trials) == 31 and sum(t[0] for t in trials) == 15  # 12 cross-session + 3 same-session targets


@pytest.mark.parametrize("args", [
    ["--n-test-spk", "1"], ["--min-dur", "3", "--max-dur", "2"], ["--n-trials", "100000"],
    ["--n-sessions", "0"], ["--n-utts", "x"], ["--voice-spread", "0"], ["--channel-severity", "5"],
])
def test_bad_options_are_usage_errors(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        load_script().main(["--out", str(tmp_path), *args])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "wav").exists()


def test_refuses_directory_of_another_corpus(tmp_path: Path) -> None:
    stray = tmp_path / "wav" / "id99999" / "abcdefghijk" / "00001.wav"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"")
    with pytest.raises(SpkpeftError, match="another corpus"):
        load_script().main(["--out", str(tmp_path), *SMALL])
    assert not (tmp_path / "veri_test.txt").exists()


# ----------------------------------------------------------------------------- default corpus


def test_default_corpus_counts(default_mini_corpus: Path) -> None:
    files = wav_files(default_mini_corpus)
    assert len(files) == 100 * 3 * 4 and all(WAV_RE.match(f) for f in files)
    lengths = [sf.info(str(default_mini_corpus / "wav" / f)).frames for f in files[::37]]
    assert 2 * 16000 <= min(lengths) and max(lengths) <= 5 * 16000
    trials = read_veri_trials(default_mini_corpus / "veri_test.txt")
    assert len(trials) == 1920 and sum(t[0] for t in trials) == 960
    assert len({u.split("/")[0] for _, a, b in trials for u in (a, b)}) == 20


def test_mfcc_baseline_is_weak_but_not_random(default_mini_corpus: Path, default_stats: dict) -> None:
    trials = read_veri_trials(default_mini_corpus / "veri_test.txt")
    labels = [t[0] for t in trials]
    a = np.stack([default_stats[t[1]] for t in trials])
    b = np.stack([default_stats[t[2]] for t in trials])
    base = eer(labels, cosine(a, b).tolist())
    print(f"MFCC cosine baseline EER on the default mini corpus: {base:.2f}%")
    assert 10.0 < base < 40.0


def test_speakers_are_learnable(default_mini_corpus: Path, default_stats: dict) -> None:
    """LDA trained on the train speakers' MFCC statistics clearly beats the raw cosine."""
    trials = read_veri_trials(default_mini_corpus / "veri_test.txt")
    test_spk = {u.split("/")[0] for _, a, b in trials for u in (a, b)}
    rels = sorted(default_stats)
    x = np.stack([default_stats[r] for r in rels])
    spk = np.array([r.split("/")[0] for r in rels])
    train = ~np.isin(spk, sorted(test_spk))
    mu, sd = x[train].mean(0), x[train].std(0)
    lda = LinearDiscriminantAnalysis(n_components=20).fit((x[train] - mu) / sd, spk[train])
    z = lda.transform((x - mu) / sd)
    z -= z[train].mean(0)
    index = {r: i for i, r in enumerate(rels)}
    labels = [t[0] for t in trials]
    lda_eer = eer(labels, cosine(z[[index[t[1]] for t in trials]], z[[index[t[2]] for t in trials]]).tolist())
    base = eer(labels, cosine(x[[index[t[1]] for t in trials]], x[[index[t[2]] for t in trials]]).tolist())
    print(f"LDA on train speakers: {lda_eer:.2f}% EER vs cosine baseline {base:.2f}%")
    assert lda_eer < 0.6 * base


# ----------------------------------------------------------------------------- baseline API


def test_baseline_api_on_small_corpus(small_corpus: Path) -> None:
    labels, scores = score_veri_test(small_corpus / "veri_test.txt", small_corpus / "wav")
    trials = read_veri_trials(small_corpus / "veri_test.txt")
    assert labels == [t[0] for t in trials] and len(scores) == len(trials)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    _, a, b = trials[0]
    va, vb = (mfcc_stats(read_audio(small_corpus / "wav" / u)) for u in (a, b))
    assert scores[0] == pytest.approx(float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb)))
    by_id = mfcc_baseline_scores([("A", "B")], {"A": small_corpus / "wav" / a, "B": small_corpus / "wav" / b})
    assert by_id == pytest.approx([scores[0]])


def test_read_veri_trials_rejects_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "trials.txt"
    path.write_text("1 a.wav b.wav\n2 a.wav b.wav\n")
    with pytest.raises(SpkpeftError, match=r"trials\.txt:2"):
        read_veri_trials(path)


# ----------------------------------------------------------------------------- features


def test_fbank_and_mfcc_shapes_and_tone() -> None:
    t = np.arange(16000) / 16000
    x = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    fb = fbank(x, n_mels=40)
    assert fb.shape == (1 + (16000 - 400) // 160, 40) and fb.dtype == np.float32
    centres = np.linspace(0, 1127 * np.log1p(8000 / 700), 42)[1:-1]
    peak_hz = 700 * np.expm1(centres[int(np.argmax(fb.mean(0)))] / 1127)
    assert 850 < peak_hz < 1150
    assert fbank(x, n_mels=80).shape[1] == 80
    cc = mfcc(x, n_ceps=20)
    assert cc.shape == (fb.shape[0], 20) and np.all(np.isfinite(cc))
    assert fbank(np.zeros(100)).shape == (1, 40)  # shorter than a window: one padded frame


def test_mfcc_is_dct_of_fbank_and_deltas_of_ramp() -> None:
    x = np.random.default_rng(0).standard_normal(8000)
    fb = fbank(x).astype(np.float64)
    j = np.arange(40)
    basis = np.sqrt(2 / 40) * np.cos(np.pi * np.arange(13)[:, None] * (j[None, :] + 0.5) / 40)
    basis[0] /= np.sqrt(2)
    np.testing.assert_allclose(mfcc(x, n_ceps=13), fb @ basis.T, rtol=1e-4, atol=1e-3)
    ramp = np.arange(20, dtype=np.float64)[:, None] * np.array([[1.0, -2.0]])
    np.testing.assert_allclose(deltas(ramp)[2:-2], np.tile([1.0, -2.0], (16, 1)), atol=1e-6)


# ----------------------------------------------------------------------------- synthesizer


def test_stft_roundtrip_and_formant_peaks() -> None:
    x = np.random.default_rng(1).standard_normal(5000)
    np.testing.assert_allclose(synth._istft(synth._stft(x), x.size), x, atol=1e-9)
    env = synth.formant_envelope(synth._FREQS, np.array([[500.0, 1500.0, 2500.0]]), np.array([[80.0, 100.0, 120.0]]))
    assert env[0, 0] == pytest.approx(1.0, rel=1e-3)
    bins = synth._FREQS
    for f in (500.0, 1500.0, 2500.0):
        near = np.abs(bins - f) < 100
        assert env[0, near].max() > 3 * env[0, np.abs(bins - f - 400) < 50].max()


def test_rir_decay_and_drr() -> None:
    rir = synth.make_rir(np.random.default_rng(0), rt60=0.4, drr_db=8.0)
    assert rir[0] == 1.0 and rir.size == int(0.4 * 16000)
    assert 10 * np.log10(1.0 / np.sum(rir[1:] ** 2)) == pytest.approx(8.0, abs=0.01)
    e1, e2 = np.sum(rir[1600:3200] ** 2), np.sum(rir[4800:6400] ** 2)  # 0.1-0.2 s vs 0.3-0.4 s
    assert 10 * np.log10(e1 / e2) == pytest.approx(60 * 0.2 / 0.4, abs=4.0)


def test_utterance_properties_and_speaker_determinism() -> None:
    rng = np.random.default_rng
    spk = synth.sample_speaker(rng([3, 1]))
    assert spk == synth.sample_speaker(rng([3, 1]))
    sess = synth.sample_session(rng([3, 2]))
    x = synth.synthesize_utterance(rng([3, 3]), spk, sess, 24000)
    assert x.shape == (24000,) and x.dtype == np.float32
    assert np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 0.95 + 1e-6 and np.std(x) > 1e-3
    np.testing.assert_array_equal(x, synth.synthesize_utterance(rng([3, 3]), spk, sess, 24000))
    noise = synth.coloured_noise(rng(0), 32000, alpha=2.0)
    spec = np.abs(np.fft.rfft(noise)) ** 2
    assert np.sqrt(np.mean(noise ** 2)) == pytest.approx(1.0)
    assert spec[100:1000].mean() > 30 * spec[10000:16000].mean()  # ~1/f^2


def test_voice_spread_and_channel_severity_widen_or_narrow_the_ranges() -> None:
    """The options of a differently generated corpus: spread scales the voices' between-speaker
    deviations, severity widens the channel ranges; the defaults draw the same values as before."""
    rng = np.random.default_rng

    def deviations(spread: float) -> np.ndarray:
        voices = [synth.sample_speaker(rng([5, s]), spread) for s in range(200)]
        return np.array([v.vtl_factor - (1.16 if v.female else 1.0) for v in voices])

    assert [synth.sample_speaker(rng([5, s])) for s in range(3)] == [synth.sample_speaker(rng([5, s]), 1.0) for s in range(3)]
    assert np.allclose(deviations(0.5), 0.5 * deviations(1.0)) and deviations(1.0).std() > 0.05
    snr = [synth.sample_channel(rng([6, s]), severity=2.0).snr_db for s in range(200)]
    assert min(snr) < 15.0 and min(snr) >= 10.0 and max(snr) <= 40.0
    assert synth.sample_channel(rng([6, 0])).snr_db == synth.sample_channel(rng([6, 0]), severity=1.0).snr_db
