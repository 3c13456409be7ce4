"""The task-agnostic machinery: trainer, checkpoints, distributed helpers, batched
inference and sharded extraction."""
