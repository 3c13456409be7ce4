"""Spoofing countermeasures (``task: cm``): bona fide vs spoof from ``utt2label`` (with the
attack of every spoof in ``utt2attack``), a head + 2-class layer trained with (weighted)
cross-entropy, the development set's EER picks ``best.pt``, stage 4 writes one bona fide
score per utterance (higher = more bona fide), stage 5 EER, min t-DCF and per-attack EER."""

from spkpeft.tasks.cm.task import CMTask, CMTaskConfig

__all__ = ["CMTask", "CMTaskConfig"]
