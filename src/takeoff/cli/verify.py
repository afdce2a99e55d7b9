"""`takeoff verify`: check a bundle's files, manifest digest and (with a key) its signature."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from takeoff.cli.output import out, run


def verify(
    bundle: Annotated[Path, typer.Argument(help="The bundle directory to check.")],
    key_file: Annotated[Optional[Path], typer.Option("--key-file", "-k", help="Ed25519 public key (PEM, the .pub of `takeoff keygen`); else $TAKEOFF_VERIFY_KEY. Without one, the signature is not checked.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")] = False,
) -> None:
    """Check a bundle: every file's hash, the manifest's digest, and its signature when a key is given (exit 4 if not intact)."""
    import os

    from takeoff import signing

    key = run(signing.public_key, key_file) if key_file is not None or os.environ.get(signing.VERIFY_ENV) else None
    result = run(signing.verify, bundle, key)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
        return
    version = result.version
    if result.digest is None:
        out.print(f"{bundle}: files intact; its manifest has no digest (written before takeoff recorded one), so "
                  "edits to it cannot be detected: sign it to add one", highlight=False)
    elif result.checked:
        out.print(f"{bundle}: intact, version {version}, signature by key {result.key_id} verified", highlight=False)
    elif result.key_id:
        out.print(f"{bundle}: intact, version {version}, signed by key {result.key_id} (not checked: pass --key-file "
                  "or set TAKEOFF_VERIFY_KEY)", highlight=False)
    else:
        out.print(f"{bundle}: intact, version {version}, not signed", highlight=False)
