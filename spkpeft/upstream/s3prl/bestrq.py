"""BEST-RQ: masked prediction of random-projection quantiser targets, for the s3prl upstreams.

Chiu et al., "Self-supervised learning with random-projection quantizer for speech
recognition", ICML 2022.  For an utterance with log-mel frames ``x_t`` (80 bins, 25/10 ms,
:class:`spkpeft.upstream.fbank.FbankUpstream` without mean normalisation):

1. **Targets.**  Each bin is standardised, ``(x - mu) / sigma``, with global statistics
   (``normalization: global``, the paper's: :meth:`RandomProjectionQuantizer.fit_statistics`
   over a sample of the training audio) or over the utterance's own frames
   (``utterance``: removes the long-term spectrum, speaker and channel, from the targets); the ``k`` frames
   under one model frame are stacked, ``s_t = [x_{kt}; ...; x_{kt+k-1}]`` (``k`` = model
   hop / fbank hop: 2 for the 20 ms frames of the s3prl CNNs), projected by a frozen
   Xavier-uniform matrix ``A`` (``d x 80k``) and quantised against a frozen codebook
   ``c_1..c_K ~ N(0, I_d)``:  ``y_t = argmin_i || c_i / |c_i| - A s_t / |A s_t| ||``
   (the nearest entry after l2 normalisation, i.e. the largest cosine).  ``A`` and ``c``
   are drawn from the seed and never trained: the targets are a fixed function of the audio.
2. **Masking.**  Every valid model frame starts a span of ``span`` masked frames with
   probability ``p`` (spans may overlap; at least one frame per utterance is masked).
   Masked frames of the CNN output (after the feature projection, before the positional
   convolution) are replaced by the learned ``mask_emb``, as HuBERT and wav2vec 2.0 mask
   waveform models.
3. **Loss.**  ``softmax(W h_t + b)`` over the ``K`` codes from the last hidden state
   ``h_t``; cross-entropy against ``y_t`` averaged over the masked frames.

Departures from the paper, for waveform models at small scale: the mask replaces CNN
output frames by ``mask_emb`` (the paper adds noise to masked *input features*, which a
waveform CNN does not read); one codebook of ``K = 512`` entries of ``d = 16`` (the paper: 8192
entries) suits a few hours of audio or less.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from spkpeft.errors import SpkpeftError
from spkpeft.upstream.fbank import FbankConfig, FbankUpstream
from spkpeft.upstream.s3prl import frontend
from spkpeft.upstream.s3prl.wrapper import S3prlUpstream


def cnn_hop(feature_extractor: nn.Module) -> int:
    """Samples per model frame: the product of the CNN's strides."""
    hop = 1
    for module in feature_extractor.modules():
        if isinstance(module, nn.Conv1d):
            hop *= module.stride[0]
    return hop


def standardise(feats: Tensor, lengths: Tensor) -> Tensor:
    """``(B, T, F)`` -> each bin standardised over the first ``lengths[b]`` frames (padding -> 0)."""
    valid = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).float()[..., None]
    count = lengths.clamp(min=1).float()[:, None, None]
    mean = (feats * valid).sum(1, keepdim=True) / count
    var = (((feats - mean) * valid) ** 2).sum(1, keepdim=True) / count
    return (feats - mean) / torch.sqrt(var + 1e-5) * valid


class RandomProjectionQuantizer(nn.Module):
    """Frozen BEST-RQ target maker (step 1 of the module docstring); buffers only."""

    def __init__(self, model_hop: int, num_bins: int = 80, codebook_size: int = 512, codebook_dim: int = 16,
                 seed: int = 0, normalization: str = "global") -> None:
        super().__init__()
        if normalization not in ("global", "utterance"):
            raise SpkpeftError(f"BEST-RQ: normalization must be 'global' or 'utterance', got {normalization!r}")
        self.normalization = normalization
        self.fbank = FbankUpstream(FbankConfig(num_bins=num_bins, mean_norm=False))
        stack = model_hop // self.fbank.hop
        if stack < 1 or codebook_size < 2 or codebook_dim < 1:
            raise SpkpeftError(f"BEST-RQ: need a model hop of at least {self.fbank.hop} samples, codebook_size >= 2 "
                               f"and codebook_dim >= 1, got {model_hop}, {codebook_size}, {codebook_dim}")
        self.stack = stack
        generator = torch.Generator().manual_seed(seed)
        bound = math.sqrt(6.0 / (codebook_dim + num_bins * stack))  # Xavier uniform
        projection = (torch.rand(codebook_dim, num_bins * stack, generator=generator) * 2 - 1) * bound
        codebook = F.normalize(torch.randn(codebook_size, codebook_dim, generator=generator), dim=-1)
        self.register_buffer("projection", projection)
        self.register_buffer("codebook", codebook)
        self.register_buffer("mean", torch.zeros(num_bins))
        self.register_buffer("std", torch.ones(num_bins))

    def features(self, wavs: Tensor, wav_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Log-mel frames ``(B, T, F)`` and valid frame counts."""
        feats = self.fbank.log_energies(wavs)
        return feats, torch.clamp(self.fbank.frame_lengths(wav_lens), max=feats.shape[1])

    def target_lengths(self, wav_lens: Tensor, num_samples: int) -> Tensor:
        """Valid targets per utterance of a ``(B, num_samples)`` batch (computed wherever
        ``wav_lens`` is: on the host, without waiting for the device)."""
        frames = self.fbank.num_frames(num_samples)
        return torch.clamp(self.fbank.frame_lengths(wav_lens), max=frames) // self.stack

    @torch.no_grad()
    def fit_statistics(self, wavs: list[Tensor]) -> None:
        """Global per-bin mean and standard deviation over every frame of ``wavs`` (1-D tensors,
        on any device: each is moved to the quantiser's)."""
        device = self.projection.device
        frames = torch.cat([self.features(w[None].to(device), torch.tensor([w.numel()], device=device))[0][0]
                            for w in wavs])
        self.mean.copy_(frames.mean(0))
        self.std.copy_(frames.std(0).clamp(min=1e-3))

    @property
    def codebook_size(self) -> int:
        return int(self.codebook.shape[0])

    @torch.no_grad()
    def forward(self, wavs: Tensor, wav_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Waveforms ``(B, S)`` -> code indices ``(B, T')`` and valid target counts ``(B,)``."""
        feats, lengths = self.features(wavs, wav_lens)
        if self.normalization == "utterance":
            feats = standardise(feats, lengths)
        else:
            feats = (feats - self.mean) / self.std
        frames = feats.shape[1] // self.stack
        stacked = feats[:, : frames * self.stack].reshape(feats.shape[0], frames, -1)
        projected = F.normalize(stacked @ self.projection.T, dim=-1)
        return (projected @ self.codebook.T).argmax(-1), lengths // self.stack


def span_mask(lengths: Sequence[int], num_frames: int, prob: float, span: int,
              rng: np.random.Generator) -> Tensor:
    """``(B, num_frames)`` bool: each valid frame starts a ``span``-frame masked span with
    probability ``prob`` (clipped at the utterance's end); at least one frame per utterance."""
    mask = np.zeros((len(lengths), num_frames), dtype=bool)
    for b, length in enumerate(int(v) for v in lengths):
        length = max(1, min(length, num_frames))
        starts = np.flatnonzero(rng.random(length) < prob)
        if starts.size == 0:
            starts = rng.integers(0, length, 1)
        for start in starts:
            mask[b, start:min(start + span, length)] = True
    return torch.from_numpy(mask)


class BestRqModel(nn.Module):
    """An :class:`S3prlUpstream` with the BEST-RQ mask embedding, quantiser and softmax layer.

    ``mask_emb`` is the s3prl model's own (stripped from the upstream, kept here, written
    back on export); the CNN and every block are trained.
    """

    def __init__(self, upstream: S3prlUpstream, mask_emb: Tensor, codebook_size: int = 512,
                 codebook_dim: int = 16, seed: int = 0, normalization: str = "global") -> None:
        super().__init__()
        self.upstream = upstream
        self.mask_emb = nn.Parameter(mask_emb.detach().clone().float())
        self.quantizer = RandomProjectionQuantizer(cnn_hop(upstream.model.feature_extractor), codebook_size=codebook_size, codebook_dim=codebook_dim,
                                                   seed=seed, normalization=normalization)
        self.classifier = nn.Linear(upstream.hidden_dim, codebook_size)
        self._mask: Tensor | None = None
        upstream.model.dropout_input.register_forward_hook(self._apply_mask)
        for p in upstream.parameters():
            p.requires_grad_(True)

    def _apply_mask(self, _module: nn.Module, _inputs: tuple, output: Tensor) -> Tensor:
        """Forward hook on the CNN output's dropout: masked frames -> ``mask_emb``."""
        if self._mask is None:
            return output
        mask = self._mask[:, : output.shape[1]].to(output.device)
        return torch.where(mask[..., None], self.mask_emb.to(output.dtype), output)

    def forward(self, wavs: Tensor, wav_lens: Tensor, mask_prob: float, mask_span: int,
                rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """Masked-prediction loss (mean cross-entropy over masked frames) and accuracy.

        The masks are drawn on the host from the frame counts of ``wav_lens``: pass the
        lengths on the CPU (the pre-trainer does) and nothing waits for the device there."""
        host_lens = wav_lens.cpu()
        wav_lens = wav_lens.to(wavs.device)
        targets, target_lens = self.quantizer(wavs, wav_lens)
        frames = frontend.cnn_output_lengths(self.upstream.model.feature_extractor, host_lens)
        num_frames = int(frames.max().clamp(min=1))
        self._mask = span_mask(frames.tolist(), num_frames, mask_prob, mask_span, rng)
        try:
            hidden, lengths = self.upstream(wavs, wav_lens)
        finally:
            mask, self._mask = self._mask, None
        last = hidden[-1]
        n = min(last.shape[1], targets.shape[1], mask.shape[1])
        limit = torch.minimum(lengths, target_lens.to(lengths.device))
        keep = mask[:, :n].to(last.device) & (torch.arange(n, device=last.device)[None, :] < limit[:, None])
        host_limit = torch.minimum(frames, self.quantizer.target_lengths(host_lens, wavs.shape[1]))
        if int((mask[:, :n] & (torch.arange(n)[None, :] < host_limit[:, None])).sum()) == 0:
            raise SpkpeftError("BEST-RQ: no masked frame has a target (utterances too short?)")
        logits = self.classifier(last[:, :n][keep])
        labels = targets[:, :n].to(last.device)[keep]
        loss = F.cross_entropy(logits.float(), labels)
        accuracy = (logits.argmax(-1) == labels).float().mean()
        return loss, accuracy
