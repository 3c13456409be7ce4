"""Training data, label-agnostic: random crops and balanced batch samplers, on-the-fly
augmentation, and the synthetic corpora."""
