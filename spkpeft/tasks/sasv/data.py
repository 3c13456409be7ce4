"""The SASV part of a corpus directory (written by ``local/prepare_asvspoof2019_la.py`` and
``local/prepare_asvspoof5.py``) and its checks (stage 2).

Layout (``CORPUS = data/<corpus>``)::

    CORPUS/<set>/{wav.scp,utt2spk,...}          the countermeasure sets; a trial's test utterance is one of them
    CORPUS/sasv/<set>_enroll/{wav.scp,utt2spk,spk2utt[,spk2gender]}   enrollment: utt2spk = the enrolled speaker
    CORPUS/sasv/<set>.trl                       trials "SPEAKER UTT SOURCE KEY" (spkpeft.eval.sasv_metrics)
    CORPUS/train/{...,utt2label}                the training set (SASV 2022 Baseline 2 draws its trials there)

A speaker's enrollment model is the mean of its enrollment utterances' embeddings
(:func:`spkpeft.tasks.sv.scoring.model_embeddings`, as the ``sv`` task's ``enroll`` models).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.sasv_metrics import SasvProtocol, read_sasv_protocol
from spkpeft.io.datadir import DataDir, read_data_dir

SASV_DIR = "sasv"
TRAIN = "train"


@dataclass(frozen=True)
class SasvSet:
    """One SASV set of a corpus directory: its trials, enrollment and test data directories."""

    corpus: Path
    name: str

    @property
    def protocol_path(self) -> Path:
        return self.corpus / SASV_DIR / f"{self.name}.trl"

    @property
    def enroll_dir(self) -> Path:
        return self.corpus / SASV_DIR / f"{self.name}_enroll"

    @property
    def test_dir(self) -> Path:
        return self.corpus / self.name

    def read(self) -> tuple[SasvProtocol, DataDir, DataDir]:
        """The checked protocol, enrollment and test directories (:func:`check_sasv_set`)."""
        return check_sasv_set(self)


def check_sasv_set(s: SasvSet) -> tuple[SasvProtocol, DataDir, DataDir]:
    """Refuse a set whose files are missing or disagree: every claimed speaker enrolled and every test
    utterance in the set's data directory (errors name the protocol line)."""
    for path in (s.protocol_path, s.enroll_dir / "wav.scp", s.test_dir / "wav.scp"):
        if not path.is_file():
            raise file_error(path, f"missing (SASV set '{s.name}' needs {s.protocol_path.name}, "
                                   f"{s.enroll_dir.name}/ and {s.name}/; stage 1 prepares them)")
    protocol = read_sasv_protocol(s.protocol_path)
    enroll, test = read_data_dir(s.enroll_dir), read_data_dir(s.test_dir)
    for number, (spk, utt) in enumerate(protocol.pairs(), start=1):
        if spk not in enroll.spk2utt:
            raise file_error(s.protocol_path, f"claimed speaker '{spk}' has no enrollment utterance in "
                                              f"{s.enroll_dir / 'utt2spk'}", number)
        if utt not in test.wav:
            raise file_error(s.protocol_path, f"test utterance '{utt}' is not in {s.test_dir / 'wav.scp'}", number)
    return protocol, enroll, test


def check_training_dir(corpus: Path) -> DataDir:
    """The training directory with ``utt2label`` (bonafide | spoof), for the embedding fusion."""
    path = corpus / TRAIN
    if not (path / "wav.scp").is_file():
        raise file_error(path / "wav.scp", "missing (the embedding fusion draws its training trials from train/)")
    data = read_data_dir(path)
    if data.utt2label is None:
        raise file_error(path / "utt2label", "missing (the embedding fusion needs bonafide|spoof labels)")
    for number, (utt, label) in enumerate(data.utt2label.items(), start=1):
        if label not in ("bonafide", "spoof"):
            raise file_error(path / "utt2label", f"label '{label}' of '{utt}' must be bonafide or spoof", number)
    if "spoof" not in data.utt2label.values() or "bonafide" not in data.utt2label.values():
        raise SpkpeftError(f"{path / 'utt2label'}: the embedding fusion needs bona fide and spoofed training utterances")
    return data
