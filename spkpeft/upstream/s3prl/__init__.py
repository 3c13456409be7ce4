"""The s3prl family: WavLM, wav2vec 2.0 / XLS-R and HuBERT through s3prl's own classes and
loaders (``upstream.type: s3prl``).

``upstream.name``: an s3prl hub name (``wavlm_base_plus``, ``xls_r_300m``, ...), a local
checkpoint in s3prl's ``*_local`` formats, or ``random:<arch>`` (a published architecture
with random weights, :data:`~spkpeft.upstream.s3prl.random_arch.ARCHS`).

``upstream.normalize_waveform``: null (default) normalises each waveform to zero mean and
unit variance exactly when the checkpoint's config asks for it (``normalize``, as s3prl does:
the large wav2vec 2.0 / XLS-R and WavLM models); ``true`` / ``false`` force it on or off.  The
AttM and SSL-AASIST reference codes feed the raw waveform to WavLM-Large and XLS-R
(``WavLM.extract_features`` and fairseq's ``Wav2Vec2Model`` do not normalise, and neither
script does it before), so their paper configs set ``false``.
"""

from dataclasses import dataclass

from spkpeft.upstream.base import UpstreamConfig, register_family
from spkpeft.upstream.s3prl.wrapper import S3prlUpstream, load_upstream


@dataclass
class S3prlConfig(UpstreamConfig):
    """``upstream.type: s3prl`` (see the module docstring)."""

    normalize_waveform: bool | None = None


register_family("s3prl", S3prlConfig, S3prlUpstream, description="WavLM / wav2vec 2.0 / HuBERT via s3prl")

__all__ = ["S3prlUpstream", "load_upstream"]
