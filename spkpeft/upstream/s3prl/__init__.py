"""The s3prl family: WavLM, wav2vec 2.0 / XLS-R and HuBERT through s3prl's own classes and
loaders (``upstream.type: s3prl``).

``upstream.name``: an s3prl hub name (``wavlm_base_plus``, ``xls_r_300m``, ...), a local
checkpoint in s3prl's ``*_local`` formats, or ``random:<arch>`` (a published architecture
with random weights, :data:`~spkpeft.upstream.s3prl.random_arch.ARCHS`).
"""

from spkpeft.upstream.base import UPSTREAMS, UpstreamConfig
from spkpeft.upstream.s3prl.sources import check_source, checkpoint_file, checkpoint_name
from spkpeft.upstream.s3prl.wrapper import S3prlUpstream, load_upstream


def build_s3prl(cfg: UpstreamConfig) -> S3prlUpstream:
    """``upstream.type: s3prl``: :func:`load_upstream` of ``cfg.name`` keeping ``cfg.num_layers`` blocks."""
    return load_upstream(cfg.name, cfg.num_layers)


UPSTREAMS.register("s3prl", UpstreamConfig, build_s3prl, description="WavLM / wav2vec 2.0 / HuBERT via s3prl",
                   check=check_source, file=checkpoint_file, file_name=checkpoint_name)

__all__ = ["S3prlUpstream", "load_upstream"]
