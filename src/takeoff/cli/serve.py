"""`takeoff serve`: bundles over HTTP (a REST API and a page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from takeoff.cli.output import out, run


def serve(
    source: Annotated[Path, typer.Argument(help="A bundle directory, or a directory of bundles (each served under its name).")],
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (0.0.0.0 for all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="TAKEOFF_API_KEY", show_envvar=True, help="Require 'Authorization: Bearer KEY'.")] = None,
    default: Annotated[Optional[str], typer.Option("--default", help="Model answering /v1/predict (default: the only one).")] = None,
    max_records: Annotated[Optional[int], typer.Option("--max-records", min=1, help="Most records per request (default 10000).")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0.001, help="Seconds per request (default 30).")] = None,
    cors_origin: Annotated[Optional[list[str]], typer.Option("--cors-origin", help="Origin allowed by CORS (repeat).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log a line per request.")] = True,
    require_signed: Annotated[bool, typer.Option("--require-signed", help="Refuse to start unless every bundle is signed by the --verify-key.")] = False,
    verify_key: Annotated[Optional[Path], typer.Option("--verify-key", help="Ed25519 public key (PEM) for --require-signed; else $TAKEOFF_VERIFY_KEY.")] = None,
) -> None:
    """Serve bundles over HTTP: a REST API (docs at /docs) and a page at /."""
    from takeoff.serving import ServeSettings
    from takeoff.serving import serve as run_server

    if require_signed:
        from takeoff.signing import require_signed as check_signed

        run(check_signed, source, verify_key)
    given = {"max_records": max_records, "timeout_s": timeout, "api_key": api_key, "default_model": default}
    settings = ServeSettings(host=host, port=port, workers=workers, cors_origins=cors_origin or [], access_log=access_log,
                             **{k: v for k, v in given.items() if v is not None})

    def ready(url: str) -> None:
        out.print(f"page: {url}/   API docs: {url}/docs   (Ctrl-C to stop)", highlight=False)

    run(run_server, source, settings, on_ready=ready)
