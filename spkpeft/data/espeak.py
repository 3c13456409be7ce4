"""Speech from eSpeak NG (the formant synthesizer), loaded from the ``espeakng-loader`` wheel.

The wheel (pinned in requirements.txt) ships ``libespeak-ng.so`` 1.52 and its
``espeak-ng-data`` (phoneme tables, the English dictionary, ``voices/!v`` variants), so
nothing is installed outside Python.  The library is driven through its C API
(``speak_lib.h``) with :mod:`ctypes`: ``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0,
data_path, espeakINITIALIZE_DONT_EXIT)`` returns the sample rate (22,050 Hz); a callback
``int cb(short *wav, int n, espeak_EVENT *events)`` receives the 16-bit samples of
``espeak_Synth(text, ..., espeakCHARS_UTF8)``; ``espeak_SetVoiceByName("en-us+f3")`` picks
a language voice plus a ``!v`` variant; ``espeak_SetParameter`` sets ``espeakRATE`` (1,
words per minute, 80-450), ``espeakPITCH`` (3, 0-99, 50 normal), ``espeakRANGE`` (4, pitch
range 0-99) and ``espeakWORDGAP`` (7, pause between words in 10 ms units).

**Determinism.**  eSpeak keeps synthesis state in static variables that neither
``espeak_Initialize`` nor ``espeak_Terminate`` resets (the pitch and phase the previous
utterance ended with, resonator memories), and draws breath and voicing noise from
``espeak_rand`` and libc ``rand()``.  So the same call twice in one process gives
different samples (measured here: lengths differ by up to 100 samples).  :func:`speak`
therefore loads a fresh instance of the library for every utterance (``dlopen`` of a private
copy of the ``.so``, so no other user of the library in the process can keep it mapped;
``dlclose`` afterwards drops its static state), and seeds both generators
(``espeak_ng_SetRandSeed``, ``srand``) before synthesis: the samples depend on the text,
voice, parameters and seed only.  Cost: about 15 ms per word.
"""

from __future__ import annotations

import atexit
import ctypes
import shutil
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from spkpeft.errors import SpkpeftError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE, _PITCH, _RANGE, _WORDGAP = 1, 3, 4, 7
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LOCK = threading.Lock()


@dataclass(frozen=True)
class EspeakVoice:
    """A voice and its parameters: ``name`` = ``<language voice>[+<variant>]`` (e.g. ``en-us+f3``),
    ``rate`` in words per minute (80-450), ``pitch`` and ``pitch_range`` (0-99), ``word_gap`` in
    10 ms units."""

    name: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    word_gap: int = 0

    def __post_init__(self) -> None:
        if not 80 <= self.rate <= 450:
            raise SpkpeftError(f"espeak rate must be in 80..450 words per minute, got {self.rate}")
        for name in ("pitch", "pitch_range"):
            if not 0 <= getattr(self, name) <= 99:
                raise SpkpeftError(f"espeak {name} must be in 0..99, got {getattr(self, name)}")
        if not 0 <= self.word_gap <= 100:
            raise SpkpeftError(f"espeak word_gap must be in 0..100, got {self.word_gap}")


@lru_cache(maxsize=1)
def _installation() -> tuple[str, bytes]:
    """``(path of a private copy of libespeak-ng.so, data directory)``; the copy is removed at exit."""
    try:
        import espeakng_loader
    except ImportError:
        raise SpkpeftError("espeak-ng is not available: the espeakng-loader package (requirements.txt) "
                           "is not installed; run '. ./path.sh'") from None
    source, data = Path(espeakng_loader.get_library_path()), Path(espeakng_loader.get_data_path())
    if not source.is_file() or not (data / "phontab").is_file():
        raise SpkpeftError(f"espeakng-loader is incomplete: {source} or {data / 'phontab'} is missing")
    private = Path(tempfile.mkdtemp(prefix="spkpeft-espeak-"))
    atexit.register(shutil.rmtree, private, True)
    copy = private / source.name
    shutil.copyfile(source, copy)
    return str(copy), str(data).encode()


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    """The C library of the process (``srand``, ``dlclose``)."""
    libc = ctypes.CDLL(None)
    libc.dlclose.argtypes = [ctypes.c_void_p]
    libc.srand.argtypes = [ctypes.c_uint]
    return libc


def _check_unloaded(lib_path: str) -> None:
    """Raise if the library is still mapped after ``dlclose`` (its static state would carry over)."""
    maps = Path("/proc/self/maps")
    if maps.is_file() and lib_path in maps.read_text():
        raise SpkpeftError(f"{lib_path} stayed loaded after dlclose: eSpeak synthesis would not be reproducible")


def speak(text: str, voice: EspeakVoice, seed: int) -> tuple[np.ndarray, int]:
    """``(samples float32 in [-1, 1), sample rate)`` of ``text`` spoken by ``voice``; a function of
    its arguments only (module docstring).  An unknown voice or variant is a :class:`SpkpeftError`
    (eSpeak itself would fall back to the base voice for an unknown variant)."""
    lib_path, data_path = _installation()
    variant = voice.name.partition("+")[2]
    if variant and not (Path(data_path.decode()) / "voices" / "!v" / variant).is_file():
        raise SpkpeftError(f"espeak-ng has no voice variant '{variant}' (it would speak the base voice instead)")
    chunks: list[np.ndarray] = []

    def receive(wav, n, _events) -> int:
        if wav and n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    callback = _CALLBACK(receive)
    with _LOCK:
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as err:  # e.g. a temporary directory mounted noexec
            raise SpkpeftError(f"cannot load {lib_path} ({err}); set TMPDIR to a directory that allows "
                               f"executable mappings") from None
        try:
            sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT)
            if sr <= 0:
                raise SpkpeftError(f"espeak_Initialize failed on {data_path.decode()}")
            lib.espeak_SetSynthCallback(callback)
            if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise SpkpeftError(f"espeak-ng has no voice '{voice.name}'")
            for param, value in ((_RATE, voice.rate), (_PITCH, voice.pitch), (_RANGE, voice.pitch_range),
                                 (_WORDGAP, voice.word_gap)):
                lib.espeak_SetParameter(param, int(value), 0)
            lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
            _libc().srand(seed & 0xFFFFFFFF)
            data = text.encode("utf-8") + b"\0"
            if lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None) != 0:
                raise SpkpeftError(f"espeak_Synth failed on {text!r}")
            lib.espeak_Synchronize()
            lib.espeak_Terminate()
        finally:
            _libc().dlclose(lib._handle)
        _check_unloaded(lib_path)
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return samples.astype(np.float32) / 32768.0, int(sr)
