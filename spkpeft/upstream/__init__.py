"""Upstreams: the protocol PEFT methods target (:mod:`.base`) and the families behind it.

``build_upstream(cfg)`` builds the family named by ``upstream.type`` (registered in
:data:`~spkpeft.upstream.base.UPSTREAMS`); every upstream returns all hidden states
``[(B, T, D)] * (num_layers + 1)`` and the frame lengths ``(B,)``.  Families: ``s3prl``
(:mod:`.s3prl`: WavLM, wav2vec 2.0 / XLS-R, HuBERT), ``fbank``
(:mod:`.fbank`: log mel / linear filterbanks, no blocks), ``ast`` (:mod:`.ast`: the Audio
Spectrogram Transformer through ``transformers``) and ``whisper`` (:mod:`.whisper`: Whisper
encoders through ``transformers``).
"""

from spkpeft.upstream import ast, fbank, s3prl, whisper  # noqa: F401  (register the families)
from spkpeft.upstream.base import UPSTREAMS, UpstreamBase, UpstreamConfig, build_upstream, check_upstream
from spkpeft.upstream.s3prl.random_arch import ARCHS as RANDOM_ARCHS
from spkpeft.upstream.s3prl.wrapper import S3prlUpstream, load_upstream

__all__ = ["RANDOM_ARCHS", "UPSTREAMS", "S3prlUpstream", "UpstreamBase", "UpstreamConfig", "build_upstream",
           "check_upstream", "load_upstream"]
