"""Spoof-aware speaker verification (``task: sasv``): a trained speaker-verification experiment and a
trained countermeasure experiment fused into one score per SASV trial (:mod:`.fusion`,
:mod:`.embedding_fusion`), scored with the SASV 2022 and ASVspoof 5 metrics
(:mod:`spkpeft.eval.sasv_metrics`); stages in :mod:`.task`."""

from spkpeft.tasks.sasv.task import SASVTask, SASVTaskConfig

__all__ = ["SASVTask", "SASVTaskConfig"]
