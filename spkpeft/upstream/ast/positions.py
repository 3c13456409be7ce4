"""Adapting the AST's learned position embeddings to another input length.

The checkpoint's embeddings form a grid of ``f x t`` patch positions (frequency-major, as
the patch tokens are ordered) after the CLS and distillation tokens' two.  For an input of
``max_length`` frames the grid needs ``t' = (max_length - patch) // time_stride + 1`` time
positions (and ``f'`` frequency positions for another number of mel bins).  As in the
original AST code (Gong et al., Interspeech 2021, ``ast_models.py``), per axis, time first:

* fewer positions: the centred crop ``[n // 2 - n' // 2, n // 2 - n' // 2 + n')``;
* more positions: bilinear interpolation of the grid (``align_corners=False``);

the two token embeddings are kept (``positions: adapted``).

``positions: zeroed_if_resized`` reproduces loading with ``from_pretrained(..., max_length=M,
ignore_mismatched_sizes=True)``, as PETL-AST does (``src/AST*.py``): when ``M`` differs from
the checkpoint's length the table's shape does not match, the checkpoint's table is dropped
and the one ``ASTEmbeddings`` builds is kept, ``torch.zeros(1, 2 + f t, D)`` (transformers'
``ASTPreTrainedModel._init_weights`` of the 4.28 release PETL-AST pins touches only linear,
convolution and LayerNorm modules; later releases zero the table explicitly), so the model
loses every position.  PETL-AST freezes the embeddings for every method but full
fine-tuning, which trains the zero table from scratch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

NUM_SPECIAL_TOKENS = 2  # CLS, distillation
#: ``upstream.positions`` of the AST family (module docstring)
POSITIONS = ("adapted", "zeroed_if_resized")


def grid_shape(num_mel_bins: int, max_length: int, patch: int, frequency_stride: int, time_stride: int) -> tuple[int, int]:
    """``(f, t)``: patch positions along frequency and time (HF ``ASTEmbeddings.get_shape``)."""
    return (num_mel_bins - patch) // frequency_stride + 1, (max_length - patch) // time_stride + 1


def _fit_axis(grid: Tensor, size: int, axis: int) -> Tensor:
    """Crop (centred) or bilinearly interpolate ``grid (1, D, F, T)`` to ``size`` along ``axis`` (2 or 3)."""
    current = grid.shape[axis]
    if size < current:
        start = current // 2 - size // 2
        return grid.narrow(axis, start, size)
    if size > current:
        target = (size, grid.shape[3]) if axis == 2 else (grid.shape[2], size)
        return F.interpolate(grid, size=target, mode="bilinear", align_corners=False)
    return grid


def adapt_position_embeddings(table: Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> Tensor:
    """``(1, 2 + f t, D)`` -> ``(1, 2 + f' t', D)`` (see the module docstring)."""
    if tuple(old_grid) == tuple(new_grid):
        return table
    special, patches = table[:, :NUM_SPECIAL_TOKENS], table[:, NUM_SPECIAL_TOKENS:]
    dim = table.shape[-1]
    grid = patches.transpose(1, 2).reshape(1, dim, *old_grid)
    grid = _fit_axis(grid, new_grid[1], 3)
    grid = _fit_axis(grid, new_grid[0], 2)
    patches = grid.reshape(1, dim, new_grid[0] * new_grid[1]).transpose(1, 2)
    return torch.cat([special, patches], dim=1).contiguous()
