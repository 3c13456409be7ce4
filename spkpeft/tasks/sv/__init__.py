"""Speaker verification (``task: sv``): speakers from ``utt2spk``, ECAPA-style embeddings
trained with a margin softmax, validation EER on held-out training speakers, stage 4
embeddings (Kaldi ark/scp), stage 5 cosine scoring with score normalisation, EER / minDCF."""

from spkpeft.tasks.sv.task import SVTask, SVTaskConfig

__all__ = ["SVTask", "SVTaskConfig"]
