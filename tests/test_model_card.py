"""The model card: sealed into the package as it is written, read back verified, printed by
``mlpilot card`` with the deployments the service recorded."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import helpers_models
from helpers_models import TrainedModel
from mlpilot.cli.main import app
from mlpilot.errors import ModelPackageError
from mlpilot.package import (
    CARD_JSON,
    CARD_MARKDOWN,
    MANIFEST,
    InferenceModel,
    card_markdown,
    read_card,
    seal_files,
    verify_package,
)
from mlpilot.profile import build_profile
from mlpilot.search import ValidationPlan
from mlpilot.service import Store


def _package(tmp_path: Path) -> Path:
    info = {"problem_type": "Regression", "checksums": {}, "candidate": {}, "versions": {}}
    return InferenceModel([], info).save(tmp_path / "pkg")


def test_a_sealed_card_is_checked_and_archived(tmp_path: Path) -> None:
    folder = _package(tmp_path)
    card = {"model": {"candidate": "c1"}, "metrics": {"values": {"MSE": 1.5}}}
    seal_files(folder, {CARD_JSON: json.dumps(card), CARD_MARKDOWN: card_markdown(card)})
    info = verify_package(folder)
    assert set(info["checksums"]) == {"pipeline.joblib", CARD_JSON, CARD_MARKDOWN}
    assert read_card(folder) == card
    with tarfile.open(folder / "model.tar.gz") as tar:
        assert {CARD_JSON, CARD_MARKDOWN, MANIFEST} <= set(tar.getnames())
    (folder / CARD_JSON).write_text(json.dumps({**card, "model": {"candidate": "other"}}))
    with pytest.raises(ModelPackageError, match=r"model-card\.json"):
        read_card(folder)


def test_a_package_without_a_card_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelPackageError, match="no model card"):
        read_card(_package(tmp_path))


def test_the_store_keeps_each_packages_deployments(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'mlpilot.db'}")
    row = {
        "model_data_url": "/m/model.tar.gz",
        "model_name": "m",
        "endpoint": "e",
        "variant": "A",
        "endpoint_config": "c",
    }
    store.add_deployments(
        [
            {**row, "package_id": "abc", "action": "UpdateEndpoint", "time": 2.0},
            {**row, "package_id": "abc", "action": "CreateEndpoint", "time": 1.0},
            {**row, "package_id": "other", "action": "CreateEndpoint", "time": 1.5},
        ]
    )
    found = store.list_deployments("abc")
    store.close()
    assert [d["action"] for d in found] == ["CreateEndpoint", "UpdateEndpoint"]
    assert found[0]["endpoint"] == "e" and found[0]["variant"] == "A"


@pytest.mark.slow
def test_the_jobs_package_holds_its_card(tmp_path_factory: pytest.TempPathFactory) -> None:
    churn: TrainedModel = helpers_models.churn_model(tmp_path_factory)
    card = read_card(churn.package)  # verifies every checksum, the card's among them
    assert card["model"]["target"] == "Churn"
    assert card["model"]["problem_type"] == "BinaryClassification"
    assert len(card["data"]["fingerprint"]) == 64
    assert card["data"]["rows"] == 500
    assert card["data"]["class_counts"] == {"No": 372, "Yes": 128}
    assert card["config"]["problem"]["target"] == "Churn"
    assert card["versions"]["scikit-learn"]
    assert card["validation"]["method"] == "cross-validation"
    assert card["validation"]["folds"] == 5
    metrics = card["metrics"]
    assert metrics["objective"] == "F1"
    uncertainty = metrics["uncertainty"]
    assert uncertainty["method"] == "bootstrap" and uncertainty["rows"] == 500
    low, high = uncertainty["intervals"]["F1"]
    assert low < metrics["values"]["F1"] < high and high - low < 0.3
    caveats = card["caveats"]
    assert any("customerID" in finding for finding in caveats["findings"])
    assert caveats["imbalance"] == {"minority_class": "Yes", "minority_share": 0.256}
    assert "training rows vs" in caveats["drift"]["compared"]
    assert "intended_use" in card and "Churn" in card["intended_use"]["summary"]
    markdown = (churn.package / CARD_MARKDOWN).read_text()
    assert "## Metrics" in markdown and card["data"]["fingerprint"] in markdown
    # The loaded model's payload still verifies against the manifest the card joined.
    assert InferenceModel.load(churn.package).labels == ["No", "Yes"]

    printed = CliRunner().invoke(app, ["card", str(churn.job), "--format", "json"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["data"]["fingerprint"] == card["data"]["fingerprint"]
    empty = tmp_path_factory.mktemp("service")
    Store(f"sqlite:///{empty / 'mlpilot.db'}").close()
    printed = CliRunner().invoke(app, ["card", str(churn.package), "--data-dir", str(empty)])
    assert printed.exit_code == 0, printed.output
    assert "## Deployments" in printed.output and "Not deployed" in printed.output


def test_caveats_flag_a_leaking_column_and_a_drifted_one() -> None:
    from mlpilot.jobs._card import _caveats  # the checks alone, without a job

    rng = np.random.default_rng(0)
    n = 400
    y = rng.choice(["no", "yes"], n, p=[0.95, 0.05])
    folds = np.where(np.arange(n) >= 300, 1, 0)
    table = pd.DataFrame(
        {
            "leak": np.where(y == "yes", "L1", "L0"),
            "shifted": np.where(folds == 1, 50.0, 0.0) + rng.normal(size=n),
            "noise": rng.normal(size=n),
            "target": y,
        }
    )
    profile = build_profile(table, "target")
    plan = ValidationPlan("holdout", folds, (1,), "the last 100 rows", n)
    caveats = _caveats(profile, table, folds, plan)
    assert [leak["column"] for leak in caveats["leakage"]] == ["leak"]
    drifted = caveats["drift"]["features"]
    assert [(f["column"], f["measure"]) for f in drifted] == [("shifted", "KS statistic")]
    assert caveats["imbalance"]["minority_class"] == "yes"
    assert any("class imbalance" in finding for finding in caveats["findings"])
