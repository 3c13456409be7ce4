"""Checks of a local Hugging Face model directory, shared by the families that load one (AST,
Whisper): ``config.json`` of the expected ``model_type`` and one of the weights files."""

from __future__ import annotations

import json
from pathlib import Path

from spkpeft.errors import file_error


def read_model_config(config: Path, model_type: str, missing: str) -> dict:
    """``config.json`` as a dict, an error naming the file unless it is readable JSON with
    ``model_type`` (``missing``: the message when the file does not exist)."""
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise file_error(config, missing) from None
    except (OSError, ValueError) as err:
        raise file_error(config, f"not a readable JSON file ({err})") from None
    if not isinstance(data, dict) or data.get("model_type") != model_type:
        kind = data.get("model_type") if isinstance(data, dict) else type(data).__name__
        raise file_error(config, f"model_type is {kind!r}, expected '{model_type}'")
    return data


def require_weights(directory: Path, names: tuple[str, ...]) -> None:
    """An error naming ``directory`` unless one of the weights files ``names`` is in it."""
    if not any((directory / name).is_file() for name in names):
        raise file_error(directory, f"no weights file ({' or '.join(names)})")
