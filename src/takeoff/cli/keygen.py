"""`takeoff keygen`: a new Ed25519 key pair for `takeoff sign` and `serve --require-signed`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from takeoff.cli.output import out, run


def keygen(
    key_file: Annotated[Path, typer.Argument(help="Where to write the private key (PEM, owner-only); the public key goes to KEY_FILE.pub.")],
) -> None:
    """Create an Ed25519 key pair: sign bundles with the private key, verify them with the .pub."""
    from takeoff import signing

    private, public = run(signing.generate_key, key_file)
    key_id = signing.key_id(signing.public_key(public))
    out.print(f"private key: {private} (keep it where bundles are made)\npublic key:  {public} (give it to servers: "
              f"--verify-key or TAKEOFF_VERIFY_KEY)\nkey id: {key_id}", highlight=False)
