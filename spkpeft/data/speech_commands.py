"""Conventions of the Speech Commands v2 release (Warden 2018, arXiv 1804.03209).

Layout of ``speech_commands_v0.02``::

    <word>/<hash>_nohash_<n>.wav   16 kHz mono 16-bit, at most 1 s; <hash> = 8 hex digits naming
                                   the speaker, <n> = the speaker's repetition of that word
    validation_list.txt            relative paths of the validation utterances, one a line
    testing_list.txt               the same for the test utterances
    _background_noise_/*.wav       long noise recordings (the 12-class task cuts ``_silence_`` from them)

The release assigns a whole speaker to one set by hashing the part of the file name before
``_nohash_`` (the TensorFlow ``speech_commands`` example, ``input_data.which_set``, and the
release README): ``p = (int(sha1(hash_name), 16) mod (2^27)) * 100 / (2^27 - 1)``; validation
if ``p < validation_pct``, testing if ``p < validation_pct + testing_pct``, else training; the
release used 10 % and 10 % (:func:`which_set`).  Every utterance in neither list is training.
"""

from __future__ import annotations

import hashlib
import re

#: the 35 words of Speech Commands v2 (v1's 30 plus backward, follow, forward, learn, visual)
WORDS = ("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four",
         "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right",
         "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero")
#: the ten command words of the 12-class task (Warden 2018)
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
NOISE_DIR = "_background_noise_"
#: the two lists of the release, by the set name of our data directories
LISTS = {"dev": "validation_list.txt", "test": "testing_list.txt"}
#: an utterance's file name
FILE = re.compile(r"^[0-9a-f]{8}_nohash_[0-9]+\.wav$")
#: the release's split percentages (validation, testing)
RELEASE_PCT = (10.0, 10.0)
_MAX_NUM_WAVS_PER_CLASS = 2 ** 27 - 1


def file_name(speaker_hash: str, repetition: int) -> str:
    """``<hash>_nohash_<n>.wav``."""
    return f"{speaker_hash}_nohash_{repetition}.wav"


def which_set(name: str, validation_pct: float = RELEASE_PCT[0], testing_pct: float = RELEASE_PCT[1]) -> str:
    """``"validation"``, ``"testing"`` or ``"training"`` for a file name (or a bare speaker hash), by the
    release's rule: the SHA-1 of the part before ``_nohash_`` mapped to a percentage (module docstring)."""
    hash_name = re.sub(r"_nohash_.*$", "", name.rsplit("/", 1)[-1])
    digest = int(hashlib.sha1(hash_name.encode("utf-8")).hexdigest(), 16)
    pct = (digest % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if pct < validation_pct:
        return "validation"
    if pct < validation_pct + testing_pct:
        return "testing"
    return "training"
