"""One family's failure never discards the others' results: a candidate that raises, runs out
of memory or of time is recorded (reason, seconds) in the manifest and the report, and the run
goes on; it fails only when no candidate finished, naming every reason."""

from __future__ import annotations

import json

import pytest

import takeoff
from takeoff.errors import BudgetError, TrainingError
from takeoff.models.linear import LinearFamily
from takeoff.models.lightgbm import LightGBMFamily
from takeoff.models.mlp import MLPFamily


@pytest.fixture(scope="module")
def credit600(credit):
    return credit.head(600)


def _raise(error):
    def fit(self, train, valid, ctx):
        raise error
    return fit


def test_a_family_out_of_memory_is_recorded_and_the_run_goes_on(credit600, tmp_path, monkeypatch):
    # the first family auto tries (so it is started whatever the machine's load) cannot allocate
    monkeypatch.setattr(LightGBMFamily, "fit", _raise(MemoryError("cannot allocate 68.7 GiB")))
    out = tmp_path / "bundle"
    model = takeoff.train(credit600, target="Status", time_budget=8, out=out, seed=0)
    manifest = json.loads((out / "takeoff.json").read_text())
    failed = manifest["training"]["failed"]
    assert failed[0]["candidate"] == "lightgbm" and {f["family"] for f in failed} == {"lightgbm"}
    assert failed[0]["kind"] == "memory" and failed[0]["reason"] == "ran out of memory (cannot allocate 68.7 GiB)"
    assert failed[0]["seconds"] >= 0
    assert not any(m.startswith("lightgbm") for m in model.manifest["member_scores"])
    assert "linear" in model.manifest["member_scores"]
    report = (out / "report.html").read_text()
    assert "failed candidates" in report.lower() and "ran out of memory (cannot allocate 68.7 GiB)" in report
    assert model.predict(credit600.head(5)).shape[0] == 5


def test_a_first_family_that_runs_out_of_time_gives_way_to_the_next(credit600, tmp_path, monkeypatch):
    monkeypatch.setattr(LightGBMFamily, "fit", _raise(BudgetError("no time left for one round")))
    model = takeoff.train(credit600, target="Status", time_budget=8, seed=0, family="auto")
    failed = model.manifest["training"]["failed"]
    lightgbm = [f for f in failed if f["family"] == "lightgbm"]
    assert lightgbm and all(f["kind"] == "time" and f["reason"].startswith("ran out of time") for f in lightgbm)
    assert "no time left for one round" in lightgbm[0]["reason"]
    assert "linear" in model.manifest["member_scores"]


def test_no_family_finished_names_every_reason(credit600, monkeypatch):
    monkeypatch.setattr(LightGBMFamily, "fit", _raise(ValueError("bad split")))
    monkeypatch.setattr(LinearFamily, "fit", _raise(MemoryError()))
    monkeypatch.setattr(MLPFamily, "fit", _raise(BudgetError("no time left for one batch")))
    with pytest.raises(TrainingError) as caught:
        takeoff.train(credit600, target="Status", time_budget=6, seed=0)
    message = str(caught.value)
    assert "no model could be trained" in message
    assert "lightgbm (5 candidates) ValueError: bad split" in message  # its portfolio, said once
    assert "linear ran out of memory" in message
    assert "mlp ran out of time in fold 1 of 5: no time left for one batch" in message
    assert {f["family"] for f in caught.value.failures} >= {"lightgbm", "linear", "mlp"}


def test_one_named_family_that_fails_keeps_its_own_error(credit600, monkeypatch):
    monkeypatch.setattr(MLPFamily, "fit", _raise(BudgetError("no time left for one batch")))
    with pytest.raises(BudgetError, match="no time left for one batch"):
        takeoff.train(credit600, target="Status", time_budget=6, seed=0, family="mlp")


def test_a_budget_below_the_least_a_run_needs_says_the_minimum(credit600, caplog):
    caplog.set_level("WARNING", logger="takeoff")
    model = takeoff.train(credit600, target="Status", time_budget=0.5, seed=0)
    said = [r.getMessage() for r in caplog.records if "below the least this run needs" in r.getMessage()]
    assert said and "Fix: --time-budget" in said[0]
    minimum = int(said[0].split("Fix: --time-budget ")[1].split()[0])
    assert minimum >= 3  # reading, one model, the report
    # the run still returns the one model it had time for (and imported nothing for the others)
    assert list(model.manifest["member_scores"]) == ["lightgbm"]
