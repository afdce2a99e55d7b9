"""`takeoff sign`: sign a bundle's digest with an Ed25519 key (see docs/security.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from takeoff.cli.output import out, run


def sign(
    bundle: Annotated[Path, typer.Argument(help="The bundle directory to sign.")],
    key_file: Annotated[Optional[Path], typer.Option("--key-file", "-k", help="Ed25519 private key (PEM), from `takeoff keygen`; else $TAKEOFF_SIGNING_KEY holds the PEM text.")] = None,
) -> None:
    """Sign a bundle: its files and manifest are checked, then the signature is written into takeoff.json."""
    from takeoff import signing

    key = run(signing.private_key, key_file)
    result = run(signing.sign, bundle, key)
    out.print(f"signed {bundle} (version {result.version}) with key {result.key_id}", highlight=False)
