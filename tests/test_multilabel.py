"""Multilabel targets end to end, on real data: telco customers' add-on services (four 0/1
columns made from the table's own Yes/No columns) and MovieLens movies' genres (one column of
"Action|Comedy" label sets). Label parsing, metrics by hand, the split, training through the
API and the CLI, bundles, the report and a real HTTP server."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.data.schema import Task, combine_label_columns, infer_task, label_sets, split_target
from takeoff.data.split import train_valid_split
from takeoff.errors import ConfigError, DataError, TargetError
from takeoff.evaluation.metrics import MIN_LABEL_POSITIVES, compute_metrics, predicted_codes, score, tune_label_thresholds

SERVICES = ["online_security", "tech_support", "streaming_tv", "streaming_movies"]


@pytest.fixture(scope="module")
def telco(datasets) -> pd.DataFrame:
    """1,500 telco customers with internet service; four add-on services as 0/1 columns."""
    df = pd.read_csv(datasets / "telco_churn.csv")
    df = df[df["internet_service"] != "No"].sample(1500, random_state=0).reset_index(drop=True)
    for column in SERVICES:
        df[column] = (df[column] == "Yes").astype(int)
    keep = ["tenure", "monthly_charges", "contract", "internet_service", "payment_method", "senior_citizen", "partner"]
    return df[keep + SERVICES]


@pytest.fixture(scope="module")
def movies(datasets) -> pd.DataFrame:
    """One row per MovieLens movie: its title, rating statistics and genres ("Action|Comedy")."""
    ratings = pd.read_csv(datasets / "movielens_ratings.csv")
    stats = ratings.groupby(["movieId", "title", "genres"]).agg(
        mean_rating=("rating", "mean"), n_ratings=("rating", "size"), first_rated=("timestamp", "min")).reset_index()
    return stats.drop(columns=["movieId"]).sample(1200, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def services_model(telco, tmp_path_factory):
    """auto on the four services: cross-validation (two folds), reseeds, the blend and the refit,
    with the MLP's epochs capped so that the run ends well before its budget."""
    out = tmp_path_factory.mktemp("multilabel") / "services"
    model = takeoff.train(telco.iloc[:1200], target=SERVICES, time_budget=40, seed=0, out=out,
                          family="auto", config={"folds": 2, "models": {"mlp": {"max_epochs": 10}}})
    return model, out


# ----------------------------------------------------------------------------- labels
def test_label_sets_parse_strings_lists_and_blanks():
    cells = pd.Series(["billing| refund", ["refund", "billing", "refund"], None, "", "shipping|", 3], dtype=object)
    assert label_sets(cells) == [("billing", "refund"), ("refund", "billing"), (), (), ("shipping",), ("3",)]
    task = infer_task(cells, "tags")
    assert task.kind == "multilabel" and task.classes == ["3", "billing", "refund", "shipping"]
    indicator = task.encode(cells)
    assert indicator.tolist() == [[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]]
    assert task.decode(indicator).tolist() == ["billing|refund", "billing|refund", "", "", "shipping", "3"]
    with pytest.raises(DataError, match="does not know: returns; known labels: 3, billing"):
        task.encode(pd.Series(["billing|returns"]))


def test_free_text_with_a_stray_bar_is_not_a_label_set(datasets):
    tweets = pd.read_csv(datasets / "tweets_source.csv", nrows=500)
    text = tweets["text"].copy()
    text.iloc[:20] = text.iloc[:20] + " | via web"
    assert infer_task(tweets["source"], "source").kind == "binary"
    # distinct texts: the "labels" never repeat, so it stays one (many-valued) class per row
    assert infer_task(text, "text").kind != "multilabel"


def test_several_label_columns_combine_and_bad_values_are_named(telco):
    assert split_target(SERVICES, list(telco.columns)) == ("|".join(SERVICES), SERVICES)
    assert split_target("tech_support,streaming_tv", list(telco.columns)) == ("tech_support|streaming_tv",
                                                                            ["tech_support", "streaming_tv"])
    assert split_target("tenure", list(telco.columns)) == ("tenure", [])
    frame = pd.DataFrame({"a": [1, 0, "yes", True], "b": ["no", 1, 0, None]})
    assert combine_label_columns(frame, ["a", "b"], "a|b").tolist() == ["a", "b", "a", "a"]
    with pytest.raises(TargetError, match=r"label column 'contract' must hold 0/1.*row 0 holds"):
        combine_label_columns(telco, ["tech_support", "contract"], "x")


# ---------------------------------------------------------------------------- metrics
def test_metrics_match_a_hand_count():
    task = Task("multilabel", "t", ["a", "b", "c"])
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    pred = np.array([[0.9, 0.2, 0.4], [0.6, 0.7, 0.1], [0.8, 0.3, 0.2], [0.1, 0.1, 0.9]])
    m = compute_metrics(task, y, pred)  # thresholds 0.5
    # hits: a: tp 2 fp 1 fn 0; b: tp 1 fp 0 fn 1; c: tp 0 fp 1 fn 1 -> micro tp 3, fp 2, fn 2
    assert m["micro_f1"] == pytest.approx(6 / 10)
    assert m["macro_f1"] == pytest.approx((4 / 5 + 2 / 3 + 0) / 3)
    assert m["subset_accuracy"] == pytest.approx(0.0)
    assert m["hamming_loss"] == pytest.approx(4 / 12)
    assert m["per_label"]["a"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8),
                                   "support": 2, "threshold": 0.5}
    # each label's own threshold changes the decisions: c at 0.35 finds row 0
    m2 = compute_metrics(task, y, pred, [0.5, 0.5, 0.35])
    assert m2["per_label"]["c"]["recall"] == 1.0 and m2["thresholds"]["c"] == 0.35
    assert predicted_codes(task, pred, [0.95, 0.5, 0.35]).tolist() == [[0, 0, 1], [0, 1, 0], [0, 0, 0], [0, 0, 1]]
    assert score(task, y, pred) == pytest.approx(-m["log_loss"])
    with pytest.raises(DataError, match="3 labels must have shape"):
        compute_metrics(task, y, pred[:, :2])


def test_label_thresholds_are_tuned_where_there_are_enough_rows():
    rng = np.random.default_rng(0)
    n = 400
    common = rng.random(n) < 0.5
    rare = np.zeros(n, bool)
    rare[:MIN_LABEL_POSITIVES - 1] = True
    y = np.column_stack([common, rare]).astype(int)
    # the common label's scores sit low: its best threshold is far below 0.5
    pred = np.column_stack([np.where(common, 0.3, 0.1) + rng.random(n) * 0.05, np.where(rare, 0.9, 0.05)])
    t_common, t_rare = tune_label_thresholds(y, pred)
    assert 0.15 < t_common < 0.3
    assert compute_metrics(Task("multilabel", "t", ["x", "y"]), y, pred, [t_common, t_rare])["per_label"]["x"]["f1"] == 1.0
    # the rare label shares the threshold tuned over every decision
    from takeoff.evaluation.metrics import tune_threshold

    assert t_rare == tune_threshold(y.ravel(), pred.ravel(), "f1")


def test_split_keeps_every_label_in_both_sets(movies):
    task = infer_task(movies["genres"], "genres")
    y = task.encode(movies["genres"])
    train, valid = train_valid_split(y, task, 0.2, 0)
    assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == len(y)
    counts = y.sum(axis=0)
    for k, label in enumerate(task.classes):
        if counts[k] >= 5:
            assert y[valid, k].sum() >= 1 and y[train, k].sum() >= 1, label
    assert train_valid_split(y, task, 0.2, 0)[1].tolist() == valid.tolist()


# --------------------------------------------------------------------------- training
def test_services_model_learns_each_label(services_model, telco):
    model, out = services_model
    assert model.task.kind == "multilabel" and model.task.classes == sorted(SERVICES)
    assert model.task.columns == SERVICES
    assert len(model.threshold) == len(SERVICES)
    test = telco.iloc[1200:]
    metrics = model.evaluate(test, report=out / "test.html")
    # always predicting every service: micro F1 = 2p/(1+p), p the share of positive decisions
    share = test[SERVICES].to_numpy().mean()
    assert metrics["micro_f1"] > 2 * share / (1 + share) + 0.1
    assert metrics["roc_auc"] > 0.75
    assert set(metrics["per_label"]) == set(SERVICES)
    html = (out / "test.html").read_text()
    assert "Multilabel classification" in html and "Per-label results" in html and "streaming_movies" in html


def test_services_bundle_round_trip_and_prediction_table(services_model, telco):
    model, out = services_model
    loaded = takeoff.load(out)
    rows = telco.iloc[1200:1260]
    assert (loaded.predict(rows) == model.predict(rows)).all()
    frame, _ = loaded.predict_frame(rows.drop(columns=SERVICES))
    assert list(frame.columns) == ["prediction"] + [f"proba_{c}" for c in loaded.classes]
    proba = frame[[f"proba_{c}" for c in loaded.classes]].to_numpy()
    expected = ["|".join(c for c, p, t in zip(loaded.classes, row, loaded.threshold) if p >= t) for row in proba]
    assert frame["prediction"].tolist() == expected
    assert loaded.predict_proba(rows).shape == (60, 4)
    manifest = json.loads((out / "takeoff.json").read_text())
    assert manifest["task"]["columns"] == SERVICES and len(manifest["threshold"]) == 4


def test_genres_with_per_label_models_and_the_cli(movies, tmp_path):
    path = tmp_path / "movies.csv"
    movies.to_csv(path, index=False)
    out = tmp_path / "genres"
    cli = [sys.executable, "-m", "takeoff", "train", str(path), "--target", "genres", "--family", "lightgbm",
           "--time-budget", "30", "--out", str(out)]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    model = takeoff.load(out)
    assert model.task.kind == "multilabel" and "Drama" in model.classes
    assert sorted(p.name for p in (out / "members" / "lightgbm").iterdir() if p.is_dir())[:2] == ["label-000", "label-001"]
    predicted = model.predict(movies.head(20))
    assert all(set(p.split("|")) <= set(model.classes) for p in predicted if p)
    ranked = model.predict_proba(movies.head(200))
    # the rating statistics carry signal about genres (documentaries are rated rarely and well)
    assert model.metrics["roc_auc"] > 0.6
    assert ranked.shape == (200, len(model.classes))


def test_rare_labels_are_refused_or_dropped(movies):
    few = movies.head(300).copy()
    few.loc[0, "genres"] = "Drama|Space Opera"
    with pytest.raises(TargetError, match=r"Space Opera.*1 of 300 rows.*drop_rare_classes"):
        takeoff.train(few, target="genres", family="lightgbm", time_budget=10)
    model = takeoff.train(few, target="genres", family="lightgbm", time_budget=10,
                          config={"drop_rare_classes": True, "refit": False})
    assert "Space Opera" not in model.classes and "Drama" in model.classes


def test_bad_multilabel_setups_get_clear_errors(telco, services_model, tmp_path):
    with pytest.raises(TargetError, match="make a multilabel task, not 'binary'"):
        takeoff.train(telco, target=SERVICES[:2], task="binary", time_budget=5)
    with pytest.raises(Exception, match="'not_a_column'"):
        takeoff.train(telco, target=["tech_support", "not_a_column"], time_budget=5)
    _, out = services_model
    with pytest.raises(ConfigError, match="multilabel bundle"):
        from takeoff.compression.compress import compress

        compress(out, telco.iloc[1200:], onnx=True, out=tmp_path / "c")
    findings = takeoff.inspect(telco, target=SERVICES)
    assert findings["task"]["kind"] == "multilabel" and findings["task"]["columns"] == SERVICES
    assert all(c["name"] not in SERVICES for c in findings["columns"])
