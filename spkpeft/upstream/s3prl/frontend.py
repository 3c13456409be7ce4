"""From waveforms to the transformer input (s3prl's first hidden state), per model family.

Follows s3prl's experts (``s3prl/upstream/{wavlm,wav2vec2,hubert}/expert.py``) and the
models' ``extract_features``:

1. optional per-utterance input normalisation over the valid samples
   (``w <- (w - mean) / sqrt(var + 1e-5)``, i.e. ``F.layer_norm(w[:len])``) when the
   checkpoint's config asks for it (``normalize``), padding set to 0;
2. CNN feature encoder -> ``LayerNorm`` -> frame padding mask -> ``post_extract_proj``;
3. encoder input: padded frames set to 0, ``x <- x + pos_conv(x)``, then ``LayerNorm`` for
   post-LN models (``layer_norm_first=False``).

Batch invariance (where we depart from s3prl).  An utterance must give the same hidden
states alone and inside a zero-padded batch:

* **Frame lengths** follow the CNN's output-length formula ``L <- floor((L - k) / s) + 1``
  per convolution, for every family: exactly the frames the utterance has alone, and
  exactly the frames whose receptive field lies inside the utterance.  (s3prl's WavLM and
  HuBERT mark a frame valid when its chunk of ``S // T`` samples holds one real sample,
  which gives one frame more than the utterance has alone, e.g. 28 vs 27.)
* **GroupNorm over time.**  ``extractor_mode: default`` models (wav2vec 2.0 / HuBERT /
  WavLM Base, Base+) normalise the first convolution's output per channel over *time*
  (``GroupNorm(512, 512)``), which in a padded batch includes the padding.  Here its mean
  and variance are taken over each utterance's valid frames only (:func:`masked_group_norm`,
  in float32 like s3prl's ``Fp32GroupNorm``); the later convolutions have no padding, so a
  valid output frame reads valid input frames only.  The batch keeps its full speed;
  ``layer_norm`` models (the large ones) normalise each frame on its own and run the s3prl
  encoder unchanged.

At least one frame per utterance is kept valid so that attention never sees an all-masked
row.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from spkpeft.errors import SpkpeftError

FAMILIES = ("wavlm", "wav2vec2", "hubert")
NORM_EPS = 1e-5


def normalize_waveforms(wavs: Tensor, wav_lens: Tensor) -> Tensor:
    """Standardise each utterance over its first ``wav_lens[b]`` samples; padding -> 0."""
    valid = (torch.arange(wavs.shape[1], device=wavs.device)[None, :] < wav_lens[:, None]).to(wavs.dtype)
    count = valid.sum(1, keepdim=True).clamp(min=1)
    mean = (wavs * valid).sum(1, keepdim=True) / count
    var = (((wavs - mean) * valid) ** 2).sum(1, keepdim=True) / count
    return (wavs - mean) / torch.sqrt(var + NORM_EPS) * valid


def cnn_is_trainable(model: nn.Module) -> bool:
    """Whether any CNN feature-encoder parameter requires a gradient."""
    return any(p.requires_grad for p in model.feature_extractor.parameters())


def conv_output_lengths(lengths: Tensor, conv: nn.Conv1d) -> Tensor:
    """``floor((L + 2 p - d (k - 1) - 1) / s) + 1``: frames a Conv1d makes of ``L`` inputs."""
    (kernel,), (stride,), (pad,), (dilation,) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    span = lengths + 2 * pad - dilation * (kernel - 1) - 1
    return torch.div(span, stride, rounding_mode="floor") + 1


def cnn_output_lengths(feature_extractor: nn.Module, wav_lens: Tensor) -> Tensor:
    """Frames of each utterance after the whole CNN feature encoder (formula per convolution)."""
    lengths = wav_lens
    for module in feature_extractor.modules():
        if isinstance(module, nn.Conv1d):
            lengths = conv_output_lengths(lengths, module)
    return lengths


def masked_group_norm(norm: nn.GroupNorm, x: Tensor, lengths: Tensor) -> Tensor:
    """GroupNorm of ``x (B, C, T)`` with statistics over the first ``lengths[b]`` frames.

    For groups ``g`` of ``C / G`` channels and valid frames ``t < L_b``::

        mu_bg = mean_{c in g, t < L_b} x_bct,   var_bg = mean_{c in g, t < L_b} (x_bct - mu_bg)^2
        y_bct = (x_bct - mu_bg) / sqrt(var_bg + eps) * gamma_c + beta_c

    computed in float32; equal to ``norm(x[b:b+1, :, :L_b])`` on the valid frames.
    """
    batch, channels, frames = x.shape
    groups = norm.num_groups
    z = x.float().view(batch, groups, channels // groups, frames)
    valid = (torch.arange(frames, device=x.device)[None, :] < lengths[:, None]).float()[:, None, None, :]
    count = valid.sum((2, 3), keepdim=True).clamp(min=1) * (channels // groups)
    mean = (z * valid).sum((2, 3), keepdim=True) / count
    var = (((z - mean) * valid) ** 2).sum((2, 3), keepdim=True) / count
    y = ((z - mean) / torch.sqrt(var + norm.eps)).view(batch, channels, frames)
    if norm.affine:
        y = y * norm.weight.float()[None, :, None] + norm.bias.float()[None, :, None]
    return y.type_as(x)


def has_group_norm(feature_extractor: nn.Module) -> bool:
    """Whether the CNN normalises over time (s3prl ``extractor_mode: default``)."""
    return any(isinstance(m, nn.GroupNorm) for m in feature_extractor.modules())


def cnn_features(feature_extractor: nn.Module, wavs: Tensor, wav_lens: Tensor) -> Tensor:
    """The CNN feature encoder's output ``(B, C, T)``, batch-invariant (see the module docstring).

    Without a GroupNorm the s3prl module runs as it is.  With one, its ``conv_layers``
    (each ``Sequential(conv, dropout, [norm], GELU)``) are run here with the GroupNorm
    statistics restricted to each utterance's valid frames.
    """
    if not has_group_norm(feature_extractor):
        return feature_extractor(wavs)
    layers = getattr(feature_extractor, "conv_layers", None)
    if getattr(feature_extractor, "conv_type", "default") != "default" or layers is None:
        raise SpkpeftError(f"unsupported CNN feature encoder with GroupNorm ({type(feature_extractor).__name__}, "
                           f"conv_type {getattr(feature_extractor, 'conv_type', '?')!r})")
    x, lengths = wavs.unsqueeze(1), wav_lens
    for block in layers:
        for module in block.children() if isinstance(block, nn.Sequential) else (block,):
            if isinstance(module, nn.GroupNorm):
                x = masked_group_norm(module, x, lengths)
            else:
                x = module(x)
                if isinstance(module, nn.Conv1d):
                    lengths = conv_output_lengths(lengths, module)
    return x


def frame_padding_mask(feature_extractor: nn.Module, num_frames: int, wav_lens: Tensor) -> Tensor:
    """``(B, T)`` bool mask, True at padded frames (CNN output-length formula, >= 1 valid frame)."""
    frames = torch.arange(num_frames, device=wav_lens.device)[None, :]
    valid = cnn_output_lengths(feature_extractor, wav_lens).clamp(min=1, max=num_frames)
    return frames >= valid[:, None]


def extract_frames(model: nn.Module, wavs: Tensor, wav_lens: Tensor, normalize: bool) -> tuple[Tensor, Tensor]:
    """Waveforms ``(B, S)`` -> CNN/projection output ``(B, T, C)`` and padding mask ``(B, T)``."""
    sample_mask = torch.arange(wavs.shape[1], device=wavs.device)[None, :] >= wav_lens[:, None]
    wavs = wavs.masked_fill(sample_mask, 0.0)
    if normalize:
        wavs = normalize_waveforms(wavs, wav_lens)
    with torch.set_grad_enabled(torch.is_grad_enabled() and cnn_is_trainable(model)):
        features = cnn_features(model.feature_extractor, wavs, wav_lens)
    features = model.layer_norm(features.transpose(1, 2))
    padding_mask = frame_padding_mask(model.feature_extractor, features.shape[1], wav_lens)
    crop = getattr(model, "crop_seq_to_multiple", 1)
    drop = features.shape[1] % crop
    if drop:
        features, padding_mask = features[:, :-drop], padding_mask[:, :-drop]
    if model.post_extract_proj is not None:
        features = model.post_extract_proj(features)
    return model.dropout_input(features), padding_mask


def encoder_input(encoder: nn.Module, x: Tensor, padding_mask: Tensor) -> Tensor:
    """Positional convolution (+ LayerNorm for post-LN models) and dropout: the first hidden state."""
    x = x.masked_fill(padding_mask[..., None], 0.0)
    if getattr(encoder, "pos_conv", None) is not None:
        x = x + encoder.pos_conv(x.transpose(1, 2)).transpose(1, 2)
    if not encoder.layer_norm_first:
        x = encoder.layer_norm(x)
    return F.dropout(x, p=encoder.dropout, training=encoder.training)
