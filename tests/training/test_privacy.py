"""Differentially private training (DP-SGD through Opacus): the ε reported is the accountant's
for the steps taken, and a small private model on a real table predicts."""

from __future__ import annotations

import numpy as np
import pytest

import takeoff
from takeoff.errors import ConfigError
from takeoff.training.privacy import DPParams, PrivateTraining, default_delta

pytest.importorskip("opacus")


@pytest.fixture(scope="module")
def private_model(credit_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("dp") / "bundle"
    config = {"models": {"mlp": {"hidden_sizes": [32]}}, "dp": {"epochs": 3}, "seed": 2}
    takeoff.train(credit_small.head(600), "Status", config=config, time_budget=60, out=out, dp_epsilon=8.0)
    return takeoff.load(out)


def test_epsilon_reported_is_the_accountants_for_the_steps_taken(private_model):
    from opacus.accountants import RDPAccountant

    dp = private_model.manifest["privacy"]["dp"]
    assert [m["family"] for m in private_model.manifest["members"]] == ["mlp"]  # auto kept the DP-capable family
    assert dp["accountant"] == "rdp" and dp["max_grad_norm"] == 1.0
    assert dp["delta"] == default_delta(dp["training_rows"])
    assert 0 < dp["steps"] <= dp["planned_steps"]
    accountant = RDPAccountant()
    for _ in range(dp["steps"]):
        accountant.step(noise_multiplier=dp["noise_multiplier"], sample_rate=dp["sample_rate"])
    assert dp["epsilon"] == pytest.approx(accountant.get_epsilon(delta=dp["delta"]), rel=1e-9)
    # the noise was calibrated so that the planned steps spend the target (within Opacus's tolerance)
    if dp["steps"] == dp["planned_steps"]:
        assert dp["epsilon"] == pytest.approx(8.0, abs=0.1)
    assert dp["epsilon"] <= 8.0 + 0.01
    # no refit, no blend, one holdout split: the one DP fit is all the training rows went through
    training = private_model.manifest["training"]
    assert training["refitted"] == [] and training["folds"] == 1
    assert training["dp"] == dp
    assert "Differential privacy" in (private_model.path / "report.html").read_text()


def test_private_model_predicts_on_a_real_table(private_model, credit_small):
    labels = private_model.predict(credit_small.head(200))
    assert set(labels) <= {"good", "bad"}
    proba = private_model.predict_proba(credit_small.head(200)).to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert private_model.metrics["roc_auc"] > 0.6  # noisy, yet better than chance on credit risk
    # batch norm has no per-row gradient: the private MLP uses layer norm
    spec = (private_model.path / "members" / "mlp" / "mlp.json").read_text()
    assert '"norm": "layer"' in spec and '"privacy"' in spec


def test_poisson_batches_follow_the_sampling_plan():
    plan = PrivateTraining(DPParams(epsilon=3.0, delta=1e-5), n_rows=2000, batch_size=100, epochs=3)
    assert plan.sample_rate == 0.05 and plan.steps_per_epoch == 20 and plan.planned_steps == 60
    order = plan.batch_order(seed=7)
    first, again, other = order(0), order(0), order(1)
    assert all((a == b).all() for a, b in zip(first, again))  # a function of (seed, epoch) only
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(first, other))
    sizes = np.array([len(b) for epoch in range(5) for b in order(epoch)])
    assert sizes.std() > 0 and abs(sizes.mean() - 100) < 10  # Poisson: varying, around q·n


@pytest.mark.parametrize(("options", "match"), [
    ({"family": "lightgbm", "dp_epsilon": 3.0}, "'lightgbm' cannot train with differential privacy"),
    ({"family": "linear", "dp_epsilon": 3.0}, "'linear' cannot train with differential privacy"),
    ({"dp_epsilon": 0.0}, "dp.epsilon"),
    ({"dp_epsilon": -1.0}, "dp.epsilon"),
    ({"dp_epsilon": 1.0, "dp_delta": 1.5}, "dp.delta"),
])
def test_bad_privacy_options_are_refused(credit_small, tmp_path, options, match):
    with pytest.raises(ConfigError, match=match):
        takeoff.train(credit_small, "Status", time_budget=10, out=tmp_path / "run", **options)
    assert not (tmp_path / "run").exists()


def test_batch_norm_is_refused_with_a_message():
    import torch

    plan = PrivateTraining(DPParams(epsilon=3.0), n_rows=100, batch_size=10, epochs=1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    with pytest.raises(ConfigError, match="cannot train with differential privacy.*BatchNorm"):
        plan.wrap(net, torch.optim.SGD(net.parameters(), lr=0.1), "toy")


def test_takeoff_info_shows_the_epsilon_spent(private_model):
    import json

    from typer.testing import CliRunner

    from takeoff.cli import app

    result = CliRunner().invoke(app, ["info", str(private_model.path), "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["privacy"]["dp"]["epsilon"] == private_model.manifest["privacy"]["dp"]["epsilon"]
    text = CliRunner().invoke(app, ["info", str(private_model.path)]).stdout
    assert f"ε = {private_model.manifest['privacy']['dp']['epsilon']:.3f} spent" in text
