"""The conventions every `takeoff` command keeps: one JSON document on stdout with --json (logs on
stderr), -q/-v anywhere on the line, the documented exit codes, choices in --help and validated,
and shell completion. Real commands on the real credit-risk table."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from takeoff.cli import app

TAKEOFF = [sys.executable, "-m", "takeoff"]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def takeoff_cmd(*args, env=None):
    """A real `takeoff` process: stdout and stderr apart, as a shell pipes them."""
    return subprocess.run([*TAKEOFF, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def trained(credit_csv, tmp_path_factory):
    """`takeoff train --json -q` (the flag after the command): the JSON document and stderr."""
    out = tmp_path_factory.mktemp("runs") / "credit"
    proc = takeoff_cmd("train", credit_csv, "-t", "Status", "--family", "lightgbm", "--time-budget", "20",
                       "-o", out, "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    return strict_json(proc.stdout), proc.stderr, out


def strict_json(text: str):
    """One JSON document, as strict parsers (jq, JavaScript) read it: NaN is not JSON."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    assert text.count("\n") == 1 and text.endswith("\n"), text  # one line
    return json.loads(text, parse_constant=refuse)


def test_train_json_is_the_only_thing_on_stdout(trained):
    summary, stderr, out = trained
    assert summary["bundle"] == str(out) and summary["task"] == "binary" and summary["target"] == "Status"
    assert summary["metric"] == "roc_auc" and summary["metrics"]["roc_auc"] > 0.75
    assert summary["members"][0]["family"] == "lightgbm" and summary["report"].endswith("report.html")
    board = summary["leaderboard"]
    assert board[0]["family"] == "lightgbm" and board[0]["kept"] is True and board[0]["fit_seconds"] > 0
    assert board[0]["predict_seconds"] is None  # not measured: null, not NaN
    assert "INFO" not in stderr  # -q after the command: warnings and errors only


def test_predict_evaluate_inspect_explain_json(trained, credit_csv, tmp_path):
    _, _, bundle = trained
    result = run("predict", bundle, credit_csv, "-o", tmp_path / "p.csv", "--json")
    assert result.exit_code == 0, result.output
    summary = strict_json(result.stdout)
    assert summary["rows"] == 1200 and summary["output"] == str(tmp_path / "p.csv")
    assert len(pd.read_csv(tmp_path / "p.csv")) == 1200
    result = run("-q", "evaluate", bundle, credit_csv, "--json")
    assert result.exit_code == 0 and strict_json(result.stdout)["metrics"]["roc_auc"] > 0.75
    result = run("inspect", credit_csv, "-t", "Status", "--json", "-v")
    assert result.exit_code == 0 and strict_json(result.stdout)["rows"] == 1200
    # --json prints the explanation; --json-out also writes it to a file
    result = run("explain", bundle, credit_csv, "--rows", "2", "-o", tmp_path / "e.html", "--json",
                 "--json-out", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    explanation = strict_json(result.stdout)
    assert [e["row"] for e in explanation["local"]] == [0, 1] and explanation["report"] == str(tmp_path / "e.html")
    assert json.loads((tmp_path / "e.json").read_text())["local"] == explanation["local"]


def test_compress_json(trained, credit_csv, tmp_path):
    _, _, bundle = trained
    result = run("compress", bundle, "--out", tmp_path / "onnx", "--data", credit_csv, "--onnx", "--json")
    assert result.exit_code == 0, result.output
    comparison = strict_json(result.stdout)
    assert (tmp_path / "onnx" / "takeoff.json").exists() and isinstance(comparison, dict) and comparison


def test_quiet_and_verbose_anywhere(trained, credit_csv):
    _, _, bundle = trained
    logger = logging.getLogger("takeoff")
    for args, level in ((("evaluate", bundle, credit_csv, "-v"), logging.DEBUG),
                        (("evaluate", "-q", bundle, credit_csv), logging.WARNING),
                        (("--verbose", "evaluate", bundle, credit_csv), logging.DEBUG),
                        (("evaluate", bundle, credit_csv), logging.INFO)):
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)
        assert logger.level == level, args
    # after `--` a -q is an argument, not the flag
    result = run("inspect", "--", "-q")
    assert result.exit_code == 3 and "-q" in result.output


def test_exit_codes(trained, credit_csv, tmp_path):
    _, _, bundle = trained
    # 2: usage (Click's, and a value outside the choices)
    assert run("train", credit_csv, "--no-such-option").exit_code == 2
    result = run("train", credit_csv, "-t", "Status", "--family", "lightgbn")
    assert result.exit_code == 2 and "Did you mean 'lightgbm'" in result.output and "linear" in result.output
    assert run("train", credit_csv, "-t", "Status", "--metric", "auc").exit_code == 2
    assert run("train", credit_csv, "-t", "Status", "--task", "clustering").exit_code == 2
    # 3: data (a missing file, a missing column, strict checks that fail)
    result = run("inspect", tmp_path / "missing.csv")
    assert result.exit_code == 3 and "missing.csv" in result.output
    pd.read_csv(credit_csv).drop(columns=["Income"]).to_csv(tmp_path / "no-income.csv", index=False)
    result = run("predict", bundle, tmp_path / "no-income.csv", "-o", tmp_path / "p.csv")
    assert result.exit_code == 3 and "'Income'" in result.output and not (tmp_path / "p.csv").exists()
    # 4: bundle (not a bundle; a file changed after it was written)
    result = run("evaluate", tmp_path, credit_csv)
    assert result.exit_code == 4 and "takeoff.json" in result.output
    # 1: a runtime failure (an encoder that is not on this machine)
    result = run("index", credit_csv, "--text", "Home", "--encoder", "no-such-encoder", "--out", tmp_path / "i")
    assert result.exit_code == 1 and "no-such-encoder" in result.output and "Traceback" not in result.output


def test_a_tampered_bundle_exits_4(trained, credit_csv, tmp_path):
    import shutil

    _, _, bundle = trained
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    (copy / "features.json").write_text((copy / "features.json").read_text().replace("Income", "Incone", 1))
    result = run("evaluate", copy, credit_csv)
    assert result.exit_code == 4 and "features.json" in result.output


def test_choices_in_help_from_the_registry():
    from takeoff import registry
    from takeoff.evaluation.metrics import TASK_METRICS

    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400"})
    families = "|".join(["auto", *registry.names(), *registry.recommender_names()])
    metrics = "|".join(dict.fromkeys(m for ms in TASK_METRICS.values() for m in ms))
    assert f"[{families}]" in result.stdout and f"[{metrics}]" in result.stdout
    assert "[binary|multiclass|multilabel|regression|recommend|generate|answer]" in result.stdout


def test_shell_completion():
    proc = takeoff_cmd(env={"_TAKEOFF_COMPLETE": "complete_bash", "COMP_WORDS": "takeoff train --family li",
                            "COMP_CWORD": "3"})
    assert proc.returncode == 0 and proc.stdout.split() == ["lightgbm", "linear"]
    result = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="takeoff")
    assert result.exit_code == 0 and "_TAKEOFF_COMPLETE=complete_bash" in result.stdout


def test_an_unexpected_error_is_one_line_and_exit_1(capsys):
    """A bug or an environment problem: one line (exit 1); with -v, the traceback too."""
    import typer

    from takeoff.cli import output

    def broken():
        return {}["no such key"]

    for verbose in (False, True):
        output.settings["verbose"] = verbose
        try:
            with pytest.raises(typer.Exit) as exit_info:
                output.run(broken)
        finally:
            output.settings["verbose"] = False
        assert exit_info.value.exit_code == 1
        printed = capsys.readouterr().err
        assert "KeyError: 'no such key'" in printed
        assert ("Traceback" in printed) is verbose and ("run with -v" in printed) is not verbose
