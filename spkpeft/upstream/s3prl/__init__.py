"""The s3prl family: WavLM, wav2vec 2.0 / XLS-R and HuBERT through s3prl's own classes and
loaders (``upstream.type: s3prl``).

``upstream.name``: an s3prl hub name (``wavlm_base_plus``, ``xls_r_300m``, ...), a local
checkpoint in s3prl's ``*_local`` formats, or ``random:<arch>`` (a published architecture
with random weights, :data:`~spkpeft.upstream.s3prl.random_arch.ARCHS`).
"""

from spkpeft.upstream.base import UpstreamConfig, register_family
from spkpeft.upstream.s3prl.wrapper import S3prlUpstream, load_upstream

register_family("s3prl", UpstreamConfig, S3prlUpstream, description="WavLM / wav2vec 2.0 / HuBERT via s3prl")

__all__ = ["S3prlUpstream", "load_upstream"]
