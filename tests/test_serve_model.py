"""``mlpilot serve-model``: a real container process on 127.0.0.1 answering /ping,
/invocations and /execution-parameters exactly as the package predicts; model sources (folder,
job, archive, file://, s3://); clean shutdown; one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

import helpers_models
from conftest import S3Server
from helpers_models import TrainedModel, csv_lines
from mlpilot.cli.main import app
from mlpilot.errors import JobNotFoundError, ModelPackageError
from mlpilot.serving import resolve_model

# Left out of `make test-fast`: serving containers in subprocesses.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def churn(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return helpers_models.churn_model(tmp_path_factory)


class Container:
    """A ``serve-model`` subprocess; ``url`` once it answers /ping."""

    def __init__(
        self,
        args: list[str],
        workdir: Path,
        env: dict[str, str] | None = None,
        *,
        free_port: bool = True,
    ) -> None:
        self.port_file = workdir / f"port-{time.monotonic_ns()}"
        self.log = workdir / f"{self.port_file.name}.log"
        command = [sys.executable, "-m", "mlpilot.cli.main", "serve-model", *args]
        if free_port:
            command += ["--port", "0"]
        command += ["--port-file", str(self.port_file)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        self.url = self._wait()

    def _wait(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve-model exited: {self.log.read_text()}")
            if self.port_file.exists():
                url = f"http://127.0.0.1:{self.port_file.read_text().strip()}"
                try:
                    if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                        return url
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"serve-model did not answer /ping: {self.log.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@pytest.fixture(scope="module")
def container(churn: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """The churn package's model.tar.gz served with two content keys."""
    workdir = tmp_path_factory.mktemp("serve")
    served = Container(
        [
            str(churn.archive),
            "--env",
            "SAGEMAKER_INFERENCE_OUTPUT=predicted_label,probability",
            "--cache-dir",
            str(workdir / "cache"),
        ],
        workdir,
    )
    yield served
    served.stop()


def post(
    url: str, body: bytes, content_type: str | None = "text/csv", **headers: str
) -> httpx.Response:
    if content_type:
        headers["Content-Type"] = content_type
    return httpx.post(f"{url}/invocations", content=body, headers=headers, timeout=30)


def test_ping_and_execution_parameters(container: Container) -> None:
    response = httpx.get(f"{container.url}/ping")
    assert response.status_code == 200 and response.content == b""
    parameters = httpx.get(f"{container.url}/execution-parameters").json()
    assert parameters["BatchStrategy"] == "MULTI_RECORD" and parameters["MaxPayloadInMB"] == 6
    assert parameters["MaxConcurrentTransforms"] >= 1
    assert httpx.get(f"{container.url}/invocations").status_code == 405


def test_predictions_equal_the_package(container: Container, churn: TrainedModel) -> None:
    expected = churn.model.predict(churn.rows.iloc[:30])
    with httpx.Client() as client:  # one kept-alive connection, row by row
        for i in range(10):
            response = client.post(
                f"{container.url}/invocations",
                content=churn.csv_body(i, i + 1),
                headers={"Content-Type": "text/csv", "Accept": "text/csv"},
            )
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "text/csv"
            label, probability = response.text.strip().split(",")
            assert label == expected["predicted_label"].iloc[i]
            assert float(probability) == pytest.approx(expected["probability"].iloc[i])
    response = post(container.url, churn.csv_body(0, 30), Accept="application/json")
    assert response.headers["content-type"] == "application/json"
    predictions = pd.DataFrame(response.json()["predictions"])
    assert list(predictions["predicted_label"]) == list(expected["predicted_label"])
    assert predictions["probability"].to_numpy() == pytest.approx(
        expected["probability"].to_numpy()
    )


def test_missing_accept_uses_the_default(container: Container, churn: TrainedModel) -> None:
    response = post(container.url, churn.csv_body(0, 2), Accept="*/*")
    assert response.headers["content-type"] == "text/csv"
    assert len(response.text.splitlines()) == 2


def test_refusals_keep_their_status(container: Container, churn: TrainedModel) -> None:
    cases = [
        (post(container.url, b"42,12,65.30,783.60,Month-to-month,Electronic check"), 400, "got 6"),
        (post(container.url, b""), 400, "empty"),
        (post(container.url, churn.csv_body(), "application/x-image"), 415, "Content-Type"),
        (post(container.url, churn.csv_body(), Accept="image/png"), 406, "image/png"),
        (post(container.url, b"x" * 6_291_457), 413, "6,291,456"),
    ]
    for response, status, fragment in cases:
        assert response.status_code == status, response.text
        assert fragment in response.text
    # The container stays healthy after refusing.
    assert httpx.get(f"{container.url}/ping").status_code == 200


def test_chunked_upload_over_the_limit(container: Container) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"1" * 2**20

    response = httpx.post(
        f"{container.url}/invocations", content=chunks(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 413


def test_sigterm_stops_cleanly(churn: TrainedModel, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    served = Container(
        [str(churn.package)], tmp_path, env={"SAGEMAKER_BIND_TO_PORT": str(port)}, free_port=False
    )
    assert served.url.endswith(f":{port}")  # SAGEMAKER_BIND_TO_PORT when --port is not given
    assert served.stop() == 0  # exits cleanly on SIGTERM (stop() waits for it, then kills)
    assert not served.port_file.exists()
    assert "Serving" in served.log.read_text() and "Traceback" not in served.log.read_text()


def test_model_from_s3(churn: TrainedModel, s3: S3Server, tmp_path: Path) -> None:
    uri = s3.put("models/churn/model.tar.gz", churn.archive.read_bytes())
    cache = tmp_path / "cache"
    served = Container([uri, "--cache-dir", str(cache)], tmp_path)
    try:
        response = post(served.url, churn.csv_body(0, 3))
        assert response.text.splitlines() == list(
            churn.model.predict(churn.rows.iloc[:3])["predicted_label"]
        )
    finally:
        served.stop()
    # The same object again comes from the cache; a prefix holding model.tar.gz works too.
    assert resolve_model(uri, cache_dir=cache) == resolve_model(
        s3.uri("models/churn/"), cache_dir=cache
    )
    assert len(list(cache.iterdir())) == 1


def test_model_sources(churn: TrainedModel, tmp_path: Path) -> None:
    job = churn.job
    assert (job / "job.json").exists()
    cache = tmp_path / "cache"
    assert resolve_model(churn.package) == churn.package
    assert resolve_model(f"file://{churn.package}") == churn.package
    assert resolve_model(job) == churn.package  # a job folder: its best model
    unpacked = resolve_model(churn.archive, cache_dir=cache)
    assert (unpacked / "mlpilot-model.json").exists() and unpacked.parent == cache
    opt_ml_model = tmp_path / "opt-ml-model"
    opt_ml_model.mkdir()
    (opt_ml_model / "model.tar.gz").write_bytes(churn.archive.read_bytes())
    inside = resolve_model(opt_ml_model, cache_dir=cache)  # a folder holding model.tar.gz
    assert (inside / "mlpilot-model.json").exists() and inside.parent == cache
    assert resolve_model(churn.archive, cache_dir=cache) == unpacked  # unpacked once
    with pytest.raises(JobNotFoundError, match="No model at"):
        resolve_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelPackageError, match="not a model package"):
        resolve_model(tmp_path / "empty")
    (tmp_path / "broken.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(ModelPackageError, match="not a readable model archive"):
        resolve_model(tmp_path / "broken.tar.gz", cache_dir=cache)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "No model at"),
        (["{package}", "--env", "NOEQUALS"], "--env expects NAME=VALUE"),
        (["{package}", "--port", "70000"], "not a port number"),
        (["{package}", "--env", "SAGEMAKER_BIND_TO_PORT=http"], "SAGEMAKER_BIND_TO_PORT"),
        (["{package}", "--log-level", "loud"], "--log-level"),
        (["gs://bucket/model.tar.gz"], "unsupported URI scheme 'gs'"),
    ],
)
def test_one_line_errors(
    args: list[str], message: str, churn: TrainedModel, tmp_path: Path
) -> None:
    filled = [a.format(missing=tmp_path / "nope", package=churn.package) for a in args]
    result = CliRunner().invoke(app, ["serve-model", *filled])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and result.output.count("Error:") == 1


def test_port_in_use_is_a_one_line_error(churn: TrainedModel) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve-model", str(churn.package), "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_json_body_through_http(container: Container, churn: TrainedModel) -> None:
    rows = churn.rows.iloc[:2]
    body = json.dumps({"instances": rows.to_dict(orient="records")}).encode()
    response = post(container.url, body, "application/json", Accept="application/jsonlines")
    assert response.headers["content-type"] == "application/jsonlines"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["predicted_label"] for line in lines] == list(
        churn.model.predict(rows)["predicted_label"]
    )
    assert csv_lines(rows) == churn.csv_body(0, 2)
