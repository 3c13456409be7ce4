"""From waveforms to the transformer input (s3prl's first hidden state), per model family.

Follows s3prl's experts (``s3prl/upstream/{wavlm,wav2vec2,hubert}/expert.py``) and the
models' ``extract_features``:

1. optional per-utterance input normalisation over the valid samples
   (``w <- (w - mean) / sqrt(var + 1e-5)``, i.e. ``F.layer_norm(w[:len])``) when the
   checkpoint's config asks for it (``normalize``), padding set to 0;
2. CNN feature encoder -> ``LayerNorm`` -> frame padding mask -> ``post_extract_proj``;
3. encoder input: padded frames set to 0, ``x <- x + pos_conv(x)``, then ``LayerNorm`` for
   post-LN models (``layer_norm_first=False``).

Frame padding masks: WavLM and HuBERT mark a frame padded when all samples of its chunk
(``S // T`` samples) are padding; wav2vec 2.0 uses the CNN's output-length formula
``L <- floor((L - kernel) / stride) + 1`` per conv layer.  At least one frame per
utterance is kept valid so that attention never sees an all-masked row.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

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


def frame_padding_mask(model: nn.Module, family: str, num_frames: int, wav_lens: Tensor, num_samples: int) -> Tensor:
    """``(B, T)`` bool mask, True at padded frames (see the module docstring)."""
    device = wav_lens.device
    frames = torch.arange(num_frames, device=device)[None, :]
    if family == "wav2vec2":
        valid = model._get_feat_extract_output_lengths(wav_lens)
    else:
        chunk = num_samples // num_frames
        # frame t is valid iff its chunk [t*chunk, (t+1)*chunk) holds at least one real sample
        valid = torch.div(wav_lens + chunk - 1, chunk, rounding_mode="floor")
    valid = valid.clamp(min=1, max=num_frames)
    return frames >= valid[:, None]


def extract_frames(model: nn.Module, family: str, wavs: Tensor, wav_lens: Tensor, normalize: bool) -> tuple[Tensor, Tensor]:
    """Waveforms ``(B, S)`` -> CNN/projection output ``(B, T, C)`` and padding mask ``(B, T)``."""
    sample_mask = torch.arange(wavs.shape[1], device=wavs.device)[None, :] >= wav_lens[:, None]
    wavs = wavs.masked_fill(sample_mask, 0.0)
    if normalize:
        wavs = normalize_waveforms(wavs, wav_lens)
    with torch.set_grad_enabled(torch.is_grad_enabled() and cnn_is_trainable(model)):
        features = model.feature_extractor(wavs)
    features = model.layer_norm(features.transpose(1, 2))
    padding_mask = frame_padding_mask(model, family, features.shape[1], wav_lens, wavs.shape[1])
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
