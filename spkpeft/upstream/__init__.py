"""Self-supervised speech upstreams (WavLM, wav2vec 2.0, HuBERT) loaded through s3prl.

``load_upstream(name, num_layers=None) -> Upstream``; ``Upstream(wavs, wav_lens)`` returns
every hidden state ``[(B, T, D)] * (num_layers + 1)`` and the frame lengths ``(B,)``.
"""

from spkpeft.upstream.random_arch import ARCHS as RANDOM_ARCHS
from spkpeft.upstream.wrapper import Upstream, load_upstream

__all__ = ["RANDOM_ARCHS", "Upstream", "load_upstream"]
