"""Synthetic spoken keywords in the Speech Commands v2 release layout (the "mini KWS" corpus).

Layout (:mod:`spkpeft.data.speech_commands`), under ROOT::

    <word>/<hash>_nohash_<n>.wav    1 s, 16 kHz mono 16-bit; one speaker = one <hash>, n = 0..reps-1
    validation_list.txt             the dev speakers' files, testing_list.txt the test speakers'
    _background_noise_/<name>.wav   NOISE_FILES, --noise-seconds long each, and a README.md

so ``local/prepare_speechcommands.sh`` prepares it unchanged (``--task 35``: one class per word;
``--task 12``: the ten commands, the other words as ``_unknown_``, ``_silence_`` from the noise).

**Speakers.**  Candidate ``k = 0, 1, ...`` has the hash ``sha1("spkpeft-kws:<seed>:<k>")[:8]``;
the release's hashing rule (:func:`~spkpeft.data.speech_commands.which_set`, 10 % validation,
10 % testing) puts it in a set, and candidates are taken in order until every set has its
number of speakers (later candidates of a full set are skipped).  So speakers are disjoint
across the sets, and a speaker's set follows from its hash exactly as in the release.  A
speaker's voice (stream ``[seed, 1, k]``) is an eSpeak NG voice (:mod:`spkpeft.data.espeak`):
an English accent of ``ACCENTS`` and a variant of ``VARIANTS`` (each variant sets its own
formant scales, pitch base and source), pitch ``U(25, 75)``, pitch range ``U(20, 80)``, rate
``U(100, 190)`` words per minute, and a frequency warp ``w = U(0.9, 1.1)``: the 22,050-Hz output
is resampled as if it had been recorded at ``22050 w`` Hz (rounded to 50 Hz), which multiplies
every frequency (formants and F0) by ``w`` and every duration by ``1 / w``, the effect of a
shorter or longer vocal tract.  Each speaker records in one session: one channel
(:func:`~spkpeft.data.synth.sample_channel` of stream ``[seed, 2, k]`` with
``--channel-severity``: EQ, room reverberation, coloured noise, level).

**Utterances.**  Repetition ``n`` of word ``v`` (stream ``[seed, 3, k, i_v, n]``, ``i_v`` the
word's position in the 35 words, so a clip does not depend on which other words or how many
speakers a corpus holds): the speaker's pitch ``+ N(0, 4)``, range ``+ N(0, 6)``, rate
``x exp(N(0, 0.08))``; the word followed by ``.``, ``!``, ``?`` or ``,`` (probabilities 0.45,
0.2, 0.2, 0.15: falling, emphatic, rising and continuation intonation); eSpeak's noise
seeded from the stream.  The warped 16-kHz word is cut to the frames within 40 dB of its
loudest 10-ms frame (plus 20 ms either side), shortened to 0.95 s if longer (20-ms
fade-out), placed at a uniformly random onset in a 1-s clip of zeros and passed through the
speaker's channel (:func:`~spkpeft.data.synth.apply_channel`: reverberation, noise at the
channel's SNR re the clip's mean power, EQ, level, peak <= 0.95).

**Background noise** (stream ``[seed, 4, j]``): ``white_noise`` and ``pink_noise``
(:func:`~spkpeft.data.synth.coloured_noise`, ``alpha`` 0 and 1), ``running_tap`` and ``wind``
(the ``rain`` and ``wind`` sounds of :mod:`spkpeft.data.synth_sounds`), each at an RMS of
``U(-32, -22)`` dBFS with peaks limited to 0.95.

Every random draw comes from ``numpy.random.default_rng([seed, stream, ...])`` and eSpeak is
reloaded for every word, so the same options give byte-identical files.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from spkpeft.data.espeak import EspeakVoice, speak
from spkpeft.data.speech_commands import COMMANDS, LISTS, NOISE_DIR, WORDS, file_name, which_set
from spkpeft.data.synth import SR, Channel, apply_channel, coloured_noise, refuse_foreign_files, sample_channel
from spkpeft.data.synth_sounds import synthesize_sound
from spkpeft.errors import SpkpeftError
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.audio import write_audio
from spkpeft.io.datadir import c_sort_key
from spkpeft.io.resample import resample

#: English voices of eSpeak NG 1.52 (the accent of a speaker)
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc",
           "en-029")
#: the ``voices/!v`` variants of eSpeak NG 1.52 that sound like an adult person: F1-F3 scaled by 70-140 %,
#: echo at most 30 %, none of the robot, whisper, croak, demonic or sped-up variants
VARIANTS = ("Alex", "Andrea", "Annie", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo", "Mario", "Mike",
            "Nguyen", "Reed", "Storm", "adam", "anika", "announcer", "antonio", "aunty", "belinda", "benjamin",
            "caleb", "david", "ed", "edward", "edward2", "f1", "f2", "f3", "f4", "f5", "grandma", "grandpa", "ian",
            "iven", "iven2", "iven3", "iven4", "john", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6",
            "linda", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "max", "michel", "miguel", "mike2", "norbert",
            "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph", "steph2", "steph3",
            "victor")
#: filler words (not commands) of the default corpus: ``_unknown_`` in the 12-class task
FILLERS = ("bed", "bird", "cat", "dog", "house", "tree")
DEFAULT_WORDS = COMMANDS + FILLERS
#: intonation marks after the word, with their probabilities
PUNCTUATION = ((".", 0.45), ("!", 0.2), ("?", 0.2), (",", 0.15))
NOISE_FILES = ("white_noise", "pink_noise", "running_tap", "wind")
SETS = ("train", "dev", "test")
_SET_OF = {"training": "train", "validation": "dev", "testing": "test"}
_WARP_STEP_HZ = 50
_MAX_WORD_S = 0.95
_MARGIN_S, _FADE_S, _TRIM_DB = 0.02, 0.02, 40.0


@dataclass(frozen=True)
class KwsCorpusSpec:
    """Words, speakers per set, repetitions, seed, channel severity and noise length of a corpus."""

    words: tuple[str, ...] = DEFAULT_WORDS
    n_train_spk: int = 40
    n_dev_spk: int = 10
    n_test_spk: int = 12
    reps: int = 2
    seed: int = 0
    channel_severity: float = 1.0
    noise_seconds: float = 30.0

    def __post_init__(self) -> None:
        bad = [w for w in self.words if w not in WORDS]
        if bad or not self.words or len(set(self.words)) != len(self.words):
            raise SpkpeftError(f"words must be distinct Speech Commands v2 words ({' '.join(WORDS)}), "
                               f"got {' '.join(self.words) or 'none'}")
        if min(self.n_train_spk, self.n_dev_spk, self.n_test_spk, self.reps) < 1:
            raise SpkpeftError("every set needs at least one speaker, and every word one repetition")
        if not 0.0 < self.channel_severity <= 4.0:
            raise SpkpeftError(f"channel severity must be in (0, 4], got {self.channel_severity}")
        if not 10.0 <= self.noise_seconds <= 600.0:  # prepare_speechcommands needs >= 1 s in a 10 % share
            raise SpkpeftError(f"noise length must be in [10, 600] seconds, got {self.noise_seconds}")

    def count(self, set_name: str) -> int:
        return {"train": self.n_train_spk, "dev": self.n_dev_spk, "test": self.n_test_spk}[set_name]


@dataclass(frozen=True)
class KeywordSpeaker:
    """One speaker: candidate index ``k``, hash, set, eSpeak voice and frequency warp."""

    k: int
    hash: str
    set_name: str
    voice: EspeakVoice
    warp: float


@dataclass(frozen=True)
class PlannedKeyword:
    """One file of the corpus."""

    speaker: KeywordSpeaker
    word: str
    rep: int

    @property
    def relpath(self) -> str:
        return f"{self.word}/{file_name(self.speaker.hash, self.rep)}"


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def speaker_hash(seed: int, k: int) -> str:
    """The 8-hex-digit hash of candidate speaker ``k``."""
    return hashlib.sha1(f"spkpeft-kws:{seed}:{k}".encode()).hexdigest()[:8]


def candidate_speakers(seed: int) -> Iterator[tuple[int, str, str]]:
    """``(k, hash, set)`` of the candidates in order, the set by the release's hashing rule."""
    k = 0
    while True:
        h = speaker_hash(seed, k)
        yield k, h, _SET_OF[which_set(h)]
        k += 1


def sample_voice(rng: np.random.Generator) -> tuple[EspeakVoice, float]:
    """A speaker's eSpeak voice and frequency warp (module docstring)."""
    name = f"{ACCENTS[int(rng.integers(len(ACCENTS)))]}+{VARIANTS[int(rng.integers(len(VARIANTS)))]}"
    voice = EspeakVoice(name, rate=int(round(rng.uniform(100, 190))), pitch=int(round(rng.uniform(25, 75))),
                        pitch_range=int(round(rng.uniform(20, 80))))
    return voice, float(rng.uniform(0.9, 1.1))


def plan_speakers(spec: KwsCorpusSpec) -> list[KeywordSpeaker]:
    """The corpus's speakers in candidate order (each set filled to its count, see the module docstring)."""
    need = {s: spec.count(s) for s in SETS}
    speakers, seen = [], set()
    for k, h, set_name in candidate_speakers(spec.seed):
        if need[set_name] == 0 or h in seen:
            if not any(need.values()):
                break
            continue
        seen.add(h)
        need[set_name] -= 1
        voice, warp = sample_voice(_rng(spec.seed, 1, k))
        speakers.append(KeywordSpeaker(k, h, set_name, voice, warp))
    return speakers


def plan_kws_corpus(spec: KwsCorpusSpec) -> list[PlannedKeyword]:
    """Every file: speakers in candidate order, then words in ``spec.words`` order, then repetitions."""
    return [PlannedKeyword(s, w, n) for s in plan_speakers(spec) for w in spec.words for n in range(spec.reps)]


def _utterance_voice(rng: np.random.Generator, voice: EspeakVoice) -> EspeakVoice:
    """The speaker's voice with this utterance's pitch, range and rate jitter."""
    return EspeakVoice(voice.name, rate=int(np.clip(round(voice.rate * math.exp(rng.normal(0.0, 0.08))), 80, 450)),
                       pitch=int(np.clip(round(voice.pitch + rng.normal(0.0, 4.0)), 0, 99)),
                       pitch_range=int(np.clip(round(voice.pitch_range + rng.normal(0.0, 6.0)), 0, 99)))


def trim_silence(x: np.ndarray, sr: int = SR) -> np.ndarray:
    """The span of 10-ms frames within ``_TRIM_DB`` dB of the loudest frame, plus ``_MARGIN_S`` either side."""
    hop = sr // 100
    n_frames = max(len(x) // hop, 1)
    energy = np.array([float(np.sum(x[i * hop:(i + 1) * hop].astype(np.float64) ** 2)) for i in range(n_frames)])
    active = np.flatnonzero(energy >= energy.max() * 10.0 ** (-_TRIM_DB / 10.0))
    if energy.max() <= 0.0 or active.size == 0:
        raise SpkpeftError("eSpeak returned silence")
    margin = int(_MARGIN_S * sr)
    return x[max(active[0] * hop - margin, 0): min((active[-1] + 1) * hop + margin, len(x))]


def spoken_word(seed: int, speaker: KeywordSpeaker, word: str, rep: int) -> tuple[np.random.Generator, np.ndarray]:
    """``(the utterance's generator, the trimmed 16-kHz word)`` before placement and channel."""
    rng = _rng(seed, 3, speaker.k, WORDS.index(word), rep)
    voice = _utterance_voice(rng, speaker.voice)
    marks, probs = zip(*PUNCTUATION)
    text = word + marks[int(rng.choice(len(marks), p=probs))]
    x, sr = speak(text, voice, int(rng.integers(1, 2 ** 31)))
    src_rate = int(round(sr * speaker.warp / _WARP_STEP_HZ)) * _WARP_STEP_HZ
    return rng, trim_silence(resample(x, src_rate, SR))


def speaker_channel(seed: int, speaker: KeywordSpeaker, severity: float = 1.0) -> Channel:
    """The speaker's recording channel (stream ``[seed, 2, k]``)."""
    return sample_channel(_rng(seed, 2, speaker.k), severity=severity)


def synthesize_keyword(seed: int, speaker: KeywordSpeaker, channel: Channel, word: str, rep: int,
                       n: int = SR) -> np.ndarray:
    """One 1-s clip (``n`` float32 samples, ``|x| <= 0.95``): the word at a random onset, through ``channel``."""
    rng, x = spoken_word(seed, speaker, word, rep)
    limit = int(_MAX_WORD_S * n)
    if len(x) > limit:
        fade = int(_FADE_S * SR)
        x = x[:limit].copy()
        x[-fade:] *= np.linspace(1.0, 0.0, fade)
    clip = np.zeros(n)
    onset = int(rng.integers(0, n - len(x) + 1))
    clip[onset:onset + len(x)] = x
    return apply_channel(rng, clip, channel).astype(np.float32)


def background_noise(seed: int, index: int, seconds: float) -> np.ndarray:
    """Background-noise file ``NOISE_FILES[index]`` (module docstring), float32."""
    rng = _rng(seed, 4, index)
    n = int(round(seconds * SR))
    name = NOISE_FILES[index]
    if name in ("white_noise", "pink_noise"):
        x = coloured_noise(rng, n, 0.0 if name == "white_noise" else 1.0)
    else:
        x = synthesize_sound({"running_tap": "rain", "wind": "wind"}[name], rng, n)
    x = x * 10.0 ** (rng.uniform(-32.0, -22.0) / 20.0) / max(float(np.sqrt(np.mean(x ** 2))), 1e-12)
    peak = float(np.max(np.abs(x)))
    return (x * (0.95 / peak) if peak > 0.95 else x).astype(np.float32)


_NOISE_README = ("Background noise of a synthetic Speech Commands v2-layout corpus made by spkpeft "
                 "(spkpeft.data.synth_keywords): {names}.\n")


def write_kws_corpus(root: str | Path, spec: KwsCorpusSpec,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Write the corpus under ``root``; the two lists are removed first and written last
    (``testing_list.txt`` the very last, so its presence marks a finished corpus).

    Returns ``n_utts``, ``n_speakers`` and ``minutes`` of speech clips.
    """
    root = Path(root)
    plan = plan_kws_corpus(spec)
    noise_rel = [f"{NOISE_DIR}/{name}.wav" for name in NOISE_FILES]
    refuse_foreign_files(root, {u.relpath for u in plan} | set(noise_rel) | {f"{NOISE_DIR}/README.md"}, "*/*")
    for name in (LISTS["dev"], LISTS["test"]):
        (root / name).unlink(missing_ok=True)
    for index, rel in enumerate(noise_rel):
        write_audio(root / rel, background_noise(spec.seed, index, spec.noise_seconds), SR)
    write_text_atomic(root / NOISE_DIR / "README.md", [_NOISE_README.format(names=", ".join(NOISE_FILES)).strip()])
    channels = {s.k: speaker_channel(spec.seed, s, spec.channel_severity) for s in plan_speakers(spec)}
    for done, u in enumerate(plan, 1):
        write_audio(root / u.relpath, synthesize_keyword(spec.seed, u.speaker, channels[u.speaker.k], u.word, u.rep))
        if progress is not None:
            progress(done, len(plan))
    for set_name in ("dev", "test"):
        rels = sorted((u.relpath for u in plan if u.speaker.set_name == set_name), key=c_sort_key)
        write_text_atomic(root / LISTS[set_name], rels)
    return {"n_utts": len(plan), "n_speakers": len({u.speaker.hash for u in plan}), "minutes": len(plan) / 60.0}
