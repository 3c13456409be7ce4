"""spkpeft: parameter-efficient fine-tuning of self-supervised speech and audio models for speaker verification, utterance classification and (next) spoofing countermeasures."""

__version__ = "0.1.0"
