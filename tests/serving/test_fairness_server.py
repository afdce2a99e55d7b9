"""A bundle with per-group decision thresholds (``--mitigate threshold``) answers over HTTP with
the labels ``Model.predict`` gives: the server reads the sensitive columns from the request."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

import takeoff

pytest.importorskip("fairlearn")
SENSITIVE = ["senior_citizen", "female"]


@pytest.fixture(scope="module")
def fair_bundle(datasets, tmp_path_factory):
    telco = pd.read_csv(datasets / "telco_churn.csv").sample(1200, random_state=1).reset_index(drop=True)
    out = tmp_path_factory.mktemp("fair") / "bundle"
    takeoff.train(telco, "churn", config={"family": "linear", "folds": 1, "refit": False, "seed": 3}, time_budget=30,
                  out=out, sensitive=",".join(SENSITIVE), mitigate="threshold")
    return out, telco.drop(columns=["churn"]).head(200)


def test_the_server_applies_the_per_group_thresholds(start_server, fair_bundle):
    out, rows = fair_bundle
    model = takeoff.load(out)
    assert model.mitigation is not None
    expected = [str(v) for v in model.predict(rows)]
    plain = [str(v) for v in model.decide(model.predict_proba(rows).to_numpy())]
    assert expected != plain  # the thresholds change some labels on these rows
    url = start_server(str(out))
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    answer = httpx.post(f"{url}/v1/predict", json={"records": records}, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [str(p["prediction"]) for p in body["predictions"]] == expected
    assert not any("senior_citizen" in w for w in body["warnings"])  # read, not ignored
    csv = httpx.post(f"{url}/v1/predict", content=rows.to_csv(index=False).encode(),
                     headers={"Content-Type": "text/csv"}, timeout=60)
    assert csv.status_code == 200, csv.text
    assert [str(p["prediction"]) for p in csv.json()["predictions"]] == expected
    missing = httpx.post(f"{url}/v1/predict", json={k: v for k, v in records[0].items() if k != "female"}, timeout=60)
    assert missing.status_code in (400, 422) and "female" in missing.text
