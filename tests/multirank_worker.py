"""One rank of tests/test_multirank.py, started by torchrun: ``multirank_worker.py MODE DATA EXP``.

``nccl_rules``: the trainer on fake CUDA for one short run (2 batches per optimizer step), its collectives held to NCCL's rules
(tests/nccl_rules.py); the model is built for real and its batches read for real, validation
returns fixed numbers and checkpoints are only named (fake tensors hold no values); writes
``EXP/rank<r>.json`` with the rules' record.

``nan``: the trainer on the CPU (gloo, real values) with a NaN loss on rank 1 only, at its 2nd
batch and from its 6th on; writes ``EXP/rank<r>.json`` with the error each rank stopped with and
``EXP/rank<r>.pt`` with its trainable weights at that moment.
"""

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from spkpeft.engine.trainer import Trainer, trainable_state  # noqa: E402
from spkpeft.errors import SpkpeftError  # noqa: E402
from spkpeft.tasks.base import get_task  # noqa: E402
from spkpeft.tasks.config import load_config  # noqa: E402

CONFIG = Path(__file__).resolve().parent.parent / "conf" / "sv" / "mini.yaml"
TINY = {"upstream.name": "random:tiny_wavlm", "upstream.num_layers": 1, "head.channels": 16, "head.res2_scale": 2,
        "head.se_channels": 8, "head.attention_channels": 8, "head.embed_dim": 16, "data.crop_seconds": 0.25,
        "data.batch_size": 2, "data.num_workers": 0, "task.val_speakers": 0, "task.val_utts_per_speaker": 0,
        "train.save_every_steps": 1, "train.log_every_steps": 0}
NAN_CALLS = (2,)  # rank 1's loss is NaN at these batches and from PERSISTENT_FROM on
PERSISTENT_FROM = 6
PATIENCE = 3


def nccl_rules_run(data: str, exp: Path, rank: int, local_rank: int) -> None:
    import spkpeft.engine.trainer as trainer_module
    from fake_cuda import fake_cuda, for_real, real_batches
    from nccl_rules import nccl_rules

    cfg = load_config(CONFIG, {**TINY, "train.epochs": 2, "train.amp": "bf16", "train.grad_accum": 2})
    task = get_task(cfg)
    task.build_model, task.build_loss = for_real(task.build_model), for_real(task.build_loss)
    task.validate = lambda trainee, data, cfg, device: {name: 0.0 for name in task.metrics}
    saved = []
    trainer_module.save_atomic = lambda obj, path: saved.append(Path(path).name)
    with fake_cuda(), nccl_rules(local_rank) as rules:
        trainer = Trainer(cfg, task, data, exp, "cuda")
        loader = trainer.loader
        trainer.loader = lambda: real_batches(loader())
        trainer.run()
    (exp / f"rank{rank}.json").write_text(json.dumps({
        "init": {k: str(v) for k, v in rules.init_kwargs.items()}, "devices_set": rules.devices_set,
        "collectives": rules.log, "steps": trainer.step, "saved": saved}))


def nan_run(data: str, exp: Path, rank: int) -> None:
    from spkpeft.nn.losses import MarginSoftmax

    cfg = load_config(CONFIG, {**TINY, "train.epochs": 4})
    cfg.train.nonfinite_patience = PATIENCE
    calls = [0]
    forward = MarginSoftmax.forward

    def nan_on_rank1(self, emb, labels):
        loss, acc = forward(self, emb, labels)
        if self.training:
            calls[0] += 1
            if rank == 1 and (calls[0] in NAN_CALLS or calls[0] >= PERSISTENT_FROM):
                loss = loss * float("nan")
        return loss, acc

    MarginSoftmax.forward = nan_on_rank1
    trainer = Trainer(cfg, get_task(cfg), data, exp, "cpu")
    error = None
    try:
        trainer.run()
    except SpkpeftError as err:
        error = str(err)
    torch.save(trainable_state(trainer.trainee), exp / f"rank{rank}.pt")
    (exp / f"rank{rank}.json").write_text(json.dumps({"error": error, "step": trainer.step}))


def main() -> None:
    mode, data, exp = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if mode == "nccl_rules":
        nccl_rules_run(data, exp, rank, local_rank)
    else:
        nan_run(data, exp, rank)


if __name__ == "__main__":
    main()
