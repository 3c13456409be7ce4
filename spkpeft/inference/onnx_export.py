"""The merged model in ONNX, checked against PyTorch with onnxruntime.

Graph: inputs ``wavs`` (float32 ``(batch, samples)``, zero-padded 16 kHz waveforms) and
``wav_lens`` (int64 ``(batch,)``, each waveform's length in samples); output ``output``
(float32 ``(batch, D)``): what stage 4 computes per chunk for the task (sv: the embedding;
cm: the bona fide score, ``D = 1``; cls: the class posteriors).  Batch and sample axes are
dynamic, and the lengths input carries the padding: the graph computes the same frame masks
as the PyTorch model (frame lengths from the CNN's output-length formula, per-utterance
GroupNorm statistics), so a waveform's output does not depend on the batch it is in.
Chunking of long utterances (``extract.chunk_seconds``) stays with the caller.

Exporters, tried in this order: PyTorch's TorchScript-based exporter (``torch.onnx.export(...,
dynamo=False)``, opset :data:`OPSET`), which traces one forward pass with symbolic batch and
length axes and takes seconds (the s3prl upstreams); then the ``torch.export``-based one
(``dynamo=True``, onnxscript), which also handles what tracing cannot (the fbank front end's
``unfold`` framing and FFT) but takes about a minute on two CPU cores.  Inputs shorter than
:data:`MIN_SAMPLES` are outside the dynamo graph's range.  The check runs both on batches of
several lengths (:data:`CHECK_SECONDS`, alone and padded together) and fails when the
largest absolute output difference reaches :data:`TOLERANCE`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spkpeft.errors import SpkpeftError
from spkpeft.io.atomic import buffered, write_bytes_atomic
from spkpeft.tasks.base import get_task

log = logging.getLogger("spkpeft.export")

OPSET = 17
MIN_SAMPLES = 400  # the graph's shortest input: one 25 ms frame
TOLERANCE = 1e-4
CHECK_SECONDS = (0.5, 1.1, 1.7, 2.6)
INPUTS = ("wavs", "wav_lens")


def _example(seconds: tuple[float, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded random waveforms of the given durations and their lengths."""
    generator = torch.Generator().manual_seed(seed)
    lengths = [int(s * 16000) for s in seconds]
    wavs = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wavs[i, :n] = 0.1 * torch.randn(n, generator=generator)
    return wavs, torch.tensor(lengths, dtype=torch.long)


def _torchscript(module: nn.Module, example: tuple, handle) -> None:
    torch.onnx.export(module, example, handle, dynamo=False, opset_version=OPSET, input_names=list(INPUTS),
                      output_names=["output"],
                      dynamic_axes={"wavs": {0: "batch", 1: "samples"}, "wav_lens": {0: "batch"}, "output": {0: "batch"}})


def _dynamo(module: nn.Module, example: tuple, handle) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    samples = torch.export.Dim("samples", min=MIN_SAMPLES, max=16000 * 3600)
    program = torch.onnx.export(module, example, dynamo=True, input_names=list(INPUTS), output_names=["output"],
                                dynamic_shapes=({0: batch, 1: samples}, {0: batch}), verbose=False)
    handle.write(program.model_proto.SerializeToString())


EXPORTERS = {"torchscript": _torchscript, "dynamo": _dynamo}


@contextlib.contextmanager
def silenced_output():
    """Send file descriptors 1 and 2 (and Python's streams) to /dev/null: the exporters print
    pages of notes and, on failure, the whole graph from C++; a failure's message is kept."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def export_onnx(module: nn.Module, path: str | Path) -> str:
    """Write ``module`` (``forward(wavs, wav_lens) -> (B, D)``, eval mode, CPU) as ONNX to ``path``;
    returns the exporter that succeeded (``torchscript``, else ``dynamo``)."""
    module = module.cpu().eval()
    example = _example((1.0, 0.7))
    failures = []
    for name, exporter in EXPORTERS.items():
        try:
            with warnings.catch_warnings(), silenced_output():  # the exporters' notes and graph dumps
                warnings.simplefilter("ignore")  # tracer notes on shape-dependent Python branches
                data = buffered(lambda handle: exporter(module, example, handle))
        except Exception as err:  # the exporters raise assorted types
            failures.append(f"{name}: {type(err).__name__}: {' '.join(str(err).split())[:200]}")
            log.info("ONNX: the %s exporter failed (%s)", name, failures[-1])
            continue
        write_bytes_atomic(path, lambda handle: handle.write(data))
        return name
    raise SpkpeftError(f"{path}: no ONNX exporter could export the model ({'; '.join(failures)})")


def check_onnx(module: nn.Module, path: str | Path) -> float:
    """Largest absolute difference between onnxruntime's and PyTorch's outputs over
    :data:`CHECK_SECONDS` (each alone and all in one padded batch); an error at or above
    :data:`TOLERANCE`."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batches = [_example(CHECK_SECONDS, seed=1)] + [_example((s,), seed=2 + i) for i, s in enumerate(CHECK_SECONDS)]
    worst = 0.0
    module = module.cpu().eval()
    for wavs, lens in batches:
        with torch.no_grad():
            expected = module(wavs, lens).float().numpy()
        got = session.run(None, {"wavs": wavs.numpy(), "wav_lens": lens.numpy()})[0]
        if got.shape != expected.shape:
            raise SpkpeftError(f"{path}: ONNX output shape {got.shape} differs from PyTorch's {expected.shape}")
        worst = max(worst, float(np.max(np.abs(got - expected))))
    if not worst < TOLERANCE:
        raise SpkpeftError(f"{path}: ONNX and PyTorch outputs differ by up to {worst:.3g} (>= {TOLERANCE:g})")
    return worst


def package_onnx(directory: Path, model: nn.Module, cfg) -> dict:
    """Export the task's stage-4 module of ``model`` to ``directory/model.onnx`` and check it;
    returns the ``package.json`` entry (``onnx``: file, opset, largest difference)."""
    module = get_task(cfg).output_module(model)
    path = Path(directory) / "model.onnx"
    exporter = export_onnx(module, path)
    worst = check_onnx(module, path)
    return {"onnx": {"file": path.name, "exporter": exporter, "max_abs_diff": worst,
                     "check_seconds": list(CHECK_SECONDS)}}
