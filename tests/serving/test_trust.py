"""Personal data, model cards and drift from the CLI, the Python API and the server: one small
model trained with --redact-pii on a generated table with planted personal data."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from takeoff.api import load, monitor, train
from takeoff.cli import app
from takeoff.data.schema import Task
from takeoff.errors import BundleError, TargetError
from takeoff.evaluation.intervals import bootstrap
from takeoff.pipelines.prediction.card import model_card
from takeoff.testing.pii import planted_table


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    df, values = planted_table(per_kind=25, seed=7)
    df.to_csv(root / "people.csv", index=False)
    return root, df, values


@pytest.fixture(scope="module")
def redacted(planted):
    root, _, _ = planted
    result = cli("train", root / "people.csv", "--target", "label", "--family", "linear", "--time-budget", 30,
                 "--redact-pii", "all", "--intended-use", "Routing support tickets; not for decisions about people.",
                 "--out", root / "bundle")
    assert result.exit_code == 0, result.output
    return root / "bundle"


def files_text(folder) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_inspect_reports_kinds_shares_and_masked_examples(planted):
    root, _, values = planted
    result = cli("inspect", root / "people.csv", "--target", "label", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    kinds = {(f["column"], f["kind"]) for f in report["pii"]}
    assert {k for _, k in kinds} == {"email", "phone", "card", "iban", "ip", "ssn"}
    assert all(0 < f["share"] < 1 and 1 <= len(f["examples"]) <= 2 for f in report["pii"])
    assert any(f["check"] == "personal_data" and f["severity"] == "warning" for f in report["findings"])
    printed = result.stdout
    assert not [v["value"] for v in values if v["value"] in printed]  # examples are masked
    shown = cli("inspect", root / "people.csv")
    assert "personal data" in shown.stdout and "--redact-pii" in shown.stdout


def test_redaction_leaves_no_planted_value_in_bundle_report_or_predictions(planted, redacted, start_server):
    root, df, values = planted
    blob = files_text(redacted)
    assert (redacted / "MODEL_CARD.md").is_file() and (redacted / "redaction.json").is_file()
    left = [v["value"] for v in values if v["value"].encode() in blob]
    assert left == []
    manifest = json.loads((redacted / "takeoff.json").read_text())
    assert manifest["privacy"]["pii"]["redaction"]["kinds"] == ["email", "iban", "card", "ssn", "ip", "phone"]
    assert "<EMAIL>" in (redacted / "features.json").read_text()  # the features learned the tokens, not the values

    # the serving path redacts the same way: raw rows predict as the redacted rows do
    model = load(redacted)
    rows = df.drop(columns=["label"]).head(60)
    by_hand = model.redactor.apply(rows)
    assert np.allclose(model.predict_proba(rows).to_numpy(), model.predict_proba(by_hand).to_numpy())

    url = start_server(redacted)
    records = rows.to_dict("records")
    served = httpx.post(f"{url}/v1/models/bundle/predict", json={"records": records}, timeout=30)
    assert served.status_code == 200, served.text
    assert [p["prediction"] for p in served.json()["predictions"]] == list(model.predict(rows))
    assert not [v["value"] for v in values if v["value"] in served.text]
    card = httpx.get(f"{url}/v1/models/bundle/card", timeout=10)
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
    assert card.text == (redacted / "MODEL_CARD.md").read_text()
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'takeoff_drift_psi{column="amount",model="bundle"}' in metrics


def test_model_card_sections(redacted):
    card = (redacted / "MODEL_CARD.md").read_text()
    for heading in ("## Model details", "## Intended use", "## Training data", "## Evaluation", "## Privacy",
                    "## Limitations", "## Pretrained components and licences", "## How to reproduce"):
        assert heading in card
    assert "Routing support tickets" in card and "95% interval" in card
    assert "**Redaction**: email, iban, card, ssn, ip, phone" in card
    assert "## Per-group metrics" not in card and "Differential privacy" not in card
    report = (redacted / "report.html").read_text()
    assert 'id="model-card"' in report and "Routing support tickets" in report


def test_card_shows_fairness_and_dp_when_present(redacted):
    manifest = json.loads((redacted / "takeoff.json").read_text())
    manifest["fairness"] = {
        "sensitive": ["region"],
        "groups": [{"region": "north", "selection_rate": 0.41, "tpr": 0.8}, {"region": "south", "selection_rate": 0.22, "tpr": 0.61}],
        "differences": {"demographic_parity": 0.19}, "ratios": {"demographic_parity": 0.54},
        "warnings": ["demographic-parity ratio 0.54 is below 0.8 (four-fifths rule)"],
    }
    manifest["privacy"]["dp"] = {"epsilon": 3.0, "delta": 1e-5, "accountant": "rdp"}
    manifest["members"][0]["params"]["encoder"] = "sentence-transformers/all-MiniLM-L6-v2"
    card = model_card(manifest)
    assert "## Per-group metrics" in card and "| north | 0.41 | 0.8 |" in card and "four-fifths" in card
    assert "ε = 3, δ = 1e-05 (accountant: rdp)" in card
    assert "all-MiniLM-L6-v2" in card and "**Apache-2.0**" in card


def test_monitor_flags_the_shifted_column(planted, redacted, tmp_path):
    _, df, _ = planted
    same, shifted = df.copy(), df.copy()
    shifted["amount"] = shifted["amount"] * 3 + 400
    same.to_csv(tmp_path / "same.csv", index=False)
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    quiet = cli("monitor", redacted, tmp_path / "same.csv", "--json")
    assert quiet.exit_code == 0, quiet.output
    assert json.loads(quiet.stdout)["drifted"] == []
    loud = cli("monitor", redacted, tmp_path / "shifted.csv", "--out", tmp_path / "drift.html")
    assert loud.exit_code == 1, loud.output
    assert "drifted: amount" in loud.stdout
    assert "drift</span>" in (tmp_path / "drift.html").read_text()
    result = monitor(redacted, pd.read_csv(tmp_path / "shifted.csv"))  # as read: empty cells are missing
    assert result["drifted"] == ["amount"] and result["columns"][0]["psi"] is not None


def test_monitor_of_a_bundle_without_profile_says_retrain(fixtures):
    with pytest.raises(BundleError, match="has no training profile.*Fix: retrain it with this takeoff"):
        monitor(fixtures / "bundle-v1", fixtures / "bundle-v1-rows.csv")
    result = cli("monitor", fixtures / "bundle-v1", fixtures / "bundle-v1-rows.csv")
    assert result.exit_code == 4 and "retrain" in result.output  # a bundle error


def test_train_refuses_to_redact_the_target(planted, tmp_path):
    root, _, _ = planted
    with pytest.raises(TargetError, match="'label' is the target"):
        train(root / "people.csv", target="label", family="linear", out=tmp_path / "no",
              config={"pii": {"redact": ["email"], "columns": ["label"]}})
    assert not (tmp_path / "no").exists()


def test_bootstrap_is_seeded_and_brackets_the_metric():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    pred = np.stack([1 - p, p], axis=1)
    task = Task("binary", "y", [0, 1])
    first, again = bootstrap(task, y, pred, seed=3, resamples=40), bootstrap(task, y, pred, seed=3, resamples=40)
    assert first == again and first["resamples"] >= 20
    from takeoff.evaluation.metrics import compute_metrics

    low, high = first["intervals"]["roc_auc"]
    assert low < compute_metrics(task, y, pred)["roc_auc"] < high
