"""Fake CUDA on a machine without a GPU: spkpeft's training and inference code on "cuda" tensors
that have a shape, a dtype and a device but no data.

Facts of torch 2.11 this builds on (checked on this CPU machine, issue 24):

* inside ``FakeTensorMode(allow_non_fake_inputs=True)``, ``module.to("cuda")`` turns a real
  module's parameters into fake CUDA tensors although ``torch.cuda.is_available()`` is False;
  mixing a fake CUDA tensor with a CPU tensor raises as real CUDA does (``cat``, ``where``,
  matmul, ``index_select`` with a CPU index, ...), so a device mix anywhere fails the run;
* a module built *inside* the fake mode, or one that ran a fake forward, cannot be moved to
  another device ("Couldn't swap"), so modules are built for real (on the CPU) and moved:
  :func:`for_real` runs a builder with every mode switched off;
* a forward pass and an AdamW step work under fake CUDA; backward does not ("hasPrimaryContext
  expects a valid device index") but works on ``device="meta"``: the tier runs the real
  backward on meta, and :func:`fake_cuda` replaces ``Tensor.backward`` of a CUDA tensor by one
  that gives every leaf the loss depends on a fake gradient of its own shape, dtype and device
  (what the optimizer step then consumes);
* ``torch.autocast("cuda")`` and ``torch.amp.GradScaler("cuda")`` disable themselves unless
  ``torch.cuda.is_available`` (and ``is_bf16_supported``) say True while they are built, and
  saying so for longer makes ``.to("cuda")`` initialise the real driver: they are patched only
  while those objects are constructed;
* ``.item()`` / ``bool()`` of a fake tensor has no value to give: :class:`HostSyncs` answers
  them and counts them.  A boolean is answered as a healthy run (finite values, full crops)
  would: the mode follows boolean tensors through the operations that make them (``isfinite``
  arrives decomposed into ``abs(x) != inf`` times ``x == x``): a comparison of a finite value
  with an infinity or NaN, a self-comparison, ``&``, ``|``, ``~``, views; ``all`` of an unknown
  mask is True (no padding), ``any`` of one False (no anomaly), any other boolean False;
  integers read 1, floats 0;
* cuDNN is switched off: its LSTM asks the real driver; the native kernels stand in for it;
* boolean-mask indexing needs a ``ShapeEnv`` (``dynamic_shapes=True``); without one such an
  operation fails, which the hot-path tests want.

:class:`HostSyncs` counts, on CUDA tensors only, the operations that make the host wait for
the device: a scalar read (``aten._local_scalar_dense``: ``.item()``, ``bool()``, ``int()``,
``.tolist()``), a copy to the host (``.cpu()``, ``.to("cpu")``), and operations whose output
shape depends on the data (``nonzero``, ``masked_select``, ``unique``, boolean-mask indexing).
"""

from __future__ import annotations

import contextlib
import math
import operator
import traceback
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator
from unittest import mock

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils.weak import WeakIdKeyDictionary

aten = torch.ops.aten

_COMPARE = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
            "ge": operator.ge}
_AND, _OR, _NOT = ("mul", "bitwise_and", "logical_and"), ("add", "bitwise_or", "logical_or"), ("bitwise_not", "logical_not")
_SAME = ("clone", "detach", "view", "reshape", "_to_copy", "expand", "squeeze", "unsqueeze", "alias", "slice",
         "select", "lift_fresh", "lift_fresh_copy", "_reshape_alias", "t", "permute", "contiguous")
_DATA_DEPENDENT_SHAPE = {"nonzero", "masked_select", "_unique2", "unique_dim", "unique_consecutive"}


def _is_cuda(value) -> bool:
    return isinstance(value, torch.Tensor) and value.device.type == "cuda"


class HostSyncs(TorchDispatchMode):
    """Counts and answers host synchronisations of CUDA tensors (see the module docstring).

    ``counts`` (``item``, ``to_host``, ``dynamic_shape``) and ``where``: the innermost spkpeft
    source line of each (for the failure message of a test)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter = Counter()
        self.where: list[str] = []
        self._answers = WeakIdKeyDictionary()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _record(self, kind: str) -> None:
        self.counts[kind] += 1
        frames = [f for f in traceback.extract_stack() if "/spkpeft/" in f.filename]
        self.where.append(f"{kind} at {frames[-1].filename.rsplit('/spkpeft/', 1)[-1]}:{frames[-1].lineno}"
                          if frames else f"{kind} (outside spkpeft)")

    def _answer(self, tensor: torch.Tensor):
        value = self._answers.get(tensor)
        if tensor.dtype == torch.bool:
            return False if value is None else bool(value)
        if tensor.is_floating_point():
            return 1.0 if value is None else float(value)
        return 1 if value is None else int(value)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if func is aten._local_scalar_dense.default:
            if _is_cuda(args[0]):
                self._record("item")
            return self._answer(args[0])
        if name == "_to_copy" and _is_cuda(args[0]) and torch.device(kwargs.get("device") or args[0].device).type == "cpu":
            self._record("to_host")
        elif name == "copy_" and _is_cuda(args[1]) and args[0].device.type == "cpu":
            self._record("to_host")
        elif name in _DATA_DEPENDENT_SHAPE and _is_cuda(args[0]):
            self._record("dynamic_shape")
        elif name in ("index", "index_put", "index_put_") and _is_cuda(args[0]) and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1]):
            self._record("dynamic_shape")
        value = self._value(name, args, kwargs)  # before the call: lift_fresh's argument is still real
        out = func(*args, **kwargs)
        if name == "_foreach_add_" and isinstance(args[1], (int, float)):
            for t in args[0]:
                old = self._answers.get(t)
                if old is not None:
                    self._answers[t] = old + args[1]
        target = args[0] if name.endswith("_") and args and isinstance(args[0], torch.Tensor) else out
        if isinstance(target, torch.Tensor):
            if value is None:
                self._answers.pop(target, None)
            else:
                self._answers[target] = value
        return out

    def _known(self, value):
        if isinstance(value, torch.Tensor):
            return self._answers.get(value)
        return value if isinstance(value, (bool, int, float)) else None

    def _value(self, name: str, args, kwargs):
        """The value of every element of ``name(*args)``'s output in a healthy run, when known:
        constants (``torch.tensor(x)``, ``full``, ``zeros``, ``fill_``), the booleans of the
        module docstring, and arithmetic of known values (AdamW's step count, the loss scale)."""
        known = [self._known(a) for a in args]
        if name in ("lift_fresh", "lift_fresh_copy"):
            real = args[0]
            if real.numel() != 1 or isinstance(real, FakeTensor):
                return None
            with _disable_current_modes():
                return real.item()
        constant = {"full": 1, "new_full": 2, "full_like": 1, "scalar_tensor": 0, "fill_": 1}
        if name in constant:
            return self._known(args[constant[name]]) if len(args) > constant[name] else None
        if name in ("zeros", "zeros_like", "new_zeros", "ones", "ones_like", "new_ones"):
            return 0 if "zeros" in name else 1
        if name == "copy_":
            return known[1]
        if name in ("isfinite", "isnan", "isinf"):
            return name == "isfinite"
        if name in _COMPARE and len(args) == 2:
            if args[0] is args[1]:
                return name in ("eq", "le", "ge")
            if isinstance(args[1], float) and not math.isfinite(args[1]):  # a finite value against inf / nan
                return _COMPARE[name](0.0, args[1])
            return _COMPARE[name](*known) if None not in known else None
        if name in _NOT:
            return None if known[0] is None else not known[0]
        if name in ("all", "any"):
            return name == "all" if known[0] is None else bool(known[0])
        if name in _SAME:
            return known[0]
        op = name.rstrip("_")
        if op in ("mul", "add", "sub", "div", "bitwise_and", "logical_and", "bitwise_or", "logical_or") and len(args) == 2:
            a, b = known
            if op in ("mul", "bitwise_and", "logical_and") and (a is False or b is False):
                return False
            if op in ("add", "bitwise_or", "logical_or") and (a is True or b is True):
                return True
            if a is None or b is None:
                return None
            if op in ("bitwise_and", "logical_and"):
                return bool(a and b)
            if op in ("bitwise_or", "logical_or"):
                return bool(a or b)
            b = b * kwargs.get("alpha", 1) if op in ("add", "sub") else b
            return {"mul": operator.mul, "add": operator.add, "sub": operator.sub,
                    "div": operator.truediv}[op](a, b) if not (op == "div" and b == 0) else None
        return None


def for_real(build: Callable) -> Callable:
    """``build`` run with every dispatch mode switched off: modules come out as real CPU modules
    that the fake mode can then move (see the module docstring)."""
    def wrapper(*args, **kwargs):
        with _disable_current_modes():
            return build(*args, **kwargs)
    return wrapper


def real_batches(loader) -> Iterator:
    """The batches of a data loader read and collated for real (numpy, soundfile, workers),
    outside the fake mode; the training loop moves them to the fake device itself."""
    iterator = for_real(iter)(loader)
    next_batch = for_real(next)
    while True:
        try:
            yield next_batch(iterator)
        except StopIteration:
            return


def _leaves(root) -> list[torch.Tensor]:
    """The leaf tensors (parameters) that ``root``'s autograd graph accumulates gradients into."""
    seen, alive, out, stack = set(), [], [], [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        alive.append(node)  # node wrappers are made on access: keep each alive so that its id stays its own
        if hasattr(node, "variable"):
            out.append(node.variable)
        stack.extend(n for n, _ in node.next_functions)
    return out


def _while_cuda_claims_to_exist(init):
    def patched(self, *args, **kwargs):
        with mock.patch("torch.cuda.is_available", return_value=True), \
                mock.patch("torch.cuda.is_bf16_supported", return_value=True):
            init(self, *args, **kwargs)
    return patched


@contextlib.contextmanager
def fake_cuda(dynamic_shapes: bool = False) -> Iterator[HostSyncs]:
    """Fake CUDA for the body (see the module docstring); yields the :class:`HostSyncs` counter.

    Besides the fake mode: autocast and GradScaler are built as on a GPU machine; CUDA's memory
    statistics read 0 and ``set_device`` only records its index (``HostSyncs.devices_set``, the
    other calls: ``HostSyncs.cuda_calls``); the
    backward of a CUDA tensor gives each leaf a fake gradient (real backward: run it on meta)."""
    shape_env = None
    if dynamic_shapes:
        from torch.fx.experimental.symbolic_shapes import ShapeEnv

        shape_env = ShapeEnv()
    syncs = HostSyncs()
    syncs.devices_set, syncs.cuda_calls = [], Counter()

    def recorded(name: str, value=None):
        def call(*args, **kwargs):
            syncs.cuda_calls[name] += 1
            return value
        return call

    original_backward = torch.Tensor.backward

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if self.device.type != "cuda":
            return original_backward(self, gradient, retain_graph, create_graph, inputs)
        for leaf in _leaves(self.grad_fn):
            grad = torch.zeros_like(leaf)
            leaf.grad = grad if leaf.grad is None else leaf.grad + grad

    patches = [
        mock.patch.object(torch.amp.autocast_mode.autocast, "__init__",
                          _while_cuda_claims_to_exist(torch.amp.autocast_mode.autocast.__init__)),
        mock.patch.object(torch.amp.GradScaler, "__init__", _while_cuda_claims_to_exist(torch.amp.GradScaler.__init__)),
        mock.patch.object(torch.Tensor, "backward", backward),
        mock.patch("torch.cuda.set_device", side_effect=lambda d: syncs.devices_set.append(torch.device(d, 0).index
                                                                                           if isinstance(d, str) else d)),
        mock.patch("torch.cuda.max_memory_allocated", recorded("max_memory_allocated", 0)),
        mock.patch("torch.cuda.reset_peak_memory_stats", recorded("reset_peak_memory_stats")),
        mock.patch("torch.cuda.synchronize", recorded("synchronize")),
    ]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        stack.enter_context(torch.backends.cudnn.flags(enabled=False))  # cuDNN's RNN asks the driver
        stack.enter_context(FakeTensorMode(allow_non_fake_inputs=True, shape_env=shape_env))
        stack.enter_context(syncs)
        yield syncs


def write_tiny_data_dir(path: Path, speakers: int = 2, utts_per_speaker: int = 2, seconds: float = 0.3) -> Path:
    """A data directory every task trains on: ``wav.scp``, ``utt2spk``, ``spk2utt`` (speaker
    verification) and ``utt2label`` (the first half of the speakers ``bonafide``, the rest
    ``spoof``: two classes for the countermeasure and classification tasks); deterministic noise."""
    import soundfile as sf

    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    wav_scp, utt2spk, utt2label, spk2utt = [], [], [], []
    for s in range(speakers):
        spk = f"spk{s}"
        utts = [f"{spk}-u{u}" for u in range(utts_per_speaker)]
        for utt in utts:
            wav = path / "wav" / f"{utt}.wav"
            wav.parent.mkdir(exist_ok=True)
            sf.write(str(wav), (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
            wav_scp.append(f"{utt} {wav}")
            utt2spk.append(f"{utt} {spk}")
            utt2label.append(f"{utt} {'bonafide' if s < speakers / 2 else 'spoof'}")
        spk2utt.append(f"{spk} {' '.join(utts)}")
    for name, lines in (("wav.scp", wav_scp), ("utt2spk", utt2spk), ("utt2label", utt2label), ("spk2utt", spk2utt)):
        (path / name).write_text("\n".join(sorted(lines)) + "\n")
    return path
