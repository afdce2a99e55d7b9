"""Fixtures for the serving tests: small trained bundles and real servers on 127.0.0.1.

Fixtures (all session-scoped unless said otherwise):

- ``model_dir``: a directory of two bundles trained on 1,200 credit-risk rows (target
  ``Status``, classes ``bad``/``good``): ``credit`` (LightGBM) and ``credit-mlp`` (MLP).
- ``lgb_bundle`` / ``mlp_bundle``: the paths of those two bundles.
- ``server_url``: the base URL (``http://127.0.0.1:PORT``, no trailing slash) of a real
  uvicorn server over ``model_dir``, with ``credit`` as the default model, no API key and
  default settings otherwise. Shared by every test of the session: do not assume counters
  in ``/metrics`` start at zero.
- ``start_server``: a factory ``start_server(source, **settings) -> url`` that starts
  another real server over a bundle path, a directory of bundles or a dict of
  ``{name: takeoff.Model}``, with ``ServeSettings`` fields as keyword arguments (e.g.
  ``api_key="k"``, ``timeout_s=0.001``); each is stopped at the end of the session.
- ``credit_rows``: 200 credit-risk rows not used for training, without the target.
- ``ratings``: the first 20,000 MovieLens ratings (userId, movieId, rating, timestamp, title,
  genres); ``rec_dir``: a directory of two bundles, ``movies`` (an itemknn recommender trained
  on ``ratings``, with the titles as item features) and ``cancer`` (the committed tabular
  bundle ``tests/fixtures/bundle-v1``); ``rec_bundle``: the path of ``movies``.
- ``long_context_lm``: a tiny random causal LM folder with a 4,096-token context;
  ``generate_bundle``: a generate bundle of it (served as ``tiny-chat``).

Servers run in a background thread of the test process (so a test may spy on a model it
passed in a dict); each binds a free port chosen by the OS.
"""

from __future__ import annotations

import shutil
import threading
import time

import pandas as pd
import pytest

import takeoff

TRAIN_ROWS = 1200


@pytest.fixture(scope="session")
def model_dir(credit_small, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving") / "models"
    takeoff.train(credit_small, target="Status", family="lightgbm", time_budget=20, seed=0, out=root / "credit")
    takeoff.train(credit_small, target="Status", family="mlp", time_budget=60, seed=0,  # max_epochs bounds it; the budget only guards a loaded machine
                  config={"models": {"mlp": {"max_epochs": 5}}}, out=root / "credit-mlp")
    return root


RATINGS_ROWS = 20_000


@pytest.fixture(scope="session")
def ratings(datasets) -> pd.DataFrame:
    return pd.read_csv(datasets / "movielens_ratings.csv", nrows=RATINGS_ROWS)


@pytest.fixture(scope="session")
def rec_dir(ratings, fixtures, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving-rec") / "models"
    takeoff.train(ratings, task="recommend", user="userId", item="movieId", rating="rating", time_column="timestamp",
                  family="itemknn", time_budget=20, seed=0, out=root / "movies")
    shutil.copytree(fixtures / "bundle-v1", root / "cancer")
    return root


@pytest.fixture(scope="session")
def rec_bundle(rec_dir):
    return rec_dir / "movies"


@pytest.fixture(scope="session")
def lgb_bundle(model_dir):
    return model_dir / "credit"


@pytest.fixture(scope="session")
def mlp_bundle(model_dir):
    return model_dir / "credit-mlp"


def _unseen(credit: pd.DataFrame, n: int) -> pd.DataFrame:
    used = credit.sample(TRAIN_ROWS, random_state=0).index
    return credit.drop(index=used).head(n).drop(columns=["Status"]).reset_index(drop=True)


@pytest.fixture(scope="session")
def credit_rows(credit) -> pd.DataFrame:
    """200 rows the models did not train on (credit_small samples 1,200 with random_state=0)."""
    return _unseen(credit, 200)


class _ThreadServer:
    """A uvicorn server in a daemon thread, on a free port chosen by the OS."""

    def __init__(self, app):
        import uvicorn

        # port=0 and uvicorn's own socket (not one passed in): its sockets get TCP_NODELAY,
        # without which every response waits ~40 ms for a delayed ACK.
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
def start_server():
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


@pytest.fixture(scope="session")
def server_url(start_server, model_dir) -> str:
    return start_server(model_dir, default_model="credit")


# ----------------------------------------------------------------------------- generative models
@pytest.fixture(scope="session")
def long_context_lm(tmp_path_factory):
    """A tiny random causal LM folder (ChatML template, 4,096-token context: room for long
    streams); its generations are gibberish but take every real code path."""
    pytest.importorskip("transformers")
    from takeoff.testing.llm import tiny_causal_lm

    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "model", context=4096)


@pytest.fixture(scope="session")
def generate_bundle(long_context_lm, tmp_path_factory):
    """A generate bundle (kind "generate") of the tiny model, saved as ``.../tiny-chat``."""
    from takeoff.pipelines.generation import GenerativeModel

    return GenerativeModel.from_folder(long_context_lm, name="tiny").save(tmp_path_factory.mktemp("gen") / "tiny-chat")
