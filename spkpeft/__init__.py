"""spkpeft: parameter-efficient fine-tuning of self-supervised speech models for speaker verification."""

__version__ = "0.1.0"
