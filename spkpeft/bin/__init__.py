"""Command-line tools, each run as ``python -m spkpeft.bin.<tool>``."""
