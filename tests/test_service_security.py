"""Hostile requests: signatures that are wrong, old, replayed or cover another body; URIs that
walk out of where they may; secrets that must not reach the logs; TLS."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from helpers_service import ROLE, ServiceProcess, client_env, free_port
from mlpilot.service import ServiceConfig
from mlpilot.service._app import Service
from mlpilot.service._auth import MAX_SKEW, verify_signature
from mlpilot.service._errors import ServiceError
from mlpilot.service._paths import check_uri

KEY, SECRET = "AKIDSECURITY", "Zm9vYmFyLXNlY3JldC1rZXktZm9yLXRlc3Rz"
BODY = b'{"MaxResults": 5}'


def _signed(
    body: bytes = BODY,
    *,
    secret: str = SECRET,
    url: str = "http://127.0.0.1:9999/",
    signer: type[SigV4Auth] = SigV4Auth,
    service: str = "sagemaker",
    target: str | None = "SageMaker.ListAutoMLJobs",
) -> dict[str, str]:
    """Headers botocore's own signer puts on a request (lower-cased)."""
    from urllib.parse import urlparse

    headers = {"Content-Type": "application/x-amz-json-1.1", "Host": urlparse(url).netloc}
    if target:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    signer(Credentials(KEY, secret), service, "us-east-1").add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


def _verify(headers: dict[str, str], body: bytes = BODY, **kwargs: Any) -> str | None:
    return verify_signature(
        {KEY: SECRET}, method="POST", raw_path="/", query="", headers=headers, body=body, **kwargs
    )


def _refused(headers: dict[str, str], body: bytes = BODY, **kwargs: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        _verify(headers, body, **kwargs)
    assert caught.value.status == 403
    return caught.value


def _signed_at(headers: dict[str, str]) -> float:
    stamp = dt.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    return stamp.replace(tzinfo=dt.UTC).timestamp()


# -- signatures -----------------------------------------------------------------------------------
def test_wrong_secret_is_invalid_signature() -> None:
    error = _refused(_signed(secret="not-the-secret"))
    assert error.code == "InvalidSignatureException"
    assert "signature we calculated does not match" in error.message


def test_missing_authorization_is_missing_token() -> None:
    error = _refused({"x-amz-date": "20250101T000000Z"})
    assert error.code == "MissingAuthenticationTokenException"


def test_replay_inside_the_window_is_accepted_outside_refused() -> None:
    headers = _signed()
    at = _signed_at(headers)
    # The same request again, a little later (AWS accepts it as well) ...
    assert _verify(headers, now=at + MAX_SKEW - 5) == KEY
    # ... but not once the 5-minute window has passed, nor long before it was signed.
    late = _refused(headers, now=at + MAX_SKEW + 5)
    assert late.code == "InvalidSignatureException"
    assert late.message.startswith(f"Signature expired: {headers['x-amz-date']} is now earlier")
    early = _refused(headers, now=at - MAX_SKEW - 5)
    assert early.code == "InvalidSignatureException" and "not yet current" in early.message


def test_changed_date_breaks_the_signature() -> None:
    """Moving X-Amz-Date forward to slip a captured request back into the window fails."""
    headers = _signed()
    later = dt.datetime.fromtimestamp(_signed_at(headers) + 60, dt.UTC)
    moved = {**headers, "x-amz-date": later.strftime("%Y%m%dT%H%M%SZ")}
    assert "does not match" in _refused(moved).message


def test_tampered_body_is_refused() -> None:
    headers = _signed()
    assert _verify(headers) == KEY
    assert _refused(headers, BODY.replace(b"5", b"6")).code == "InvalidSignatureException"


def test_declared_payload_hash_must_match_the_body() -> None:
    """S3-style signing puts the body's hash in X-Amz-Content-SHA256; a request whose body was
    swapped keeps the signed hash, which must then be checked against what arrived."""
    headers = _signed(signer=S3SigV4Auth)
    assert "x-amz-content-sha256" in headers
    assert _verify(headers) == KEY
    error = _refused(headers, b'{"MaxResults": 100}')
    assert "x-amz-content-sha256" in error.message
    unsigned = {**headers, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    assert "Unsigned payloads" in _refused(unsigned).message


# -- paths ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/data/../../other",
        "file:///srv/data/../../etc/passwd",
        "/srv/data/../etc",
        "file:///srv/data/%2E%2E/etc",
    ],
)
def test_dot_dot_segments_are_refused(uri: str) -> None:
    with pytest.raises(ServiceError) as caught:
        check_uri(uri, "S3Uri", [])
    assert caught.value.code == "ValidationException"
    assert "'..' path segments" in caught.value.message and uri in caught.value.message


def test_file_uri_with_a_host_is_refused() -> None:
    with pytest.raises(ServiceError, match=r"not one on host 'evil\.example'"):
        check_uri("file://evil.example/etc/passwd", "S3Uri", [])


def test_local_paths_without_roots_are_the_callers_choice(tmp_path: Path) -> None:
    check_uri(str(tmp_path), "S3Uri", [])
    check_uri("/etc", "S3Uri", [])


def test_allowed_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "data").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.csv").write_text("a\n1\n")
    roots = [root]
    check_uri(f"file://{root}/data", "S3Uri", roots)
    check_uri(f"{root}/not-yet-written/out", "S3OutputPath", roots)
    with pytest.raises(ServiceError) as caught:
        check_uri(str(outside), "S3Uri", roots)
    assert f"S3Uri '{outside}' is outside the allowed roots: {root}" == caught.value.message
    # A symlink inside the root that leads out is judged by where it leads ...
    (root / "link").symlink_to(outside)
    with pytest.raises(ServiceError, match=f"it resolves to {outside}"):
        check_uri(f"file://{root}/link/secret.csv", "S3Uri", roots)
    # ... and so is one hidden in an input folder.
    (root / "data" / "train.csv").symlink_to(outside / "secret.csv")
    with pytest.raises(ServiceError, match="a symlink that leads outside the allowed roots"):
        check_uri(str(root / "data"), "S3Uri", roots)


@pytest.mark.parametrize("kind", ["dot-dot", "absolute", "symlink"])
def test_model_archives_cannot_write_outside_their_folder(tmp_path: Path, kind: str) -> None:
    import io
    import tarfile

    from mlpilot.errors import ModelPackageError
    from mlpilot.serving import resolve_model

    archive = tmp_path / "model.tar.gz"
    escaped = tmp_path / "escaped.txt"
    with tarfile.open(archive, "w:gz") as tar:
        member = tarfile.TarInfo(
            {"dot-dot": "../escaped.txt", "absolute": str(escaped)}.get(kind, "x")
        )
        if kind == "symlink":
            member.type, member.linkname = tarfile.SYMTYPE, str(tmp_path)
        member.size = 0 if kind == "symlink" else 4
        tar.addfile(member, None if kind == "symlink" else io.BytesIO(b"evil"))
    # Refused, or (an absolute name) kept inside the extraction folder: never written out.
    with pytest.raises(ModelPackageError):
        resolve_model(archive, cache_dir=tmp_path / "cache" / "deep")
    assert not escaped.exists()


def _service(tmp_path: Path, roots: list[Path]) -> Service:
    return Service(ServiceConfig(data_dir=tmp_path / "data", allowed_roots=roots))


def test_requests_pointing_outside_the_roots_are_validation_errors(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    service = _service(tmp_path, [root])
    try:
        job = {
            "AutoMLJobName": "escape",
            "AutoMLJobInputDataConfig": [
                {
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"file://{outside}"}
                    }
                }
            ],
            "OutputDataConfig": {"S3OutputPath": str(root / "out")},
            "AutoMLProblemTypeConfig": {"TabularJobConfig": {"TargetAttributeName": "y"}},
            "RoleArn": ROLE,
        }
        with pytest.raises(ServiceError) as caught:
            service.call("CreateAutoMLJobV2", job)
        assert caught.value.code == "ValidationException"
        assert "AutoMLJobInputDataConfig.DataSource.S3DataSource.S3Uri" in caught.value.message
        assert str(outside) in caught.value.message
        model = {
            "ModelName": "escape",
            "PrimaryContainer": {
                "Image": "mlpilot/inference:1",
                "ModelDataUrl": f"{root}/../outside/model",
            },
            "ExecutionRoleArn": ROLE,
        }
        with pytest.raises(ServiceError, match=r"'\.\.' path segments"):
            service.call("CreateModel", model)
        model["PrimaryContainer"]["ModelDataUrl"] = str(outside)
        with pytest.raises(ServiceError, match=r"PrimaryContainer\.ModelDataUrl .* outside"):
            service.call("CreateModel", model)
    finally:
        service.store.close()


def test_a_portfolio_is_read_only_inside_the_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "data").mkdir(parents=True)
    outside.mkdir()
    (outside / "portfolio.json").write_text("{}")
    service = _service(tmp_path, [root])
    try:
        job = {
            "AutoMLJobName": "borrowed-portfolio",
            "AutoMLJobInputDataConfig": [
                {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(root)}}}
            ],
            "OutputDataConfig": {"S3OutputPath": str(root / "out")},
            "AutoMLProblemTypeConfig": {"TabularJobConfig": {"TargetAttributeName": "y"}},
            "RoleArn": ROLE,
            "Tags": [{"Key": "mlpilot:Portfolio", "Value": f"file://{outside}/portfolio.json"}],
        }
        with pytest.raises(ServiceError) as caught:
            service.call("CreateAutoMLJobV2", job)
        assert caught.value.code == "ValidationException"
        assert caught.value.message.startswith("Tag mlpilot:Portfolio")
        assert "is outside the allowed roots" in caught.value.message
    finally:
        service.store.close()


def test_new_data_folder_is_private(tmp_path: Path) -> None:
    service = _service(tmp_path, [])
    service.store.close()
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700


# -- a locked service -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("secure")
    keys = folder / "keys.txt"
    keys.write_text(f"# test keys\n{KEY}:{SECRET}\n")
    server = ServiceProcess(
        folder / "data", extra=["--access-keys-file", str(keys), "--allowed-root", str(folder)]
    ).start()
    yield server
    server.stop()


def _send(
    server: ServiceProcess, path: str, headers: dict[str, str], body: bytes
) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=30)


@pytest.mark.slow
def test_every_route_needs_a_signature(locked: ServiceProcess) -> None:
    url = locked.url
    for path, target in (("/", "SageMaker.ListAutoMLJobs"), ("/endpoints/e/invocations", None)):
        unsigned = _send(locked, path, {"X-Amz-Target": target or ""}, BODY)
        assert unsigned.status_code == 403, path
        wrong = _send(locked, path, _signed(secret="x", url=url + path, target=target), BODY)
        assert wrong.status_code == 403, path
        good = _send(locked, path, _signed(url=url + path, target=target), BODY)
        assert good.status_code != 403, path
    assert _send(locked, "/", {}, BODY).json()["__type"] == "MissingAuthenticationTokenException"
    metrics = httpx.get(f"{url}/endpoints/e/metrics")
    assert metrics.status_code == 403
    # Only the health check is open (load balancers cannot sign).
    assert httpx.get(f"{url}/ping").status_code == 200


@pytest.mark.slow
def test_expired_request_is_refused_by_the_service(
    locked: ServiceProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.auth

    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: old)
    response = _send(locked, "/", _signed(url=locked.url + "/"), BODY)
    assert response.status_code == 403
    assert response.json()["__type"] == "InvalidSignatureException"
    assert response.json()["message"].startswith("Signature expired")


@pytest.mark.slow
def test_traversing_endpoint_names_are_client_errors(locked: ServiceProcess) -> None:
    for name in ("..%2F..%2Fetc%2Fpasswd", "../../etc", "%2Fetc%2Fpasswd"):
        path = f"/endpoints/{name}/invocations"
        response = _send(locked, path, _signed(url=locked.url + path, target=None), b"1,2")
        assert 400 <= response.status_code < 500, (name, response.text)


@pytest.mark.slow
def test_secrets_and_signatures_never_reach_the_logs(locked: ServiceProcess) -> None:
    signatures = []
    for secret in (SECRET, "a-wrong-secret"):
        headers = _signed(url=locked.url + "/", secret=secret)
        signatures.append(headers["authorization"].rsplit("Signature=", 1)[1])
        _send(locked, "/", headers, BODY)
        _send(locked, "/", headers, b"not json")
    logs = [locked.data_dir.parent / f"serve-{locked.port}.log", *locked.data_dir.rglob("*.log")]
    text = "".join(p.read_text(errors="replace") for p in logs if p.is_file())
    assert text, "the service wrote no log at all"
    for secret in (SECRET, "a-wrong-secret", *signatures):
        assert secret not in text


# -- TLS and binding ------------------------------------------------------------------------------
def _serve(*args: str, timeout: float = 60) -> tuple[int, str]:
    """``mlpilot serve`` that must exit at once: (exit code, its output on one line)."""
    result = subprocess.run(
        [sys.executable, "-m", "mlpilot.cli.main", "serve", *args],
        capture_output=True,
        text=True,
        env=client_env(),
        timeout=timeout,
    )
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.mark.slow
def test_binding_beyond_loopback_needs_keys(tmp_path: Path) -> None:
    code, said = _serve("--host", "0.0.0.0", "--data-dir", str(tmp_path / "d"))
    assert code == 2 and "Refusing to listen on 0.0.0.0 without access keys" in said
    code, said = _serve("--tls-cert", str(tmp_path / "c.pem"), "--data-dir", str(tmp_path / "d"))
    assert code == 2 and "--tls-cert and --tls-key go together" in said


@pytest.mark.slow
def test_malformed_key_is_not_echoed(tmp_path: Path) -> None:
    code, said = _serve("--access-key", "just-a-secret-value", "--data-dir", str(tmp_path / "d"))
    assert code == 2 and "ACCESS_KEY_ID:SECRET" in said
    assert "just-a-secret-value" not in said


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "mlpilot.cli.main", "serve", "--port", str(port),
                "--data-dir", str(tmp_path / "data"), "--tls-cert", str(cert),
                "--tls-key", str(key), "--access-key", f"{KEY}:{SECRET}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=client_env(),
        )  # fmt: skip
    try:
        url = f"https://127.0.0.1:{port}"
        trusted = ssl.create_default_context(cafile=str(cert))
        for _ in range(300):
            try:
                if httpx.get(f"{url}/ping", verify=trusted, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if process.poll() is not None:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.2)
        import boto3

        sm = boto3.client(
            "sagemaker",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            verify=str(cert),
        )
        assert sm.list_auto_ml_jobs()["AutoMLJobSummaries"] == []
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/ping", timeout=5)
    finally:
        process.terminate()
        process.wait(timeout=40)
    assert f"https://127.0.0.1:{port}" in log.read_text()
