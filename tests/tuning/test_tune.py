"""takeoff tune: workers sharing one SQLite study, the pruner, the refitted bundle, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app
from takeoff.errors import ConfigError, DataSourceError

SRC = Path(__file__).resolve().parents[2] / "src"
GOOD = {"learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 20, "feature_fraction": 0.9,
        "bagging_fraction": 0.9, "lambda_l2": 1.0, "extra_trees": False, "min_data_per_group": 50, "cat_smooth": 10.0}
# learns so slowly that its validation loss trails every good trial's from the first rounds
BAD = {**GOOD, "learning_rate": 0.01, "num_leaves": 4, "min_child_samples": 100, "feature_fraction": 0.4,
       "bagging_fraction": 0.5, "lambda_l2": 30.0, "extra_trees": True}


@pytest.fixture(scope="module")
def credit_csv(credit_small, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tune") / "credit.csv"
    credit_small.to_csv(path, index=False)
    return path


# quick trials: one holdout split, short boosting (the search space leaves these alone)
QUICK = {"folds": 1, "models": {"lightgbm": {"max_rounds": 80, "early_stopping_rounds": 15}}}


def _states(study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_two_workers_share_one_sqlite_study(credit_csv, tmp_path):
    import yaml

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    (tmp_path / "quick.yaml").write_text(yaml.safe_dump(QUICK))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "takeoff", "-q", "tune", str(credit_csv), "--target", "Status", "--family", "lightgbm",
           "--trials", "10", "--storage", url, "--study", "credit", "--no-refit", "--no-track", "--time-budget", "300", "--config", str(tmp_path / "quick.yaml")]
    workers = [subprocess.Popen([*cmd, "--out", str(tmp_path / f"w{i}")], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    study = optuna.load_study(study_name="credit", storage=url)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 10  # the study's total, not 10 per worker
    # every trial ran once, in one worker; both workers took part
    assert len({t.number for t in finished}) == 10
    assert all(isinstance(t.user_attrs.get("worker"), str) for t in finished)
    assert len({t.user_attrs["worker"] for t in finished}) == 2
    assert study.user_attrs["target"] == "Status" and study.user_attrs["families"] == ["lightgbm"]


def test_the_pruner_stops_a_bad_trial_and_the_best_is_refitted(credit_small, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=url, study_name="prune", direction="maximize")
    for _ in range(5):
        study.enqueue_trial(GOOD)
    study.enqueue_trial(BAD)
    model, study = takeoff.tune(credit_small, "Status", family="lightgbm", trials=6, storage=url, study="prune",
                                time_budget=120, out=tmp_path / "run", config=QUICK)
    trials = study.get_trials(deepcopy=False)
    assert _states(study) == ["COMPLETE"] * 5 + ["PRUNED"]
    bad = trials[5]
    good_rounds = trials[0].last_step
    assert bad.params["learning_rate"] == 0.01 and bad.last_step < good_rounds
    # the refitted bundle carries the best trial's params and the search in its report
    assert model.manifest["members"][0]["params"]["learning_rate"] == GOOD["learning_rate"]
    tuning = model.manifest["training"]["tuning"]
    assert tuning["pruned"] == 1 and tuning["complete"] == 5 and tuning["best_trial"] in range(5)
    page = (model.path / "report.html").read_text()
    assert 'id="tuning-history"' in page and 'id="tuning-trials"' in page
    loaded = takeoff.load(model.path)
    rows = credit_small.drop(columns=["Status"]).head(20)
    assert list(loaded.predict(rows)) == list(model.predict(rows))


def test_trials_must_be_at_least_one(credit_csv, tmp_path):
    result = CliRunner().invoke(app, ["tune", str(credit_csv), "--target", "Status", "--trials", "0", "--no-track",
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "--trials must be at least 1, got 0" in result.output


def test_storage_errors_name_the_url_without_its_password(credit_small, tmp_path):
    with pytest.raises(DataSourceError) as info:
        takeoff.tune(credit_small, "Status", trials=1, storage="postgresql://churn:s3cret@127.0.0.1:9/studies",
                     out=tmp_path / "a")
    message = str(info.value)
    assert "s3cret" not in message and "postgresql://churn:***@127.0.0.1:9/studies" in message
    with pytest.raises(DataSourceError, match="cannot open the study storage"):
        takeoff.tune(credit_small, "Status", trials=1, storage=f"sqlite:///{tmp_path}/no/such/folder/s.db",
                     out=tmp_path / "b")


def test_a_study_of_another_target_is_refused_unless_resumed(credit_small, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _, first = takeoff.tune(credit_small, "Status", family="linear", trials=1, storage=url, study="s", refit=False,
                            time_budget=60, out=tmp_path / "a")
    before = first.user_attrs["data_fingerprint"]
    with pytest.raises(ConfigError, match="--resume-study") as info:
        takeoff.tune(credit_small, "Records", family="linear", trials=1, storage=url, study="s", refit=False,
                     out=tmp_path / "b")
    assert "target: study has 'Status', this run 'Records'" in str(info.value)
    changed = credit_small.iloc[:1000]  # other data, same target
    with pytest.raises(ConfigError, match="data_fingerprint"):
        takeoff.tune(changed, "Status", family="linear", trials=1, storage=url, study="s", refit=False,
                     out=tmp_path / "c")
    # carried on: the study already has its one trial, and now records the new data
    _, study = takeoff.tune(changed, "Status", family="linear", trials=1, storage=url, study="s", refit=False,
                            resume_study=True, out=tmp_path / "d")
    assert len(study.trials) == 1
    assert optuna.load_study(study_name="s", storage=url).user_attrs["data_fingerprint"] != before


def test_config_show_space_lists_each_searched_param():
    result = CliRunner().invoke(app, ["config", "show", "--space", "lightgbm"])
    assert result.exit_code == 0, result.output
    for name in ("learning_rate", "num_leaves", "extra_trees"):
        assert name in result.output
    refused = CliRunner().invoke(app, ["config", "show", "--space", "tfidf"])
    assert refused.exit_code == 2 and "declares no search space" in refused.output
