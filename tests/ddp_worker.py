"""Run by torchrun in tests/test_train.py: train briefly, then save this rank's trainable weights."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spkpeft.tasks.config import load_config  # noqa: E402
from spkpeft.engine.trainer import Trainer, trainable_state  # noqa: E402
from spkpeft.tasks.base import get_task  # noqa: E402


def main() -> None:
    config, data, exp, overrides = sys.argv[1], sys.argv[2], Path(sys.argv[3]), eval(sys.argv[4])
    cfg = load_config(config, overrides)
    trainer = Trainer(cfg, get_task(cfg), data, exp, "cpu")
    rank = trainer.dist.rank
    trainer.run()
    torch.save(trainable_state(trainer.trainee), exp / f"rank{rank}.pt")


if __name__ == "__main__":
    main()
