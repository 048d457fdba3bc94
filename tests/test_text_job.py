"""Text classification: the job's config (CLI, API shapes), its text features (TF-IDF of words
and characters, sentence embeddings), the embeddings handed to the workers with the prepared
data, and a whole job on a slice of the sentiment sentences through its package."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from helpers_data import SENTIMENT
from mlpilot.config import JobConfig, TextClassificationConfig
from mlpilot.errors import ConfigError
from mlpilot.features import (
    DEFAULT_ENCODER,
    FeaturePipeline,
    PreprocessingOptions,
    TextColumn,
    encoder_unavailable,
    remember_embeddings,
)
from mlpilot.features import _embed as embed
from mlpilot.profile import FeatureSpecification, build_profile
from mlpilot.search import load_prepared, write_prepared

HAS_ENCODER = encoder_unavailable(DEFAULT_ENCODER) is None
needs_encoder = pytest.mark.skipif(not HAS_ENCODER, reason="the text encoder is not installed")


def sentences(n: int = 400) -> pd.DataFrame:
    return pd.read_csv(SENTIMENT, dtype=str, keep_default_na=False).head(n)


def fake_vectors(texts: list[str], dim: int = 8) -> np.ndarray:
    """Deterministic stand-ins for an encoder's vectors (seeded by each text's CRC-32)."""
    rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=dim) for t in texts]
    return np.asarray(rows, dtype=np.float32)


@pytest.fixture
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """An encoder memory of this test's own, and no encoder to load behind it."""
    monkeypatch.setattr(embed, "_memory", {})

    def no_model(name: str) -> Any:
        raise AssertionError(f"the encoder {name} was loaded")

    monkeypatch.setattr(embed.SentenceEncoder, "get", classmethod(lambda cls, name: no_model(name)))


# -- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"content_column": ""}, "needs its content column"),
        ({"content_column": "label"}, "must differ"),
        ({"problem_type": "Regression"}, "not a Regression"),
        ({"text_encoder": "bert-large"}, "Unknown text encoder 'bert-large'"),
    ],
)
def test_a_text_config_names_what_is_wrong(values: dict[str, Any], message: str) -> None:
    settings = {"target": "label", "content_column": "sentence", **values}
    with pytest.raises(ConfigError, match=message):
        TextClassificationConfig(**settings)


def test_a_v2_request_makes_a_text_job_that_reads_only_its_content_column() -> None:
    request = {
        "AutoMLJobName": "reviews",
        "AutoMLJobInputDataConfig": [
            {
                "ChannelType": "training",
                "ContentType": "text/csv;header=present",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/d/train"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "/out"},
        "AutoMLProblemTypeConfig": {
            "TextClassificationJobConfig": {
                "ContentColumn": "review",
                "TargetLabelColumn": "label",
                "CompletionCriteria": {"MaxAutoMLJobRuntimeInSeconds": 300},
            }
        },
        "RoleArn": "arn:aws:iam::123456789012:role/x",
    }
    config = JobConfig.from_request(request)
    problem = config.problem
    assert isinstance(problem, TextClassificationConfig)
    assert (problem.content_column, problem.target, config.max_runtime) == ("review", "label", 300)
    assert problem.feature_specification == FeatureSpecification(("review",), {"review": "text"})
    body = config.to_request()["AutoMLProblemTypeConfig"]["TextClassificationJobConfig"]
    assert body["ContentColumn"] == "review" and body["TargetLabelColumn"] == "label"
    again = JobConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert isinstance(again.problem, TextClassificationConfig)
    assert again.problem.content_column == "review"
    assert again.problem.text_encoder == DEFAULT_ENCODER


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--problem-type", "TextClassification"], "needs --content-column"),
        (["--content-column", "sentence"], "--content-column goes with --problem-type"),
        (
            ["--problem-type", "text", "--content-column", "sentence", "--text-encoder", "x"],
            "Unknown text encoder 'x'",
        ),
    ],
)
def test_the_cli_names_a_text_jobs_missing_or_misplaced_options(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    from typer.testing import CliRunner

    from mlpilot.cli.main import app

    sentences(20).to_csv(tmp_path / "s.csv", index=False)
    args = ["run", str(tmp_path / "s.csv"), "--target", "label", "-o", str(tmp_path / "o")]
    result = CliRunner().invoke(app, [*args, *flags])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def text_session(tmp_path: Path, budget: float | None = 300, **values: Any) -> Any:
    from types import SimpleNamespace

    from mlpilot.runtime import Budget

    problem = TextClassificationConfig(
        target="label", content_column="sentence", **{"text_encoder": None, **values}
    )
    config = JobConfig(
        name="t", training_data=str(tmp_path), output_path=str(tmp_path / "o"), problem=problem
    )
    return SimpleNamespace(config=config, budget=Budget(budget))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns=["sentence"]), "Content column 'sentence' is not in the data"),
        (lambda t: t.assign(sentence=""), "is empty in every row"),
        (
            lambda t: t.assign(label=[str(i * 1.37) for i in range(len(t))]),
            "must hold classes",
        ),
    ],
)
def test_a_text_job_names_a_content_or_label_column_it_cannot_use(
    tmp_path: Path, change: Any, message: str
) -> None:
    from mlpilot.errors import DataError
    from mlpilot.problems.text import TextClassificationProblem

    problem = TextClassificationProblem()
    session = text_session(tmp_path)
    spec = session.config.problem
    table = change(sentences(100)[["sentence", "label", "source"]])
    with pytest.raises((ConfigError, DataError), match=message):
        problem.check_columns(spec, table)
        profile = build_profile(table, "label", feature_spec=spec.load_feature_specification())
        problem.text_features(session, table, profile)


def test_text_features_turn_on_character_ngrams_and_say_why_embeddings_are_left_out(
    tmp_path: Path,
) -> None:
    from mlpilot.problems.text import TextClassificationProblem

    table = sentences(100)[["sentence", "label"]]
    session = text_session(tmp_path)
    spec = session.config.problem
    profile = build_profile(table, "label", feature_spec=spec.load_feature_specification())
    assert TextClassificationProblem().text_features(session, table, profile) is None
    column = next(c for c in profile.columns if c.name == "sentence")
    assert column.text_char_ngrams and column.text_embedding is None
    assert "text: TF-IDF only (no sentence encoder was asked for)" in profile.notes


@needs_encoder
def test_embeddings_over_their_share_of_the_budget_are_left_out_and_the_note_says_so(
    tmp_path: Path,
) -> None:
    from mlpilot.problems.text import TextClassificationProblem

    table = sentences(300)[["sentence", "label"]]
    session = text_session(tmp_path, budget=1, text_encoder=DEFAULT_ENCODER)
    spec = session.config.problem
    profile = build_profile(table, "label", feature_spec=spec.load_feature_specification())
    assert TextClassificationProblem().text_features(session, table, profile) is None
    assert next(c for c in profile.columns if c.name == "sentence").text_embedding is None
    (note,) = [n for n in profile.notes if n.startswith("text:")]
    assert "would take about" in note and "over 30% of the 1 s budget" in note


# -- features -------------------------------------------------------------------------------
@pytest.mark.parametrize("svd", [0, 16])
def test_char_ngrams_and_embeddings_join_the_tfidf_block_in_both_paths(
    fresh_memory: None, svd: int
) -> None:
    frame = sentences(300)[["sentence"]]
    texts = frame["sentence"].tolist()
    remember_embeddings("all-MiniLM-L6-v2", texts, fake_vectors(texts))
    words = TextColumn(2_000, svd, 0).fit(frame)
    full = TextColumn(2_000, svd, 0, char_ngrams=True, embedding="all-MiniLM-L6-v2").fit(frame)
    plain = words.transform(frame)
    out = full.transform(frame)
    width = out.shape[1]
    names = full.get_feature_names_out()
    assert len(names) == width and names[-1] == "sentence__emb7"
    if svd:
        assert width == plain.shape[1] + 8
    else:
        chars = [n for n in names if n.startswith("sentence__c:")]
        assert chars and width == plain.shape[1] + len(chars) + 8
    # The embeddings are the last columns, row for row.
    dense = out.toarray() if hasattr(out, "toarray") else out
    np.testing.assert_allclose(dense[:, -8:], fake_vectors(texts), rtol=1e-6)
    # The few-row path (serving) gives what scikit-learn's path gives.
    few = full.transform_texts(np.asarray(texts[:5], dtype=object))
    few = few.toarray() if hasattr(few, "toarray") else few
    np.testing.assert_allclose(few, dense[:5], rtol=1e-5, atol=1e-6)


def test_prepared_embeddings_reach_a_worker_without_loading_the_encoder(
    tmp_path: Path, fresh_memory: None
) -> None:
    table = sentences(200)[["sentence", "label"]]
    spec = FeatureSpecification(("sentence",), {"sentence": "text"})
    profile = build_profile(table, "label", feature_spec=spec)
    column = next(c for c in profile.columns if c.name == "sentence")
    column.text_char_ngrams, column.text_embedding = True, "all-MiniLM-L6-v2"
    texts = table["sentence"].tolist()
    vectors = fake_vectors(texts)
    folds = np.arange(len(table)) % 5
    write_prepared(
        tmp_path, table, profile, folds, embeddings={"sentence": ("all-MiniLM-L6-v2", vectors)}
    )
    data = load_prepared(str(tmp_path))  # a worker: its memory now holds the job's vectors
    options = PreprocessingOptions(text_svd=0)
    pipeline = FeaturePipeline.from_profile(data.profile, options)
    X = pipeline.fit_transform_clean(data.clean, data.y)
    np.testing.assert_allclose(X.toarray()[:, -8:], vectors, rtol=1e-6)
    # A second write without embeddings leaves none behind.
    write_prepared(tmp_path, table, profile, folds)
    assert not (tmp_path / "embeddings" / "index.json").exists()


@needs_encoder
def test_the_packaged_encoder_embeds_offline_and_sees_meaning() -> None:
    vectors = embed.encode(
        DEFAULT_ENCODER,
        ["The food was delicious.", "What a tasty meal!", "My phone's battery died."],
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


# -- a whole job, through the service --------------------------------------------------------
@pytest.mark.slow
@needs_encoder
def test_a_text_job_through_the_api_beats_the_majority_and_its_endpoint_reads_documents(
    tmp_path: Path,
) -> None:
    from helpers_service import ROLE, ServiceProcess, wait_for
    from mlpilot import load_model

    folder = tmp_path / "in"
    folder.mkdir()
    # 400 sentences: their embeddings fit the 30 % share of 120 s even at 90 ms each (busy
    # cores; 5-10 ms on quiet ones).
    sentences(400)[["sentence", "label", "source"]].to_csv(folder / "train.csv", index=False)
    server = ServiceProcess(tmp_path / "data").start()
    try:
        sm, runtime = server.boto(), server.boto("sagemaker-runtime")
        sm.create_auto_ml_job_v2(
            AutoMLJobName="sentences",
            AutoMLJobInputDataConfig=[
                {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(folder)}}}
            ],
            OutputDataConfig={"S3OutputPath": str(tmp_path / "out")},
            AutoMLProblemTypeConfig={
                "TextClassificationJobConfig": {
                    "ContentColumn": "sentence",
                    "TargetLabelColumn": "label",
                    "CompletionCriteria": {
                        "MaxCandidates": 3,
                        "MaxAutoMLJobRuntimeInSeconds": 120,
                    },
                }
            },
            ModelDeployConfig={"AutoGenerateEndpointName": True},
            RoleArn=ROLE,
            Tags=[{"Key": "mlpilot:GenerateReports", "Value": "false"}],
        )
        record = wait_for(sm, "sentences", ("Completed", "Failed", "Stopped"), timeout=240)
        assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
        assert record["AutoMLProblemTypeConfigName"] == "TextClassification"
        body = record["AutoMLProblemTypeConfig"]["TextClassificationJobConfig"]
        assert (body["ContentColumn"], body["TargetLabelColumn"]) == ("sentence", "label")
        assert record["ResolvedAttributes"]["AutoMLJobObjective"]["MetricName"] == "Accuracy"
        best = record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]["Value"]
        # Balanced labels: the majority scores 0.5 (TF-IDF + logistic regression about 0.75
        # on 400 sentences).
        assert best >= 0.75, best
        # The endpoint ModelDeployConfig made: a quoted CSV document, or a JSON record.
        endpoint = record["ModelDeployResult"]["EndpointName"]
        for payload, content_type in [
            (b'"Great phone, works well, I love it"\n', "text/csv"),
            (b'{"sentence": "Great phone, works well, I love it"}', "application/json"),
        ]:
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint,
                ContentType=content_type,
                Accept="application/json",
                Body=payload,
            )
            predictions = json.loads(answer["Body"].read())["predictions"]
            assert str(predictions[0]["predicted_label"]) == "1"
    finally:
        server.stop()
    # The job's own files: only the content column was a feature, read as text.
    job = tmp_path / "out" / "sentences"
    record = json.loads((job / "job.json").read_text())
    profile = json.loads(Path(record["Mlpilot"]["Profile"]["Location"]).read_text())
    columns = {c["name"]: c for c in profile["columns"]}
    assert columns["source"]["kind"] == "drop"
    assert columns["sentence"]["text_char_ngrams"] is True
    assert columns["sentence"]["text_embedding"] == DEFAULT_ENCODER
    # New documents, never seen: the package encodes them itself.
    model = load_model(job)
    new = pd.DataFrame(
        {"sentence": ["Absolutely wonderful, I loved every minute.", "Broke after a day. Awful."]}
    )
    answer = model.predict(new, probabilities=True)
    assert list(answer["predicted_label"].astype(str)) == ["1", "0"]
