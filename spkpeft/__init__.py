"""spkpeft: parameter-efficient fine-tuning of self-supervised speech and audio models for speaker
verification, utterance classification and spoofing countermeasures.

``spkpeft.load(path)`` opens a trained experiment or an exported package
(:func:`spkpeft.inference.load`); it is imported on first use, so ``import spkpeft`` stays cheap.
"""

__version__ = "0.1.0"


def load(path, checkpoint=None, device="cpu"):
    """:func:`spkpeft.inference.load` (an experiment directory or an exported package -> a
    :class:`~spkpeft.inference.TrainedModel`)."""
    from spkpeft.inference import load as load_model

    return load_model(path, checkpoint=checkpoint, device=device)
