"""``mlpilot retrain``: the decision (margin and direction), the JSON line, scoring on a
holdout, the schema check, the champion lookup chain over a real in-process service and
SQLite store; and one champion/challenger run through a real ``mlpilot serve``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import helpers_models
from helpers_data import PIMA, TELCO
from helpers_service import ServiceProcess, automl_request, client_env, wait_for
from mlpilot.service import (
    InProcessControl,
    RetrainError,
    RetrainOutcome,
    Service,
    ServiceConfig,
    ServiceError,
    check_schema,
    decide,
    find_champion,
    score_package,
)

ARN = "arn:aws:sagemaker:us-east-1:000000000000"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def churn(tmp_path_factory: pytest.TempPathFactory) -> helpers_models.TrainedModel:
    return helpers_models.churn_model(tmp_path_factory)


@pytest.mark.parametrize(
    ("maximize", "champion", "challenger", "margin", "won"),
    [
        (True, 0.80, 0.81, 0.0, True),
        (True, 0.80, 0.804, 0.005, False),  # better, not by the margin
        (True, 0.80, 0.806, 0.005, True),
        (True, 0.80, 0.80, 0.0, False),  # a tie keeps the champion
        (True, 0.80, 0.70, 0.0, False),
        (False, 10.0, 9.0, 0.5, True),  # minimized: lower wins
        (False, 10.0, 9.8, 0.5, False),
        (False, 10.0, 11.0, 0.0, False),
        (True, 0.80, float("nan"), 0.0, False),
    ],
)
def test_decision_follows_the_objectives_direction_and_margin(
    maximize: bool, champion: float, challenger: float, margin: float, won: bool
) -> None:
    decided, reason = decide(maximize, champion, challenger, margin)
    assert decided is won
    assert reason


def test_the_json_line_has_the_documented_keys_and_no_nan() -> None:
    outcome = RetrainOutcome(
        decision="kept",
        metric="MSE",
        champion="m1",
        challenger="m2",
        champion_score=1.5,
        challenger_score=float("nan"),
        reason="why",
        holdout_rows=200,
        captured_rows=0,
        steps=[{"action": "evaluated"}],
    )
    line = outcome.line()
    assert "\n" not in line
    assert json.loads(line) == {
        "decision": "kept",
        "metric": "MSE",
        "champion": "m1",
        "challenger": "m2",
        "champion_score": 1.5,
        "challenger_score": None,
        "reason": "why",
        "holdout_rows": 200,
        "captured_rows": 0,
    }


def test_scoring_a_package_on_a_holdout(churn: helpers_models.TrainedModel) -> None:
    table = pd.read_csv(TELCO, dtype=str, keep_default_na=False).iloc[500:700]
    accuracy = score_package(churn.model, table, "Accuracy")
    assert 0.5 < accuracy <= 1.0
    logloss = score_package(churn.model, table, "LogLoss")
    assert logloss > 0
    with pytest.raises(RetrainError, match="no target column 'Churn'"):
        score_package(churn.model, table.drop(columns=["Churn"]), "Accuracy")
    with pytest.raises(RetrainError, match="lacks the model's input column"):
        score_package(churn.model, table.drop(columns=["tenure"]), "Accuracy")
    with pytest.raises(RetrainError, match="cannot be scored"):
        score_package(churn.model, table, "MSE")


def test_new_data_with_another_schema_names_the_columns() -> None:
    check_schema(["a", "b", "y"], ["a", "b"], "y", "The new data")
    with pytest.raises(RetrainError) as caught:
        check_schema(["a", "c", "y"], ["a", "b"], "y", "The new data s3://b/new/")
    message = str(caught.value)
    assert "lacks column(s) b" in message
    assert "not trained on: c" in message
    assert "\n" not in message


def test_a_manifest_lists_old_and_new_data_for_one_channel(tmp_path: Path) -> None:
    from mlpilot.data import list_objects, read_table
    from mlpilot.service import write_manifest

    for name, rows in (("old", range(3)), ("new", range(3, 5))):
        (tmp_path / name).mkdir()
        pd.DataFrame({"x": list(rows), "y": [0, 1, 0][: len(rows)]}).to_csv(
            tmp_path / name / "part.csv", index=False
        )
    uris = list_objects(tmp_path / "old") + list_objects(tmp_path / "new")
    manifest = write_manifest(uris, str(tmp_path / "both.manifest"))
    # Read back as one table (the reader orders the objects by URI).
    assert sorted(read_table(manifest, data_type="ManifestFile")["x"]) == list("01234")
    with pytest.raises(RetrainError, match="both local or both on S3"):
        write_manifest([*uris, "s3://bucket/new/part.csv"], str(tmp_path / "mixed.manifest"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pima", "--data", "d", "--holdout", "h", "--canary-weight", "2"], "--canary-weight"),
        (["pima", "--data", "d"], "Give --holdout"),
        (["pima", "--holdout", "h"], "Give --data"),
        (["pima", "--data", "d", "--watch", "w", "--holdout", "h"], "not both"),
        (["describe"], "needs the endpoint"),
        (["promote", "pima"], "needs the endpoint and --version"),
        (["pima", "--data", "d", "--holdout", "h", "--captured-since", "0"], "--captured-since"),
        (["pima", "--data", "d", "--holdout", str(REPO / "no-such.csv")], "does not exist"),
        (["history"], "Cannot reach an mlpilot service"),
    ],
)
def test_bad_command_lines_are_one_line_errors(args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from mlpilot.cli.main import app

    # Port 9 (discard) on loopback: nothing listens, so nothing is changed anywhere.
    result = CliRunner().invoke(app, ["retrain", *args, "--endpoint-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert message in lines[0]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    made = Service(ServiceConfig(data_dir=tmp_path / "data"))
    yield made
    made.store.close()


def _job_record(service: Service, name: str, container: dict[str, Any]) -> None:
    arn = f"{ARN}:automl-job/{name}"
    record = {
        "AutoMLJobName": name,
        "AutoMLJobArn": arn,
        "AutoMLJobStatus": "Completed",
        "AutoMLJobSecondaryStatus": "Completed",
        "CreationTime": 1.0,
        "LastModifiedTime": 2.0,
        "AutoMLJobObjective": {"MetricName": "Accuracy"},
        "BestCandidate": {"CandidateName": "c1", "InferenceContainers": [container]},
        "AutoMLJobInputDataConfig": [
            {
                "ChannelType": "training",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(TELCO)}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": str(service.config.data_dir / "out")},
    }
    service.store.insert_job(
        {
            "name": name,
            "arn": arn,
            "status": "Completed",
            "secondary_status": "Completed",
            "created": 1.0,
            "modified": 2.0,
            "record": record,
            "api_version": "V2",
            "local_root": str(service.config.data_dir / name),
            "output_root": str(service.config.data_dir / name),
            "stop_requested": False,
        }
    )


def _serve(service: Service, endpoint: str, config: str, model: str, **settings: Any) -> None:
    """An endpoint record in service (the hosting itself is not what the lookup reads)."""
    service.call(
        "CreateEndpointConfig",
        {
            **settings,
            "EndpointConfigName": config,
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        },
    )
    record = {
        "EndpointName": endpoint,
        "EndpointArn": f"{ARN}:endpoint/{endpoint}",
        "EndpointConfigName": config,
        "EndpointStatus": "InService",
        "CreationTime": 1.0,
        "LastModifiedTime": 1.0,
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentWeight": 1.0}],
    }
    if service.store.get_resource("endpoint", endpoint) is None:
        service.store.insert_resource("endpoint", endpoint, record["EndpointArn"], record)
    else:
        service.store.put_resource("endpoint", endpoint, record)


def test_the_champion_is_found_from_the_endpoint(
    service: Service, churn: helpers_models.TrainedModel, tmp_path: Path
) -> None:
    control = InProcessControl(service)
    job = json.loads((churn.job / "job.json").read_text())
    container = job["BestCandidate"]["InferenceContainers"][0]
    _job_record(service, "churn-job", container)
    keep = ("Image", "ModelDataUrl", "Environment")
    # A model made from the job's container: the job is the one whose best candidate runs it.
    service.call(
        "CreateModel",
        {"ModelName": "by-hand", "PrimaryContainer": {k: container[k] for k in keep}},
    )
    _serve(service, "churn", "churn-1", "by-hand")
    found = find_champion(control, "churn")
    assert (found.job, found.model, found.variant, found.group) == (
        "churn-job",
        "by-hand",
        "AllTraffic",
        None,
    )

    # A model made from a package: the package's metadata names the job.
    service.call("CreateModelPackageGroup", {"ModelPackageGroupName": "churn"})
    arn = service.call(
        "CreateModelPackage",
        {
            "ModelPackageGroupName": "churn",
            "InferenceSpecification": {"Containers": [{k: container[k] for k in keep}]},
            "CustomerMetadataProperties": {"AutoMLJobName": "named-job"},
        },
    )["ModelPackageArn"]
    service.call(
        "CreateModel", {"ModelName": "packaged", "PrimaryContainer": {"ModelPackageName": arn}}
    )
    _serve(service, "churn", "churn-2", "packaged")
    found = find_champion(control, "churn")
    assert (found.job, found.package, found.group) == ("named-job", arn, "churn")

    # A model no job made and no package names: the error asks for --job; --job answers.
    other = tmp_path / "other.tar.gz"
    other.write_bytes((churn.archive).read_bytes())
    service.call(
        "CreateModel",
        {
            "ModelName": "stranger",
            "PrimaryContainer": {"Image": container["Image"], "ModelDataUrl": str(other)},
        },
    )
    _serve(service, "churn", "churn-3", "stranger")
    with pytest.raises(RetrainError, match="give --job"):
        find_champion(control, "churn")
    assert find_champion(control, "churn", job="churn-job").job == "churn-job"

    with pytest.raises(RetrainError, match=r"Could not find endpoint .*nowhere"):
        find_champion(control, "nowhere")


def test_a_policy_survives_a_restart_and_new_data_of_another_schema_fails_its_round(
    tmp_path: Path, churn: helpers_models.TrainedModel
) -> None:
    data = tmp_path / "data"
    service = Service(ServiceConfig(data_dir=data))
    container = json.loads((churn.job / "job.json").read_text())["BestCandidate"][
        "InferenceContainers"
    ][0]
    _job_record(service, "churn-job", container)
    keep = ("Image", "ModelDataUrl", "Environment")
    service.call(
        "CreateModel", {"ModelName": "m1", "PrimaryContainer": {k: container[k] for k in keep}}
    )
    _serve(service, "churn", "churn-1", "m1")
    table = pd.read_csv(TELCO, dtype=str, keep_default_na=False)
    holdout = tmp_path / "holdout.csv"
    table.iloc[500:600].to_csv(holdout, index=False)
    landing = tmp_path / "landing"
    landing.mkdir()
    table.iloc[600:700].to_csv(landing / "already-there.csv", index=False)

    unlabelled = tmp_path / "unlabelled.csv"
    table.iloc[500:600].drop(columns=["Churn"]).to_csv(unlabelled, index=False)
    for settings, message in (
        ({"WatchPrefix": str(landing), "Holdout": str(unlabelled)}, "no target column 'Churn'"),
        ({"WatchPrefix": str(landing)}, "needs Holdout"),
        ({"WatchPrefix": str(landing), "Holdout": str(holdout), "Every": 5}, "Unknown"),
        ({"WatchPrefix": str(landing), "Holdout": str(holdout), "IntervalSeconds": 0}, "between"),
    ):
        with pytest.raises(ServiceError, match=message):
            service.policies.put("churn", settings)
    with pytest.raises(ServiceError, match="Could not find endpoint"):
        service.policies.put("nowhere", {"WatchPrefix": str(landing), "Holdout": str(holdout)})
    made = service.policies.put(
        "churn", {"WatchPrefix": str(landing), "Holdout": str(holdout), "IntervalSeconds": 60}
    )
    assert made["SeenObjects"] == 1
    service.store.close()

    restarted = Service(ServiceConfig(data_dir=data))
    try:
        kept = restarted.policies.get("churn")
        assert {k: kept[k] for k in ("WatchPrefix", "IntervalSeconds", "SeenObjects")} == {
            "WatchPrefix": str(landing),
            "IntervalSeconds": 60.0,
            "SeenObjects": 1,
        }
        # Nothing new under the prefix: no round, whenever it looks.
        assert restarted.policies.tick("churn", now=time.time() + 3600) is None
        changed = table.iloc[700:760].drop(columns=["tenure"]).assign(region="north")
        changed.to_csv(landing / "new.csv", index=False)
        assert restarted.policies.tick("churn") is None  # not due before its interval
        outcome = restarted.policies.tick("churn", now=time.time() + 7200)
        assert outcome is not None
        assert outcome.decision == "failed"
        assert "lacks column(s) tenure" in outcome.reason
        assert "region" in outcome.reason
        actions = [e["action"] for e in restarted.policies.history("churn")]
        assert actions == ["policy_created", "triggered", "champion", "decision"]
        endpoint = restarted.call("DescribeEndpoint", {"EndpointName": "churn"})
        assert endpoint["EndpointConfigName"] == "churn-1"
        assert (
            restarted.store.list_resources("endpoint-config", limit=10).rows[0][
                "EndpointConfigName"
            ]
            == "churn-1"
        )
        assert restarted.policies.get("churn")["LastRound"]["decision"] == "failed"
        assert str(landing / "new.csv") in outcome.reason

        # On a schedule: a round on everything under the prefix, new data or not.
        restarted.policies.put(
            "churn",
            {"WatchPrefix": str(landing), "Holdout": str(holdout), "ScheduleSeconds": 600},
        )
        assert restarted.policies.tick("churn") is None
        outcome = restarted.policies.tick("churn", now=time.time() + 601)
        assert outcome is not None and outcome.decision == "failed"
        events = restarted.policies.history("churn")
        assert [e["action"] for e in events[-4:]] == [
            "policy_replaced",
            "triggered",
            "champion",
            "decision",
        ]
        assert events[-3]["trigger"] == "schedule"
        assert sorted(events[-3]["files"]) == [
            str(landing / "already-there.csv"),
            str(landing / "new.csv"),
        ]
    finally:
        restarted.store.close()


def _cli(server: ServiceProcess, *args: str) -> list[str]:
    """``mlpilot retrain`` in this process (its imports are paid once), as a client of the
    service with the test credentials."""
    from typer.testing import CliRunner

    from mlpilot.cli.main import app

    result = CliRunner(env=client_env()).invoke(
        app, ["retrain", *args, "--endpoint-url", server.url]
    )
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()


def _pima_data(tmp_path: Path) -> pd.DataFrame:
    """Pima split for champion and challengers: ``weak/`` (three strong features scrambled),
    ``better/`` (clean), ``worse/`` (scrambled labels) and ``holdout.csv``; the holdout."""
    table = pd.read_csv(PIMA)
    table = table.sample(frac=1.0, random_state=0).reset_index(drop=True)
    holdout, rest = table.iloc[:250], table.iloc[250:]
    weak = rest.iloc[:120].copy()
    for column in ("Glucose", "BMI", "Age"):
        weak[column] = weak[column].sample(frac=1.0, random_state=2).to_numpy()
    worse = rest.iloc[120:].copy()
    worse["Outcome"] = worse["Outcome"].sample(frac=1.0, random_state=1).to_numpy()
    for name, frame in (("weak", weak), ("better", rest.iloc[120:]), ("worse", worse)):
        (tmp_path / name).mkdir()
        frame.to_csv(tmp_path / name / "train.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    return holdout


def _weak_champion(sm: Any, tmp_path: Path) -> dict[str, Any]:
    """Endpoint ``pima`` serving version 1 of group ``pima``, made by job ``pima`` trained on
    ``weak/``; that job's best container."""
    request = automl_request(
        "pima",
        str(tmp_path / "weak"),
        str(tmp_path / "out"),
        target="Outcome",
        max_candidates=1,
        algorithms=("linear-learner",),
    )
    request["AutoMLJobObjective"] = {"MetricName": "AUC"}
    sm.create_auto_ml_job_v2(**request)
    best = wait_for(sm, "pima", ("Completed", "Failed"))["BestCandidate"]
    container = best["InferenceContainers"][0]
    keep = ("Image", "ModelDataUrl", "Environment")
    sm.create_model_package_group(ModelPackageGroupName="pima")
    first = sm.create_model_package(
        ModelPackageGroupName="pima",
        InferenceSpecification={"Containers": [{k: container[k] for k in keep}]},
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"AutoMLJobName": "pima"},
    )["ModelPackageArn"]
    sm.create_model(ModelName="pima-v1", PrimaryContainer={"ModelPackageName": first})
    sm.create_endpoint_config(
        EndpointConfigName="pima-v1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "pima-v1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName="pima", EndpointConfigName="pima-v1")
    return dict(container)


def _policy(server: ServiceProcess, tail: str = "") -> Any:
    """``pima``'s policy (or ``tail``: its history) from the service's route."""
    return httpx.get(f"{server.url}/mlpilot/retrain-policies/pima{tail}", timeout=10).json()


def _wait_event(server: ServiceProcess, action: str, timeout: float = 150) -> list[dict[str, Any]]:
    """``pima``'s history once it holds ``action``."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = _policy(server, "/history")["Events"]
        if any(e["action"] == action for e in events):
            return events
        time.sleep(0.25)
    raise AssertionError(f"no {action} in {timeout} s: {events}")


@pytest.mark.slow
def test_a_better_challenger_takes_the_traffic_and_a_worse_one_does_not(tmp_path: Path) -> None:
    """A weak champion (three strong features scrambled) serves as version 1 of a model package
    group; a standing policy sees clean data land under its prefix, and the challenger it
    trains beats the champion on the holdout and bakes as a canary. The service is killed
    there and started again: the champion's config is put back, the round runs again on the
    same file (its trained job scored again) and the challenger takes all traffic (version
    3); the history holds the round and its interruption. (A worse challenger kept out, canaries
    rolled back for errors or latency, and approval gating: the seam tests below.)"""
    holdout = _pima_data(tmp_path)
    server = ServiceProcess(tmp_path / "data").start()
    try:
        sm = server.boto()
        container = _weak_champion(sm, tmp_path)
        holdout_csv = str(tmp_path / "holdout.csv")

        # Round one, by a standing policy: clean data lands under the watched prefix.
        landing = tmp_path / "landing"
        landing.mkdir()
        (policy,) = _cli(
            server,
            "pima",
            "--watch",
            str(landing),
            "--interval",
            "1",
            "--holdout",
            holdout_csv,
            "--canary-seconds",
            "5",
        )
        assert json.loads(policy)["WatchPrefix"] == str(landing)
        (better_csv := landing / "better.csv").write_bytes(
            (tmp_path / "better/train.csv").read_bytes()
        )
        # The service killed while the canary bakes: the endpoint is left on two variants.
        _wait_event(server, "canary")
        in_progress = _policy(server)["RoundInProgress"]
        server.kill()
        assert (in_progress["Step"], in_progress["ChampionEndpointConfig"]) == ("canary", "pima-v1")
        # Started again, it puts the champion's config back and runs the round again.
        server.start()
        sm = server.boto()
        events = _wait_event(server, "decision")
        actions = [e["action"] for e in events]
        cut = events[actions.index("interrupted")]
        assert (cut["step"], cut["restored"], cut["endpoint_config"]) == ("canary", True, "pima-v1")
        again = events[actions.index("interrupted") + 1]
        assert (again["action"], again["files"]) == ("triggered", [str(better_csv)])
        started = [e for e in events if e["action"] == "challenger_started"]
        assert started[1]["job"] == started[0]["job"]  # its trained job scored again
        decisions = [e for e in events if e["action"] == "decision"]
        assert len(decisions) == 1, events
        assert _policy(server)["RoundInProgress"] is None
        won = decisions[0]
        assert won["decision"] == "promoted", won
        assert won["metric"] == "AUC"
        assert won["challenger_score"] > won["champion_score"]
        actions = [e["action"] for e in events]
        assert actions[:3] == ["policy_created", "triggered", "champion"]
        assert str(better_csv) in events[1]["files"]
        # The canary took its share on the way, then the challenger took all the traffic.
        assert actions.index("canary") < actions.index("decision")
        described = sm.describe_endpoint(EndpointName="pima")
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        assert [v["ModelName"] for v in config["ProductionVariants"]] == [won["challenger"]]
        assert [v["VariantName"] for v in config["ProductionVariants"]] == ["AllTraffic"]
        model = sm.describe_model(ModelName=won["challenger"])
        assert model["PrimaryContainer"]["ModelDataUrl"] != container["ModelDataUrl"]
        # The challenger is version 3 of the champion's group, approved as it won; version 2,
        # registered by the attempt the kill cut short, rejected.
        assert model["PrimaryContainer"]["ModelPackageName"] == f"{ARN}:model-package/pima/3"
        versions = sm.list_model_packages(ModelPackageGroupName="pima")["ModelPackageSummaryList"]
        assert [v["ModelApprovalStatus"] for v in versions] == ["Approved", "Rejected", "Approved"]
        challenger_job = won["challenger"].removesuffix("-model")
        tags = sm.list_tags(ResourceArn=f"{ARN}:automl-job/{challenger_job}")["Tags"]
        assert {"Key": "mlpilot:GenerateReports", "Value": "false"} in tags
        # The endpoint answers from the new model: the challenger's own prediction.
        runtime = server.boto("sagemaker-runtime")
        rows = holdout.drop(columns=["Outcome"]).iloc[:20]
        answer = runtime.invoke_endpoint(
            EndpointName="pima", ContentType="text/csv", Body=rows.to_csv(header=False, index=False)
        )
        assert answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-invoked-production-variant"] == (
            "AllTraffic"
        )
        from mlpilot.package import load_model

        expected = load_model(model["PrimaryContainer"]["ModelDataUrl"]).predict(rows)
        got = answer["Body"].read().decode().split()
        assert got == [str(label) for label in expected["predicted_label"]]

        history = [json.loads(line) for line in _cli(server, "history", "pima")]
        assert [e["decision"] for e in history if e["action"] == "decision"] == ["promoted"]
        assert [e["step"] for e in history if e["action"] == "interrupted"] == ["canary"]
    finally:
        server.stop()


class _Inverted:
    """A champion that answers the opposite class: any real model beats it."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def predict_raw(self, rows: pd.DataFrame) -> Any:
        return self._model.predict_raw(rows)[:, ::-1]


class _ScriptedControl(InProcessControl):
    """The real in-process service (registry, models, endpoint configs, SQLite), but for what
    would take minutes or processes: the challenger's job has already completed with
    ``container``, ``UpdateEndpoint`` switches the endpoint's record (after the service's own
    approval check), and the canary's counters show ``errors`` 5XX answers and a p99 model
    latency of ``p99_us`` microseconds."""

    def __init__(
        self, service: Service, container: dict[str, Any], errors: int = 0, p99_us: float = 500.0
    ) -> None:
        super().__init__(service)
        self.container = container
        self.errors = errors
        self.p99_us = p99_us
        self.jobs: set[str] = set()
        self.updates: list[str] = []

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        name = params.get("AutoMLJobName")
        if operation == "CreateAutoMLJobV2":
            self.jobs.add(name)
            return {"AutoMLJobArn": f"{ARN}:automl-job/{name}"}
        if operation == "DescribeAutoMLJobV2" and name in self.jobs:
            best = {"CandidateName": "c1", "InferenceContainers": [self.container]}
            return {"AutoMLJobName": name, "AutoMLJobStatus": "Completed", "BestCandidate": best}
        if operation == "UpdateEndpoint":
            config = self.call(
                "DescribeEndpointConfig", EndpointConfigName=params["EndpointConfigName"]
            )
            try:
                self.service.registry.check_deployable(
                    [v["ModelName"] for v in config["ProductionVariants"]]
                )
            except ServiceError as exc:
                raise RetrainError(f"UpdateEndpoint: {exc.code}: {exc.message}") from None
            record = self.service.store.get_resource("endpoint", params["EndpointName"])
            record["EndpointConfigName"] = config["EndpointConfigName"]
            record["ProductionVariants"] = [
                {"VariantName": v["VariantName"], "CurrentWeight": v["InitialVariantWeight"]}
                for v in config["ProductionVariants"]
            ]
            self.service.store.put_resource("endpoint", params["EndpointName"], record)
            self.updates.append(config["EndpointConfigName"])
            return {"EndpointArn": record["EndpointArn"]}
        return super().call(operation, **params)

    def variant_metrics(self, endpoint: str) -> dict[str, dict[str, Any]]:
        served = self.call("DescribeEndpoint", EndpointName=endpoint)["ProductionVariants"]
        return {
            v["VariantName"]: {
                "Invocations": 5,
                "Invocation5XXErrors": self.errors,
                "ModelLatency": {"p99": self.p99_us},
            }
            for v in served
            if v["VariantName"].startswith("Challenger-")
        }


def _packaged_champion(
    service: Service, churn: helpers_models.TrainedModel, tmp_path: Path, gated: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Endpoint ``churn`` serving version 1 of group ``churn`` (made by job ``churn-job``);
    the champion's container and a challenger's (the same model at another URL)."""
    container = json.loads((churn.job / "job.json").read_text())["BestCandidate"][
        "InferenceContainers"
    ][0]
    keep = ("Image", "ModelDataUrl", "Environment")
    container = {k: container[k] for k in keep}
    _job_record(service, "churn-job", container)
    tags = [{"Key": "mlpilot:RequireApproval", "Value": "true"}] if gated else []
    service.call("CreateModelPackageGroup", {"ModelPackageGroupName": "churn", "Tags": tags})
    first = service.call(
        "CreateModelPackage",
        {
            "ModelPackageGroupName": "churn",
            "InferenceSpecification": {"Containers": [container]},
            "ModelApprovalStatus": "Approved",
            "CustomerMetadataProperties": {"AutoMLJobName": "churn-job"},
        },
    )["ModelPackageArn"]
    service.call(
        "CreateModel", {"ModelName": "churn-v1", "PrimaryContainer": {"ModelPackageName": first}}
    )
    _serve(service, "churn", "churn-1", "churn-v1")
    moved = tmp_path / "challenger.tar.gz"
    moved.write_bytes(churn.archive.read_bytes())
    return container, {**container, "ModelDataUrl": str(moved)}


def _round(control: _ScriptedControl, tmp_path: Path, inverted_url: str, **kwargs: Any) -> Any:
    from mlpilot.package import load_model
    from mlpilot.service import CanarySettings, retrain_endpoint

    table = pd.read_csv(TELCO, dtype=str, keep_default_na=False)
    (tmp_path / "new").mkdir(exist_ok=True)
    table.iloc[700:760].to_csv(tmp_path / "new" / "part.csv", index=False)

    def load(url: str) -> Any:
        model = load_model(url)
        return _Inverted(model) if url == inverted_url else model

    return retrain_endpoint(
        control,
        "churn",
        data=str(tmp_path / "new"),
        holdout=table.iloc[500:700],
        canary=CanarySettings(
            weight=0.2,
            seconds=kwargs.pop("seconds", 0.0),
            max_latency_ms=kwargs.pop("max_latency_ms", None),
        ),
        load=load,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("counters", "limit", "why"),
    [
        ({"errors": 2}, None, "2 of its 5 invocation(s) failed (5XX)"),
        ({"p99_us": 40_000.0}, 10.0, "its p99 model latency 40.0 ms passed 10 ms"),
    ],
    ids=["errors", "latency"],
)
def test_a_failing_canary_is_rolled_back_and_its_version_rejected(
    service: Service,
    churn: helpers_models.TrainedModel,
    tmp_path: Path,
    counters: dict[str, float],
    limit: float | None,
    why: str,
) -> None:
    champion, challenger = _packaged_champion(service, churn, tmp_path, gated=False)
    control = _ScriptedControl(service, challenger, **counters)  # type: ignore[arg-type]
    outcome = _round(control, tmp_path, champion["ModelDataUrl"], seconds=1.0, max_latency_ms=limit)
    assert outcome.decision == "rolled_back", outcome.reason
    assert why in outcome.reason
    assert outcome.challenger_score > outcome.champion_score
    # The canary's config, then the champion's own again.
    assert len(control.updates) == 2 and control.updates[0].endswith("-canary")
    assert control.updates[1] == "churn-1"
    endpoint = service.call("DescribeEndpoint", {"EndpointName": "churn"})
    assert endpoint["EndpointConfigName"] == "churn-1"
    version = service.call(
        "DescribeModelPackage", {"ModelPackageName": f"{ARN}:model-package/churn/2"}
    )
    assert version["ModelApprovalStatus"] == "Rejected"
    assert [s["action"] for s in outcome.steps][-3:] == ["registered", "canary", "rolled_back"]
    assert (outcome.holdout_rows, outcome.captured_rows) == (200, 0)
    assert "200 holdout rows alone (no ground truth given" in outcome.reason


def test_a_worse_challenger_is_rejected_and_the_endpoint_left_alone(
    service: Service, churn: helpers_models.TrainedModel, tmp_path: Path
) -> None:
    _, challenger = _packaged_champion(service, churn, tmp_path, gated=False)
    control = _ScriptedControl(service, challenger)
    outcome = _round(control, tmp_path, challenger["ModelDataUrl"])
    assert outcome.decision == "kept", outcome.reason
    assert outcome.challenger_score < outcome.champion_score
    assert control.updates == []
    endpoint = service.call("DescribeEndpoint", {"EndpointName": "churn"})
    assert endpoint["EndpointConfigName"] == "churn-1"
    version = service.call(
        "DescribeModelPackage", {"ModelPackageName": f"{ARN}:model-package/churn/2"}
    )
    assert version["ModelApprovalStatus"] == "Rejected"


@pytest.mark.parametrize("rule", ["group tag", "service"])
def test_where_approval_is_required_a_winner_waits_for_it_then_promote_deploys_it(
    rule: str, churn: helpers_models.TrainedModel, tmp_path: Path
) -> None:
    from mlpilot.service import CanarySettings, promote_version

    config = ServiceConfig(data_dir=tmp_path / "data", require_approved_packages=rule == "service")
    service = Service(config)
    try:
        champion, challenger = _packaged_champion(
            service, churn, tmp_path, gated=rule == "group tag"
        )
        control = _ScriptedControl(service, challenger)
        outcome = _round(control, tmp_path, champion["ModelDataUrl"])
        version = f"{ARN}:model-package/churn/2"
        assert outcome.decision == "pending_approval", outcome.reason
        assert version in outcome.reason
        assert ("RequireApproval" if rule == "group tag" else "--require-approved") in (
            outcome.reason
        )
        assert control.updates == []  # the endpoint untouched
        described = service.call("DescribeModelPackage", {"ModelPackageName": version})
        assert described["ModelApprovalStatus"] == "PendingManualApproval"
        assert json.loads(outcome.line())["decision"] == "pending_approval"

        with pytest.raises(RetrainError, match="is PendingManualApproval: approve it"):
            promote_version(control, "churn", version)
        assert control.updates == []
        service.call(
            "UpdateModelPackage", {"ModelPackageArn": version, "ModelApprovalStatus": "Approved"}
        )
        promoted = promote_version(control, "churn", version, canary=CanarySettings(seconds=0))
        assert promoted.decision == "promoted", promoted.reason
        assert promoted.challenger == outcome.challenger  # the model its round made
        served = service.call("DescribeEndpoint", {"EndpointName": "churn"})
        assert served["EndpointConfigName"] == control.updates[-1]
        assert control.updates[0].endswith("-canary") and control.updates[-1].endswith("-all")
        final = service.call(
            "DescribeEndpointConfig", {"EndpointConfigName": served["EndpointConfigName"]}
        )
        assert [(v["VariantName"], v["ModelName"]) for v in final["ProductionVariants"]] == [
            ("AllTraffic", outcome.challenger)
        ]
        with pytest.raises(RetrainError, match="already serves"):
            promote_version(control, "churn", version)
    finally:
        service.store.close()


def test_rounds_run_by_a_client_are_logged_with_the_policies(
    service: Service, churn: helpers_models.TrainedModel, tmp_path: Path
) -> None:
    _packaged_champion(service, churn, tmp_path, gated=False)
    with pytest.raises(ServiceError, match="Could not find endpoint"):
        service.policies.record("nowhere", {"Events": [{"action": "triggered"}]})
    for body in ({}, {"Events": [{"action": "policy_deleted"}]}, {"Events": ["x"]}):
        with pytest.raises(ServiceError, match=r"action|Events"):
            service.policies.record("churn", body)
    assert service.policies.history("churn") == []
    service.policies.record(
        "churn",
        {"Events": [{"action": "triggered", "trigger": "command", "time": 1.0}]},
    )
    service.policies.record("churn", {"Events": [{"action": "decision", "decision": "kept"}]})
    events = service.policies.history("churn")
    assert [(e["action"], e["source"]) for e in events] == [
        ("triggered", "command"),
        ("decision", "command"),
    ]
    assert events[0]["time"] > 1.0  # the service's clock, not the client's
    assert events[1]["decision"] == "kept"


def test_recent_captured_and_labelled_traffic_is_scored_with_the_holdout(
    service: Service, churn: helpers_models.TrainedModel, tmp_path: Path
) -> None:
    champion, challenger = _packaged_champion(service, churn, tmp_path, gated=False)
    capture = tmp_path / "capture"
    _serve(
        service,
        "churn",
        "churn-captured",
        "churn-v1",
        DataCaptureConfig={
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": str(capture),
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    )
    table = pd.read_csv(TELCO, dtype=str, keep_default_na=False).iloc[760:800]
    now = float(int(time.time()))  # whole seconds, as inferenceTime records them
    labels = []
    # 30 recent invocations (20 of them labelled), 10 labelled ones from eight days ago.
    for i, (_, row) in enumerate(table.iterrows()):
        when = now - 60 - i if i < 30 else now - 8 * 86400
        folder = capture / "churn" / "AllTraffic" / time.strftime("%Y/%m/%d/%H", time.gmtime(when))
        folder.mkdir(parents=True, exist_ok=True)
        body = helpers_models.csv_lines(pd.DataFrame([row[churn.model.input_columns]]))
        record = {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": body.decode(),
                    "encoding": "CSV",
                }
            },
            "eventMetadata": {
                "eventId": f"e{i}",
                "inferenceId": f"order-{i}",
                "inferenceTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
            },
            "eventVersion": "0",
        }
        with (folder / f"{i:02d}.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if i >= 10:
            truth = {"data": row["Churn"], "encoding": "CSV"}
            labels.append({"groundTruthData": truth, "eventMetadata": {"eventId": f"order-{i}"}})
    truth_file = tmp_path / "ground-truth.jsonl"
    truth_file.write_text("".join(json.dumps(label) + "\n" for label in labels))

    control = _ScriptedControl(service, challenger)
    outcome = _round(control, tmp_path, champion["ModelDataUrl"], ground_truth=str(truth_file))
    assert outcome.decision == "promoted", outcome.reason
    assert (outcome.holdout_rows, outcome.captured_rows) == (200, 20)
    assert "200 holdout rows and 20 captured rows" in outcome.reason
    line = json.loads(outcome.line())
    assert (line["holdout_rows"], line["captured_rows"]) == (200, 20)
    evaluated = next(s for s in outcome.steps if s["action"] == "evaluated")
    assert evaluated["captured_rows"] == 20

    # A narrower window holds fewer of them; one before any: the holdout alone, said so.
    from mlpilot.package import load_model
    from mlpilot.service import captured_rows, find_champion

    found = find_champion(control, "churn")
    model = load_model(champion["ModelDataUrl"])
    rows, _ = captured_rows(control, found, model, str(truth_file), 60 + 15.5, now=now)
    assert len(rows) == 6  # order-10 … order-15, captured 60-75 s before now
    assert list(rows.columns) == [*model.input_columns, "Churn"]
    rows, why = captured_rows(control, found, model, str(truth_file), 30, now=now)
    assert rows.empty and "has a label in" in why


class _Killed(BaseException):
    """The service's process dying: nothing after it runs, not even the round's handlers."""


class _DyingControl(_ScriptedControl):
    """A scripted control whose process dies while the first ``kills`` canaries bake."""

    def __init__(self, service: Service, container: dict[str, Any], kills: int) -> None:
        super().__init__(service, container)
        self.kills = kills

    def variant_metrics(self, endpoint: str) -> dict[str, dict[str, Any]]:
        if self.kills:
            self.kills -= 1
            raise _Killed
        return super().variant_metrics(endpoint)


def _policy_dies_mid_canary(
    tmp_path: Path, churn: helpers_models.TrainedModel, monkeypatch: pytest.MonkeyPatch, kills: int
) -> tuple[_DyingControl, Path]:
    """Endpoint ``churn`` (version 1 of group ``churn``, a champion any model beats) with a
    standing policy whose round on new data is cut short ``kills`` times while its canary
    bakes: the control, and the file the round trains on."""
    import mlpilot.package

    data = tmp_path / "data"
    service = Service(ServiceConfig(data_dir=data))
    champion, challenger = _packaged_champion(service, churn, tmp_path, gated=False)
    real_load = mlpilot.package.load_model
    monkeypatch.setattr(
        mlpilot.package,
        "load_model",
        lambda url: (
            _Inverted(real_load(url)) if url == champion["ModelDataUrl"] else real_load(url)
        ),
    )
    table = pd.read_csv(TELCO, dtype=str, keep_default_na=False)
    table.iloc[500:700].to_csv(tmp_path / "holdout.csv", index=False)
    landing = tmp_path / "landing"
    landing.mkdir()
    control = _DyingControl(service, challenger, kills)
    service.policies.control = control
    service.policies.put(
        "churn",
        {"WatchPrefix": str(landing), "Holdout": str(tmp_path / "holdout.csv"), "CanarySeconds": 0},
    )
    table.iloc[700:760].to_csv(landing / "new.csv", index=False)
    with pytest.raises(_Killed):
        service.policies.tick("churn", now=time.time() + 3600)
    endpoint = service.call("DescribeEndpoint", {"EndpointName": "churn"})
    assert endpoint["EndpointConfigName"].endswith("-canary")  # two variants, left behind
    in_progress = service.policies.get("churn")["RoundInProgress"]
    assert in_progress["Step"] == "canary"
    assert in_progress["Files"] == [str(landing / "new.csv")]
    assert in_progress["ChampionEndpointConfig"] == "churn-1"
    service.store.close()
    return control, landing / "new.csv"


def _restarted(control: _DyingControl, data: Path) -> Service:
    """The service started again on the same data folder, its rounds through ``control``."""
    service = Service(ServiceConfig(data_dir=data))
    control.service = service
    service.policies.control = control
    return service


def test_a_round_cut_short_mid_canary_is_rolled_back_and_run_again_on_its_files(
    tmp_path: Path, churn: helpers_models.TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    control, new_file = _policy_dies_mid_canary(tmp_path, churn, monkeypatch, kills=1)
    service = _restarted(control, tmp_path / "data")
    try:
        (outcome,) = service.policies.recover()
        assert outcome.decision == "promoted", outcome.reason
        # The canary's config, the champion's put back, then the round's own canary and all.
        assert control.updates[1] == "churn-1"
        assert "-canary" in control.updates[2] and control.updates[3].endswith("-all")
        events = service.policies.history("churn")
        actions = [e["action"] for e in events]
        assert actions[actions.index("interrupted") :] == [
            "interrupted",
            "triggered",
            "champion",
            "challenger_started",
            "evaluated",
            "registered",
            "canary",
            "promoted",
            "decision",
        ]
        cut, again = events[actions.index("interrupted") :][:2]
        assert (cut["step"], cut["attempt"], cut["restored"]) == ("canary", 1, True)
        assert again["files"] == [str(new_file)] and again["attempt"] == 2
        # The challenger job it had already trained is scored again, not trained again.
        started = [e for e in events if e["action"] == "challenger_started"]
        assert started[1]["job"] == started[0]["job"] and started[1]["resumed"] is True
        assert len(control.jobs) == 1
        # The version of the cut-short attempt rejected; the new one serves, alone.
        versions = [
            service.call(
                "DescribeModelPackage", {"ModelPackageName": f"{ARN}:model-package/churn/{n}"}
            )
            for n in (2, 3)
        ]
        assert [v["ModelApprovalStatus"] for v in versions] == ["Rejected", "Approved"]
        assert "cut short by a restart at step canary" in versions[0]["ApprovalDescription"]
        served = service.call("DescribeEndpoint", {"EndpointName": "churn"})
        final = service.call(
            "DescribeEndpointConfig", {"EndpointConfigName": served["EndpointConfigName"]}
        )
        assert [v["ModelName"] for v in final["ProductionVariants"]] == [outcome.challenger]
        policy = service.policies.get("churn")
        assert policy["RoundInProgress"] is None
        assert policy["LastRound"]["decision"] == "promoted"
        assert service.policies.recover() == []  # nothing left to recover
    finally:
        service.store.close()


def test_a_round_cut_short_twice_fails_instead_of_running_again(
    tmp_path: Path, churn: helpers_models.TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    control, new_file = _policy_dies_mid_canary(tmp_path, churn, monkeypatch, kills=2)
    control.jobs.clear()  # the challenger's job died with the service: a new one is trained
    service = _restarted(control, tmp_path / "data")
    with pytest.raises(_Killed):
        service.policies.recover()
    service.store.close()
    service = _restarted(control, tmp_path / "data")
    try:
        assert service.policies.recover() == []
        events = service.policies.history("churn")
        cuts = [e for e in events if e["action"] == "interrupted"]
        assert [(e["step"], e["attempt"]) for e in cuts] == [("canary", 1), ("canary", 2)]
        started = [e for e in events if e["action"] == "challenger_started"]
        assert len(started) == 2 and "resumed" not in started[1]
        (decision,) = [e for e in events if e["action"] == "decision"]
        assert decision["decision"] == "failed"
        assert "cut short by a restart of the service 2 times" in decision["reason"]
        assert events[-1]["action"] == "decision"
        served = service.call("DescribeEndpoint", {"EndpointName": "churn"})
        assert served["EndpointConfigName"] == "churn-1"
        assert service.policies.get("churn")["RoundInProgress"] is None
        # Its files count as seen: the policy does not train on them a third time.
        assert service.policies.tick("churn", now=time.time() + 7200) is None
        assert cuts[0]["files"] == cuts[1]["files"] == [str(new_file)]
    finally:
        service.store.close()
