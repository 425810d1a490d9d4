"""Load the trading keypair from a file or from the JSON byte array itself.

The secret never reaches a log line or an exception message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from solders.keypair import Keypair

from pipeline.errors import ConfigError


def load_keypair(spec: str) -> Keypair:
    text = spec if spec.lstrip().startswith("[") else _read(Path(spec).expanduser())
    try:
        raw = json.loads(text)
        if not (isinstance(raw, list) and len(raw) == 64 and all(
                isinstance(b, int) and 0 <= b <= 255 for b in raw)):
            raise ValueError
        return Keypair.from_bytes(bytes(raw))
    except ValueError:
        raise ConfigError(message="wallet is not a 64-byte Solana keypair JSON array") from None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigError(message=f"cannot read wallet file {path}: {exc.strerror}") from None


def write_keypair(path: Path, keypair: Keypair) -> None:
    """Write a keypair file readable only by its owner (as solana-keygen does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(list(bytes(keypair)), fh)
