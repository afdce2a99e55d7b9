"""Feasibility (`takeoff inspect --assess`, :func:`takeoff.assess.assess`) on a real table, and
the learning-curve fit it rests on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from takeoff.assess import assess
from takeoff.assess.curve import fit_curve
from takeoff.cli import app
from takeoff.errors import DataError


def test_power_law_is_recovered_with_an_interval_that_holds_the_truth():
    rng = np.random.default_rng(0)
    truth = lambda n: 0.9 - 0.4 * (n / 10_000) ** -0.45  # noqa: E731
    rows = [1_000, 2_500, 5_000]
    scores = [[truth(n) + rng.normal(0, 0.004) for _ in range(3)] for n in rows]
    curve = fit_curve(rows, scores, 10_000, upper=1.0, seed=0)
    lo, hi = curve.interval(10_000)
    assert lo <= truth(10_000) <= hi
    assert abs(float(curve.predict(10_000)) - truth(10_000)) < 0.02
    gain, g_lo, g_hi = curve.gain(10_000)
    assert g_lo <= gain <= g_hi and gain > 0
    # no gain measured: a flat curve, and doubling is expected to change nothing
    flat = fit_curve(rows, [[0.7, 0.71, 0.69]] * 3, 10_000, upper=1.0)
    assert flat.b == 0.0 and flat.gain(10_000)[0] == 0.0


@pytest.fixture(scope="module")
def answer(credit, tmp_path_factory):
    """One assessment through the CLI (--json), which calls :func:`takeoff.assess.assess`."""
    folder = tmp_path_factory.mktemp("assess")
    data, page = folder / "credit.csv", folder / "credit-assess.html"
    credit.sample(1500, random_state=1).to_csv(data, index=False)
    result = CliRunner().invoke(app, ["inspect", str(data), "--target", "Status", "--assess", "--time-budget", "20",
                                      "--price-per-cpu-hour", "0.1", "--json", "--report", str(page)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_assessment_answers_the_four_questions(answer):
    assert answer["metric"] == "roc_auc" and answer["task"] == "binary"
    fits = {(p["family"], p["fraction"]) for p in answer["points"]}
    assert ("lightgbm", 1.0) in fits and ("linear", 1.0) in fits and ("lightgbm", 0.1) in fits
    n_train = answer["rows"]["train"]
    assert {p["rows"] for p in answer["points"] if p["fraction"] == 1.0} == {n_train}
    # signal: credit risk is well above a constant guess
    assert answer["baseline"] == 0.5 and answer["signal"]["level"] in ("moderate", "strong")
    check = answer["check"]
    if check is None:  # a machine so busy that the budget left no repeated fits: said, not guessed
        assert "raise --time-budget" in "\n".join(answer["verdict"])
    else:
        assert check["low"] <= check["predicted"] <= check["high"]
        assert check["inside"] == (check["low"] <= check["actual"] <= check["high"])
        doubling = answer["doubling"]
        assert doubling["low"] <= doubling["gain"] <= doubling["high"] and doubling["rows"] == 2 * n_train
    simple = answer["simple"]
    assert simple["as_good"] == (simple["gap"] <= simple["tolerance"])
    # serving: the candidate bundle and its ONNX form, measured; cost = CPU-hours × price
    forms = answer["serving"]["forms"]
    assert len(forms) == 2
    for form in forms.values():
        assert form["p50_ms_one_row"] > 0 and form["rows_per_second"] > 0
        assert form["cost_per_million"] == pytest.approx(form["cpu_hours_per_million"] * 0.1)
    verdict = "\n".join(answer["verdict"])
    for words in ("Signal:", "More data:", "Simple model:", "per 1M predictions"):
        assert words in verdict
    page = open(answer["report"], encoding="utf-8").read()
    assert "<svg" in page and "Learning curve" in page


def test_cli_assess_json_and_too_few_rows(credit, tmp_path):
    small = tmp_path / "small.csv"
    credit.head(300).to_csv(small, index=False)
    result = CliRunner().invoke(app, ["inspect", str(small), "--target", "Status", "--assess"])
    assert result.exit_code == 3  # a data error
    assert "about 500 rows" in result.output
    with pytest.raises(DataError, match="needs at least 40 training rows .* has 300"):
        assess(credit.head(300), "Status", time_budget=5, serving=False)
    result = CliRunner().invoke(app, ["inspect", str(small), "--assess"])
    assert result.exit_code == 2
