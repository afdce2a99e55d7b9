"""Fixtures of the explanation tests: synthetic tables where the answer is known, and small
models trained on them (session-scoped; a few seconds each on two cores).

- ``one_column``: 1,000 rows; ``y`` ("yes"/"no") depends on ``x0`` only; ``n1``-``n3`` (numbers)
  and ``c`` (a category) are noise.
- ``lgb_one`` / ``mlp_one``: LightGBM and MLP models of ``one_column`` (bundles on disk too:
  ``model.path``), with the same feature pipeline (same data, same seed).
- ``texts``: 600 rows of ten filler words; ``label`` is "pos" exactly when the text holds the
  word "excellent"; ``stars`` is noise. ``tfidf_text``: a tfidf model of it.
- ``serve``: ``serve(source) -> url`` starts a real server on 127.0.0.1 (stopped at the end).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

import takeoff

FAST = {"refit": False}


@pytest.fixture(scope="session")
def one_column() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 1000
    df = pd.DataFrame({"x0": rng.normal(size=n), "n1": rng.normal(size=n), "n2": rng.normal(size=n),
                       "n3": rng.normal(size=n), "c": rng.choice(list("abcd"), size=n)})
    df["y"] = np.where(df["x0"] + 0.3 * rng.normal(size=n) > 0, "yes", "no")
    return df


@pytest.fixture(scope="session")
def lgb_one(one_column, tmp_path_factory) -> takeoff.Model:
    out = tmp_path_factory.mktemp("explain") / "lgb"
    return takeoff.train(one_column, target="y", family="lightgbm", time_budget=30, seed=0, config=FAST, out=out)


@pytest.fixture(scope="session")
def mlp_one(one_column, tmp_path_factory) -> takeoff.Model:
    out = tmp_path_factory.mktemp("explain") / "mlp"
    config = {**FAST, "models": {"mlp": {"hidden_sizes": [32], "max_epochs": 8}}}
    return takeoff.train(one_column, target="y", family="mlp", time_budget=30, seed=0, config=config, out=out)


@pytest.fixture(scope="session")
def texts() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    filler = ("the a of and to in is it that for on with as was at by an be this from or are but not have "
              "day food room staff time place").split()
    rows = []
    for _ in range(600):
        words = list(rng.choice(filler, size=10))
        positive = bool(rng.random() < 0.5)
        if positive:
            words.insert(int(rng.integers(0, 10)), "excellent")
        rows.append({"review": " ".join(words), "stars": float(rng.normal()), "label": "pos" if positive else "neg"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def tfidf_text(texts, tmp_path_factory) -> takeoff.Model:
    out = tmp_path_factory.mktemp("explain") / "tfidf"
    return takeoff.train(texts, target="label", family="tfidf", time_budget=30, seed=0, config=FAST, out=out)


class _ThreadServer:
    """A uvicorn server in a daemon thread, on a free port chosen by the OS."""

    def __init__(self, app):
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def serve():
    from takeoff.serving import ServeSettings, create_app

    servers: list[_ThreadServer] = []

    def start(source, **settings) -> str:
        settings.setdefault("api_key", None)  # not TAKEOFF_API_KEY from the environment
        server = _ThreadServer(create_app(source, ServeSettings(**settings)))
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
