"""Synthetic spoofing corpus in the ASVspoof 2019 LA layout (bona fide voices and vocoder-like attacks).

Every utterance, bona fide or spoof, starts the same way: a speaker of its set
(:func:`spkpeft.data.synth.sample_speaker`), its own session / channel
(:func:`~spkpeft.data.synth.sample_session`), random content
(:func:`~spkpeft.data.synth.sample_phones`, 50-300 ms of leading silence) and
the clean source-filter voice (:func:`~spkpeft.data.synth.synthesize_voice`).
A spoof then passes the clean voice through an *attack* (a re-synthesis of
the same speech, below), and both classes finally go through the SAME channel
model (:func:`~spkpeft.data.synth.apply_channel`: room, noise at 20-40 dB
SNR, EQ, RMS normalised to -32..-20 dBFS).  Durations, leading / trailing
silence, channels and levels therefore have one distribution for both
classes: only the attack artefacts tell them apart.

Attacks (``x``: the clean voice; STFT: 512-point sine window, hop 256; every
strength is drawn per utterance):

* ``A01`` spectral-envelope smoothing + noise excitation: the log-magnitude
  envelope is cepstrally smoothed (8-14 coefficients) and, above a cut-off of
  1.5-3.5 kHz (logistic cross-over), the excitation is replaced by Gaussian
  noise (an LPC-like mixed-excitation vocoder);
* ``A02`` Griffin-Lim: the STFT magnitude, smoothed over 3 frames, with a
  random initial phase re-estimated in 1-3 Griffin-Lim iterations;
* ``A03`` reduced bandwidth: resampled to 8, 10 or 12 kHz (polyphase) and back
  to 16 kHz by *linear* interpolation (band limit plus imaging artefacts);
* ``A04`` over-smooth source: the voice re-synthesised (same content and
  draws) with 10-35 % of the speaker's intonation range, no jitter and 10 % of
  the shimmer, then its STFT magnitudes smoothed over 3 frames;
* ``A05`` frame repetition / overlap-add glitches: 20-40 % of the STFT frames
  replaced by their predecessor, 3-8 % with a random phase jump;
* ``A06`` harmonic-plus-noise with wrong aperiodicity: re-synthesised with
  perfectly periodic pulses (no jitter / shimmer) and far too much aspiration
  (breathiness 0.8-1.5 instead of 0.03-0.5);
* unseen evaluation attacks: ``A07`` = A02 with one iteration followed by A05;
  ``A08`` = A04's source then A01 with a lower cut-off (1-2 kHz);
  ``A09`` = A06 then A03 at 9 or 11 kHz.

Every attack then adds the shared "vocoder signature"
(:func:`vocoder_signature`): above a 4.5-6.5 kHz cross-over the band is
replaced by envelope-shaped noise 3-8 dB weaker, and the attack's own fixed
spectral colouration (:func:`attack_colouration`, +-1-3 dB bumps, the same in
every corpus) is applied; the channel EQ (+-1-3 dB peaks, shelf) masks it
partly.  With these strengths the LFCC + logistic-regression baseline of
``tests/cm_baseline.py`` reaches about 25 % EER on dev and 30-35 % on eval.

Train and dev use ``A01``-``A06``, eval only the unseen ``A07``-``A09``.

ASV scores (``ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt``) are not
computed by any system: each bona fide utterance of the protocol becomes a
``target`` trial with probability 0.6, else ``nontarget``, each spoof a
``spoof`` trial; scores are drawn ``target ~ N(2, 1)``, ``nontarget ~
N(-2, 1)``, ``spoof ~ N(1, 1.5)``; lines ``SOURCE KEY SCORE`` with ``SOURCE``
``bonafide`` or the attack id, in protocol order.

Spoof-aware speaker verification (SASV) parts, with ``n_enroll > 0``: every dev and eval
speaker gets ``n_enroll`` further bona fide utterances (own sessions, ids ``LA_<D|E>_NNNNNNN``
in the set's ``flac/`` folder, in no CM protocol), listed in the ASVspoof 2019 enrollment files
``ASVspoof2019.LA.asv.{dev,eval}.{female,male}.trn.txt`` (``SPEAKER UTT1,UTT2,...``, by the
speaker's synthetic gender; a file may be empty), and the trials
``ASVspoof2019.LA.asv.{dev,eval}.gi.trl.txt`` (``SPEAKER UTT SOURCE KEY``): for each enrolled
speaker, a ``target`` trial per bona fide CM utterance of that speaker, a ``spoof`` trial per
spoof of that speaker, and a ``nontarget`` trial per bona fide CM utterance of every other
speaker of the same gender (of every other speaker when the set has no other speaker of that
gender).  ``first_speaker`` offsets the global speaker indices (and the ids ``LA_NNNN``): the
speaker profiles are seeded by ``[seed, 1, index]`` exactly as the speaker-verification mini
corpus seeds its speakers (:func:`spkpeft.data.synth.write_corpus`), so with an offset beyond
that corpus's speakers (e.g. 1000) the SASV corpus's voices are ones the mini SV model has
never heard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy.signal import resample_poly

from spkpeft.data.synth import (HOP, N_FFT, SR, SessionProfile, SpeakerProfile, _FREQS, _istft, _stft,
                                apply_channel, refuse_foreign_files, sample_phones, sample_session, sample_speaker,
                                synthesize_voice)
from spkpeft.errors import SpkpeftError
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.audio import write_audio

SETS = ("train", "dev", "eval")
SET_LETTER = {"train": "T", "dev": "D", "eval": "E"}
PROTOCOL_SUFFIX = {"train": "train.trn", "dev": "dev.trl", "eval": "eval.trl"}
KNOWN_ATTACKS = ("A01", "A02", "A03", "A04", "A05", "A06")
UNSEEN_ATTACKS = ("A07", "A08", "A09")
SET_ATTACKS = {"train": KNOWN_ATTACKS, "dev": KNOWN_ATTACKS, "eval": UNSEEN_ATTACKS}
ASV_MEANS_STDS = {"target": (2.0, 1.0), "nontarget": (-2.0, 1.0), "spoof": (1.0, 1.5)}
ASV_TARGET_FRACTION = 0.6

# --------------------------------------------------------------------------- attacks


def _cepstral_envelope(mag: np.ndarray, n_cep: int) -> np.ndarray:
    """Magnitude envelope per frame: the log magnitude low-quefrency liftered to ``n_cep`` coefficients."""
    cep = np.fft.irfft(np.log(np.maximum(mag, 1e-9)), n=N_FFT, axis=1)
    cep[:, n_cep: N_FFT - n_cep + 1] = 0.0
    return np.exp(np.fft.rfft(cep, axis=1).real)


def _complex_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2.0)


def envelope_noise_vocoder(rng: np.random.Generator, x: np.ndarray, cutoff: tuple[float, float] = (1500.0, 3500.0)
                           ) -> np.ndarray:
    """A01: cepstrally smoothed envelope; noise excitation above a random cut-off."""
    spec = _stft(x)
    mag = np.abs(spec)
    smooth = _cepstral_envelope(mag, int(rng.integers(8, 15)))
    detail = _cepstral_envelope(mag, 60)
    harmonic = spec * (smooth / np.maximum(detail, 1e-12))
    fc = float(rng.uniform(*cutoff))
    mix = 1.0 / (1.0 + np.exp(-(_FREQS - fc) / 300.0))
    noise = smooth * _complex_noise(rng, spec.shape) * np.sqrt(
        np.mean((mag / np.maximum(detail, 1e-12)) ** 2, axis=1, keepdims=True))
    return _istft((1.0 - mix) * harmonic + mix * noise, x.size)


def _smooth_frames(mag: np.ndarray) -> np.ndarray:
    """Magnitudes averaged over 3 frames (weights 1/4, 1/2, 1/4; edges repeated): over-smooth trajectories."""
    p = np.pad(mag, ((1, 1), (0, 0)), mode="edge")
    return 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]


def over_smooth(x: np.ndarray) -> np.ndarray:
    """Over-smooth spectral trajectories (as in statistical parametric synthesis), original phase."""
    spec = _stft(x)
    return _istft(_smooth_frames(np.abs(spec)) * np.exp(1j * np.angle(spec)), x.size)


def griffin_lim(rng: np.random.Generator, x: np.ndarray, n_iter: int | None = None) -> np.ndarray:
    """A02: keep the STFT magnitude, random initial phase, ``n_iter`` (default 2-5) Griffin-Lim iterations."""
    mag = _smooth_frames(np.abs(_stft(x)))
    n_iter = int(rng.integers(1, 4)) if n_iter is None else n_iter
    spec = mag * np.exp(2j * np.pi * rng.random(mag.shape))
    for _ in range(n_iter):
        y = _istft(spec, x.size)
        spec = mag * np.exp(1j * np.angle(_stft(y)))
    return _istft(spec, x.size)


def band_limit(rng: np.random.Generator, x: np.ndarray, rates: Sequence[int] = (8000, 10000, 12000)) -> np.ndarray:
    """A03: resample to a lower rate (polyphase) and back by linear interpolation (imaging artefacts)."""
    low = int(rates[int(rng.integers(0, len(rates)))])
    g = math.gcd(low, SR)
    y = resample_poly(x, low // g, SR // g)
    t = np.arange(x.size) * (low / SR)
    return np.interp(t, np.arange(y.size), y)


def frame_glitches(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """A05: repeat 10-25 % of the STFT frames, give 3-8 % a random phase jump, overlap-add."""
    spec = _stft(x)
    n = spec.shape[0]
    rep = np.flatnonzero(rng.random(n) < rng.uniform(0.20, 0.40))
    rep = rep[rep > 0]
    for t in rep:  # in order, so runs of repeats repeat one frame
        spec[t] = spec[t - 1]
    jump = rng.random(n) < rng.uniform(0.03, 0.08)
    spec[jump] *= np.exp(2j * np.pi * rng.random((int(jump.sum()), 1)))
    return _istft(spec, x.size)


def smooth_source_speaker(rng: np.random.Generator, spk: SpeakerProfile) -> SpeakerProfile:
    """A04's voice: 10-35 % of the intonation range, no jitter, 10 % of the shimmer."""
    return replace(spk, f0_range=spk.f0_range * float(rng.uniform(0.10, 0.35)), jitter=0.0,
                   shimmer=0.1 * spk.shimmer)


def aperiodic_speaker(rng: np.random.Generator, spk: SpeakerProfile) -> SpeakerProfile:
    """A06's voice: perfectly periodic pulses plus far too much aspiration noise."""
    return replace(spk, jitter=0.0, shimmer=0.0, breathiness=float(rng.uniform(0.8, 1.5)))


def attack_colouration(attack: str) -> np.ndarray:
    """The attack's fixed spectral colouration (dB per STFT bin): 3 Gaussian bumps of +-1-3 dB.

    Seeded by the attack number only, so it is the same in every corpus: a
    vocoder's systematic spectral bias.
    """
    rng = np.random.default_rng([7, int(attack[1:])])
    db = np.zeros(_FREQS.size)
    for _ in range(3):
        centre, width = rng.uniform(300.0, 7000.0), rng.uniform(300.0, 1500.0)
        db += rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 3.0) * np.exp(-0.5 * ((_FREQS - centre) / width) ** 2)
    return db


def vocoder_signature(attack: str, rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Artefacts every attack shares: noisy, 3-8 dB weaker high band above 4.5-6.5 kHz; plus the colouration."""
    spec = _stft(x)
    env = _cepstral_envelope(np.abs(spec), 20)
    hf = 1.0 / (1.0 + np.exp(-(_FREQS - rng.uniform(4500.0, 6500.0)) / 400.0))
    noise = env * _complex_noise(rng, spec.shape) * 10.0 ** (-rng.uniform(3.0, 8.0) / 20.0)
    spec = ((1.0 - hf) * spec + hf * noise) * 10.0 ** (attack_colouration(attack) / 20.0)
    return _istft(spec, x.size)


def spoof_voice(attack: str, rng: np.random.Generator, voice_seed: Sequence[int], spk: SpeakerProfile,
                sess: SessionProfile, phones: Sequence[tuple[str, float]], n: int) -> np.ndarray:
    """The clean voice of a spoof: ``phones`` spoken by ``spk`` and re-synthesised by ``attack``.

    ``voice_seed`` seeds the voice synthesiser (a bona fide utterance would use
    the same seed with the unmodified speaker); ``rng`` drives the attack.
    """
    return vocoder_signature(attack, rng, _attack_voice(attack, rng, voice_seed, spk, sess, phones, n))


def _attack_voice(attack: str, rng: np.random.Generator, voice_seed: Sequence[int], spk: SpeakerProfile,
                  sess: SessionProfile, phones: Sequence[tuple[str, float]], n: int) -> np.ndarray:
    def voice(s: SpeakerProfile) -> np.ndarray:
        return synthesize_voice(np.random.default_rng(list(voice_seed)), s, sess, phones, n)

    if attack == "A01":
        return envelope_noise_vocoder(rng, voice(spk))
    if attack == "A02":
        return griffin_lim(rng, voice(spk))
    if attack == "A03":
        return band_limit(rng, voice(spk))
    if attack == "A04":
        return over_smooth(voice(smooth_source_speaker(rng, spk)))
    if attack == "A05":
        return frame_glitches(rng, voice(spk))
    if attack == "A06":
        return voice(aperiodic_speaker(rng, spk))
    if attack == "A07":
        return frame_glitches(rng, griffin_lim(rng, voice(spk), n_iter=1))
    if attack == "A08":
        return envelope_noise_vocoder(rng, voice(smooth_source_speaker(rng, spk)), cutoff=(1000.0, 2000.0))
    if attack == "A09":
        return band_limit(rng, voice(aperiodic_speaker(rng, spk)), rates=(9000, 11000))
    raise SpkpeftError(f"unknown attack {attack!r}; known: {' '.join(KNOWN_ATTACKS + UNSEEN_ATTACKS)}")

# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class CmCorpusSpec:
    """Sizes and seed of a mini spoofing corpus (utterances and speakers per set)."""

    n_train: int = 300
    n_dev: int = 150
    n_eval: int = 200
    n_train_spk: int = 10
    n_dev_spk: int = 6
    n_eval_spk: int = 8
    bonafide_frac: float = 0.3
    min_dur: float = 1.0
    max_dur: float = 2.0
    seed: int = 0
    first_speaker: int = 0      # global index of the first train speaker (SASV: voices unseen elsewhere)
    n_enroll: int = 0           # SASV: enrollment utterances per dev / eval speaker (0: no SASV parts)

    def n_utts(self, set_name: str) -> int:
        return {"train": self.n_train, "dev": self.n_dev, "eval": self.n_eval}[set_name]

    def n_spk(self, set_name: str) -> int:
        return {"train": self.n_train_spk, "dev": self.n_dev_spk, "eval": self.n_eval_spk}[set_name]

    def first_spk(self, set_name: str) -> int:
        """Global index of the set's first speaker (train, then dev, then eval, from ``first_speaker``)."""
        return self.first_speaker + {"train": 0, "dev": self.n_train_spk,
                                     "eval": self.n_train_spk + self.n_dev_spk}[set_name]


@dataclass(frozen=True)
class CmUtt:
    """One protocol line: set, index within the set (seeds its draws), ids, attack and length."""

    set_name: str
    index: int
    utt_id: str
    spk: int                    # global speaker index
    spk_id: str
    attack: str                 # "-" for bona fide
    n_samples: int

    @property
    def key(self) -> str:
        return "bonafide" if self.attack == "-" else "spoof"

    @property
    def relpath(self) -> str:
        return f"LA/ASVspoof2019_LA_{self.set_name}/flac/{self.utt_id}.flac"

    def protocol_line(self) -> str:
        return f"{self.spk_id} {self.utt_id} - {self.attack} {self.key}"


SASV_SETS = ("dev", "eval")
GENDERS = ("female", "male")


def enroll_relpath(set_name: str, gender: str) -> str:
    return f"LA/ASVspoof2019_LA_asv_protocols/ASVspoof2019.LA.asv.{set_name}.{gender}.trn.txt"


def sasv_trials_relpath(set_name: str) -> str:
    return f"LA/ASVspoof2019_LA_asv_protocols/ASVspoof2019.LA.asv.{set_name}.gi.trl.txt"


def protocol_relpath(set_name: str) -> str:
    return f"LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{PROTOCOL_SUFFIX[set_name]}.txt"


def asv_scores_relpath(set_name: str) -> str:
    return f"LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{set_name}.gi.trl.scores.txt"


def _rng(spec: CmCorpusSpec, *stream: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, *stream])


def validate_spec(spec: CmCorpusSpec) -> None:
    for s in SETS:
        n, n_spk = spec.n_utts(s), spec.n_spk(s)
        if not 1 <= n_spk <= n:
            raise SpkpeftError(f"{s}: need 1 <= speakers ({n_spk}) <= utterances ({n})")
        n_bona = round(spec.bonafide_frac * n)
        if n_bona < 1 or n - n_bona < 1:
            raise SpkpeftError(f"{s}: {n} utterances with bona fide fraction {spec.bonafide_frac} "
                               f"leave a class empty")
    if spec.first_speaker < 0 or spec.n_enroll < 0:
        raise SpkpeftError("first_speaker and n_enroll must be >= 0")
    if spec.first_speaker + spec.n_train_spk + spec.n_dev_spk + spec.n_eval_spk > 9999:
        raise SpkpeftError("at most 9999 speakers (ids LA_NNNN), first_speaker included")
    if not 0.25 <= spec.min_dur <= spec.max_dur:
        raise SpkpeftError("durations need 0.25 <= min_dur <= max_dur")


def plan_set(spec: CmCorpusSpec, set_name: str) -> list[CmUtt]:
    """The set's utterances in protocol order (sorted by id).

    ``round(bonafide_frac * n)`` bona fide utterances, the spoofs spread evenly
    over the set's attacks; speakers cycled evenly; ids ``LA_<T|D|E>_NNNNNNN``
    with distinct random 7-digit numbers.
    """
    k_set = SETS.index(set_name)
    rng = _rng(spec, 0, k_set)
    n, n_spk = spec.n_utts(set_name), spec.n_spk(set_name)
    n_bona = round(spec.bonafide_frac * n)
    attacks = SET_ATTACKS[set_name]
    labels = ["-"] * n_bona + [attacks[i % len(attacks)] for i in range(n - n_bona)]
    labels = [labels[i] for i in rng.permutation(n)]
    spks = rng.permutation(np.arange(n) % n_spk)
    numbers = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
    lo, hi = math.ceil(spec.min_dur * SR), math.floor(spec.max_dur * SR)
    lengths = np.clip(np.round(rng.uniform(spec.min_dur, spec.max_dur, n) * SR), lo, max(lo, hi)).astype(int)
    first = spec.first_spk(set_name)
    plan = [CmUtt(set_name, k, f"LA_{SET_LETTER[set_name]}_{int(numbers[k]):07d}", first + int(spks[k]),
                  f"LA_{first + int(spks[k]) + 1:04d}", labels[k], int(lengths[k])) for k in range(n)]
    return sorted(plan, key=lambda u: u.utt_id)


def plan_corpus(spec: CmCorpusSpec) -> dict[str, list[CmUtt]]:
    validate_spec(spec)
    return {s: plan_set(spec, s) for s in SETS}


def plan_enrollment(spec: CmCorpusSpec, set_name: str, plan: Sequence[CmUtt]) -> list[CmUtt]:
    """``n_enroll`` bona fide utterances per speaker of a dev / eval set, outside its CM protocol.

    Indices continue after the CM utterances (``len(plan) + j``, which seeds their draws); ids are
    random 7-digit numbers from their own stream, none equal to a CM id of the set.
    """
    k_set = SETS.index(set_name)
    rng = _rng(spec, 7, k_set)
    taken = {u.utt_id for u in plan}
    first = spec.first_spk(set_name)
    lo, hi = math.ceil(spec.min_dur * SR), math.floor(spec.max_dur * SR)
    out = []
    for k in range(spec.n_spk(set_name) * spec.n_enroll):
        spk = first + k // spec.n_enroll
        utt_id = None
        while utt_id is None or utt_id in taken:
            utt_id = f"LA_{SET_LETTER[set_name]}_{int(rng.integers(1_000_000, 10_000_000)):07d}"
        taken.add(utt_id)
        length = int(np.clip(round(rng.uniform(spec.min_dur, spec.max_dur) * SR), lo, max(lo, hi)))
        out.append(CmUtt(set_name, len(plan) + k, utt_id, spk, f"LA_{spk + 1:04d}", "-", length))
    return out


def sasv_lists(spec: CmCorpusSpec, set_name: str, plan: Sequence[CmUtt], enroll: Sequence[CmUtt],
               female: dict[int, bool]) -> tuple[dict[str, list[str]], list[str]]:
    """The enrollment list lines by gender and the trial lines ``SPEAKER UTT SOURCE KEY`` (module docstring)."""
    by_spk: dict[int, list[str]] = {}
    for u in enroll:
        by_spk.setdefault(u.spk, []).append(u.utt_id)
    lists: dict[str, list[str]] = {g: [] for g in GENDERS}
    for spk, utts in sorted(by_spk.items()):
        lists["female" if female[spk] else "male"].append(f"LA_{spk + 1:04d} {','.join(utts)}")
    trials = []
    for spk in sorted(by_spk):
        same = [o for o in by_spk if o != spk and female[o] == female[spk]] or [o for o in by_spk if o != spk]
        claimed = f"LA_{spk + 1:04d}"
        for u in plan:
            if u.spk == spk:
                trials.append(f"{claimed} {u.utt_id} {'bonafide target' if u.attack == '-' else u.attack + ' spoof'}")
            elif u.attack == "-" and u.spk in same:
                trials.append(f"{claimed} {u.utt_id} bonafide nontarget")
    return lists, trials


def synthesize_cm_utterance(spec: CmCorpusSpec, u: CmUtt, speaker: SpeakerProfile) -> np.ndarray:
    """The audio of one planned utterance (float32, 16 kHz, ``|x| <= 0.95``)."""
    k_set = SETS.index(u.set_name)
    sess = sample_session(_rng(spec, 2, k_set, u.index))
    rng = _rng(spec, 3, k_set, u.index)
    phones = sample_phones(rng, u.n_samples / SR, speaker.rate * sess.rate_factor)
    voice_seed = (spec.seed, 4, k_set, u.index)
    if u.attack == "-":
        clean = synthesize_voice(np.random.default_rng(list(voice_seed)), speaker, sess, phones, u.n_samples)
    else:
        clean = spoof_voice(u.attack, _rng(spec, 5, k_set, u.index), voice_seed, speaker, sess, phones,
                            u.n_samples)
    return apply_channel(rng, clean, sess.channel).astype(np.float32)


def asv_score_lines(spec: CmCorpusSpec, set_name: str, plan: Sequence[CmUtt]) -> list[str]:
    """Synthetic ASV scores ``SOURCE KEY SCORE`` for the protocol's utterances (see module docstring)."""
    rng = _rng(spec, 6, SETS.index(set_name))
    lines = []
    for u in plan:
        if u.attack == "-":
            key = "target" if rng.random() < ASV_TARGET_FRACTION else "nontarget"
        else:
            key = "spoof"
        mean, std = ASV_MEANS_STDS[key]
        lines.append(f"{'bonafide' if u.attack == '-' else u.attack} {key} {rng.normal(mean, std):.6f}")
    return lines


def _write_flac(path: Path, x: np.ndarray) -> None:
    write_audio(path, x, SR, fmt="FLAC")


def write_cm_corpus(root: str | Path, spec: CmCorpusSpec,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Write the corpus under ``root`` (see :mod:`local/make_mini_cm_corpus.py` for the layout).

    The protocols and ASV scores are removed first and written last (the eval
    CM protocol the very last).  Returns ``n_utts``, ``n_bonafide``,
    ``n_speakers`` and ``minutes`` of audio.
    """
    root = Path(root)
    plans = plan_corpus(spec)
    enroll = {s: plan_enrollment(spec, s, plans[s]) for s in SASV_SETS} if spec.n_enroll else {}
    refuse_foreign_files(root, {u.relpath for plan in [*plans.values(), *enroll.values()] for u in plan},
                         "LA/ASVspoof2019_LA_*/flac/*")
    lists = [protocol_relpath(s) for s in SETS] + [asv_scores_relpath(s) for s in ("dev", "eval")]
    lists += [enroll_relpath(s, g) for s in SASV_SETS for g in GENDERS] + [sasv_trials_relpath(s) for s in SASV_SETS]
    for rel in lists:
        (root / rel).unlink(missing_ok=True)
    n_total = sum(len(p) for p in [*plans.values(), *enroll.values()])
    speakers: dict[int, SpeakerProfile] = {}
    done = 0
    for set_name in SETS:
        for u in plans[set_name] + enroll.get(set_name, []):
            if u.spk not in speakers:
                speakers[u.spk] = sample_speaker(_rng(spec, 1, u.spk))
            _write_flac(root / u.relpath, synthesize_cm_utterance(spec, u, speakers[u.spk]))
            done += 1
            if progress is not None:
                progress(done, n_total)
    for set_name in ("dev", "eval"):
        write_text_atomic(root / asv_scores_relpath(set_name), asv_score_lines(spec, set_name, plans[set_name]))
    for set_name, utts in enroll.items():
        by_gender, trials = sasv_lists(spec, set_name, plans[set_name], utts,
                                       {k: speakers[k].female for k in speakers})
        for gender, lines in by_gender.items():
            write_text_atomic(root / enroll_relpath(set_name, gender), lines)
        write_text_atomic(root / sasv_trials_relpath(set_name), trials)
    for set_name in SETS:
        write_text_atomic(root / protocol_relpath(set_name), (u.protocol_line() for u in plans[set_name]))
    all_utts = [u for p in [*plans.values(), *enroll.values()] for u in p]
    return {"n_utts": len(all_utts), "n_bonafide": sum(u.attack == "-" for u in all_utts),
            "n_speakers": len(speakers), "minutes": sum(u.n_samples for u in all_utts) / SR / 60.0}
