"""Run the REST API with uvicorn: one process, or ``workers`` processes sharing the port.

On SIGTERM or Ctrl-C, uvicorn stops accepting connections, finishes the requests in flight
(for at most the request timeout plus a margin) and exits cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from takeoff.bundle import MANIFEST
from takeoff.errors import BundleError, ConfigError
from takeoff.serving.connections import guard, uvicorn_options
from takeoff.serving.metrics import MULTIPROC_ENV
from takeoff.serving.settings import ServeSettings

ENV_CONFIG = "TAKEOFF_SERVE_CONFIG"  # how worker processes receive the source and settings
SHUTDOWN_MARGIN_S = 5.0


def serve(source: Path | str | dict, settings: ServeSettings | None = None, *,
          on_ready: Callable[[str], None] | None = None, log_level: str = "info") -> None:
    """Serve ``source`` over HTTP until SIGTERM or Ctrl-C.

    Args:
        source: a bundle directory, a directory of bundles, or a dict of name → Model (one
            worker only).
        settings: host, port, workers, limits, auth (default :class:`ServeSettings`).
        on_ready: called with the base URL once the models are loaded.
        log_level: uvicorn's log level.

    Raises:
        BundleError: nothing to serve at ``source``; ConfigError: several workers asked for
            models given as objects.

    Example:
        >>> serve("runs/", ServeSettings(port=8000, workers=2))
    """
    import uvicorn

    settings = settings or ServeSettings()
    check_port(settings.host, settings.port)  # a port in use is said before anything is loaded or printed
    url = f"http://{settings.host}:{settings.port}"
    graceful = settings.timeout_s + SHUTDOWN_MARGIN_S
    if settings.workers > 1:
        if isinstance(source, dict):
            raise ConfigError("several workers load the models from a path; pass a bundle directory, not Model objects")
        path = _check_source(Path(source))
        os.environ[ENV_CONFIG] = json.dumps({"source": str(path), "settings": settings.model_dump(mode="json")})
        if on_ready:
            on_ready(url)
        config = guard(uvicorn.Config("takeoff.serving.server:app_from_env", factory=True, host=settings.host, port=settings.port,
                                      workers=settings.workers, log_level=log_level, timeout_graceful_shutdown=graceful,
                                      access_log=settings.access_log, **uvicorn_options(settings)), settings)
        with _shared_metrics_dir():
            _run_workers(config)
        return
    from takeoff.serving.app import create_app

    app = create_app(source, settings)
    if on_ready:
        on_ready(url)
    server = make_server(app, settings, log_level=log_level)
    with _clean_exit(server):
        server.run()


def make_server(app, settings: ServeSettings, *, log_level: str = "info", port: int | None = None):
    """The ``uvicorn.Server`` of one process over ``app``, with the settings' connection limits
    (:mod:`~takeoff.serving.connections`); ``port`` overrides the settings' (0: any free port)."""
    import uvicorn

    config = uvicorn.Config(app, host=settings.host, port=settings.port if port is None else port, log_level=log_level,
                            timeout_graceful_shutdown=settings.timeout_s + SHUTDOWN_MARGIN_S, access_log=settings.access_log,
                            **uvicorn_options(settings))
    return uvicorn.Server(guard(config, settings))


def _run_workers(config) -> None:
    """uvicorn's multi-process mode (what ``uvicorn.run(..., workers=N)`` does), with one fix.

    uvicorn binds the shared socket with ``socket.socket(family)``, whose ``proto`` reads 0;
    asyncio then skips TCP_NODELAY on every accepted connection, and each response waits
    ~40 ms for a delayed ACK. Re-wrapping the descriptor lets the kernel report IPPROTO_TCP.
    """
    import inspect

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    bound = config.bind_socket()
    sock = socket.socket(fileno=bound.detach())  # family, type and proto read back from the descriptor
    sock.set_inheritable(True)
    extra = {"target": uvicorn.Server(config).run} if "target" in inspect.signature(Multiprocess).parameters else {}
    Multiprocess(config, sockets=[sock], **extra).run()


def check_port(host: str, port: int) -> None:
    """Raise ConfigError, naming the port and a free one, when ``host:port`` cannot be bound
    (another server holds it); port 0 (any free port) is not checked.

    Raises:
        ConfigError: the port is in use, or needs privileges (below 1024).
    """
    import errno

    if port == 0:
        return
    try:
        _bind(host, port)
    except PermissionError:
        raise ConfigError(f"port {port} on {host} needs administrator rights (ports below 1024 do). "
                          f"Fix: pass --port {_free_port(host, 8000) or 8000}.") from None
    except OSError as error:
        if error.errno not in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1), 10048):
            raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}. Fix: check --host "
                              "(127.0.0.1 for this machine, 0.0.0.0 for all interfaces) and --port.") from None
        free = _free_port(host, port + 1)
        fix = f"pass --port {free}" if free else "pass another --port"
        raise ConfigError(f"port {port} on {host} is already in use (another server, perhaps an earlier "
                          f"`takeoff serve`, is listening there). Fix: {fix}, or stop the other server.") from None


def _bind(host: str, port: int) -> None:
    """Bind and release ``host:port`` as uvicorn binds it (SO_REUSEADDR: a port in TIME_WAIT is free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))


def _free_port(host: str, start: int) -> int | None:
    """The first port from ``start`` (of ten) that ``host`` can bind, or None."""
    for candidate in range(start, min(start + 10, 65536)):
        try:
            _bind(host, candidate)
        except OSError:
            continue
        return candidate
    return None


def app_from_env():
    """The app of one worker process, from the JSON that :func:`serve` put in the environment."""
    from takeoff.serving.app import create_app

    config = json.loads(os.environ[ENV_CONFIG])
    return create_app(config["source"], ServeSettings(**config["settings"]))


def _check_source(path: Path) -> Path:
    """Fail in the parent, with a clear message, before starting workers that would each fail."""
    if path.is_dir() and ((path / MANIFEST).exists() or any((p / MANIFEST).exists() for p in path.iterdir() if p.is_dir())):
        return path.resolve()
    raise BundleError(str(path), "is not a bundle and holds no bundles", "pass a directory written by `takeoff train --out`, or a directory of them")


@contextmanager
def _shared_metrics_dir():
    """A fresh directory for prometheus_client's multiprocess mode, in the environment the
    worker processes start with (so every worker's counts add up in one scrape), removed when
    the server stops. A directory the user set in PROMETHEUS_MULTIPROC_DIR is used as it is."""
    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    path = tempfile.mkdtemp(prefix="takeoff-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _clean_exit(server):
    """After a graceful shutdown uvicorn re-raises the signal it caught (to whatever handler was
    there before it); make that handler a clean exit (code 0) instead of a kill or a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(*_):
        server.should_exit = True  # also covers a signal arriving before uvicorn installs its own handlers

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
