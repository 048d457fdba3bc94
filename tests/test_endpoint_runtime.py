"""The endpoint runtime: variants of real ``serve-model`` processes, weighted routing, target
variants, per-variant metrics, scaling, replacing dead instances, updates without downtime."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import helpers_models
from helpers_models import TrainedModel
from mlpilot.errors import JobNotFoundError
from mlpilot.serving import (
    EndpointRuntime,
    EndpointStartError,
    EndpointUnavailableError,
    UnknownVariantError,
    VariantSpec,
)

# Left out of `make test-fast`: endpoints of container subprocesses.
pytestmark = pytest.mark.slow

KEYS = {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probability"}


@pytest.fixture(scope="session")
def churn(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return helpers_models.churn_model(tmp_path_factory)


@pytest.fixture(scope="module")
def endpoint(
    churn: TrainedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EndpointRuntime]:
    """Variant A (weight 0.8) serves the archive with two content keys, B (0.2) the folder."""
    runtime = EndpointRuntime(
        seed=7,
        monitor_interval=None,
        cache_dir=tmp_path_factory.mktemp("cache"),
        startup_timeout=120,
    )
    runtime.start(
        [
            VariantSpec("A", str(churn.archive), KEYS, instance_count=1, weight=0.8),
            VariantSpec("B", str(churn.package), {}, instance_count=1, weight=0.2),
        ]
    )
    yield runtime
    runtime.stop()


@pytest.fixture
def weights(endpoint: EndpointRuntime) -> Iterator[None]:
    """Restore the initial weights and capacities after a test that changes them."""
    yield
    endpoint.update_weights_and_capacities(
        [
            {"VariantName": "A", "DesiredWeight": 0.8, "DesiredInstanceCount": 1},
            {"VariantName": "B", "DesiredWeight": 0.2, "DesiredInstanceCount": 1},
        ]
    )


def send(endpoint: EndpointRuntime, churn: TrainedModel, n: int, **kwargs: str) -> Counter[str]:
    served: Counter[str] = Counter()
    for i in range(n):
        result = endpoint.invoke(
            churn.csv_body(i % 50, i % 50 + 1), content_type="text/csv", **kwargs
        )
        assert result.ok, result.message
        served[result.variant] += 1
    return served


def test_weighted_split_and_stats(endpoint: EndpointRuntime, churn: TrainedModel) -> None:
    before = endpoint.stats()
    served = send(endpoint, churn, 300)
    assert served["A"] + served["B"] == 300
    assert 240 - 35 <= served["A"] <= 240 + 35  # 0.8 of 300, five standard deviations
    after = endpoint.stats()
    for name in ("A", "B"):
        sent = after[name]["Invocations"] - before[name]["Invocations"]
        assert sent == served[name]
        latency = after[name]["ModelLatency"]
        assert latency["Count"] == after[name]["Invocations"]
        assert 0 < latency["Minimum"] <= latency["p50"] <= latency["p99"] <= latency["Maximum"]
        assert latency["Sum"] == pytest.approx(latency["Average"] * latency["Count"])
        assert after[name]["Invocation4XXErrors"] == before[name]["Invocation4XXErrors"]
    assert after["A"]["CurrentWeight"] == 0.8 and after["B"]["CurrentInstanceCount"] == 1


def test_variants_answer_with_their_environment(
    endpoint: EndpointRuntime, churn: TrainedModel
) -> None:
    expected = churn.model.predict(churn.rows.iloc[:1])
    a = endpoint.invoke(churn.csv_body(), content_type="text/csv", target_variant="A")
    b = endpoint.invoke(churn.csv_body(), content_type="text/csv", target_variant="B")
    assert (a.variant, b.variant) == ("A", "B")
    label, probability = a.message.strip().split(",")
    assert label == expected["predicted_label"].iloc[0]
    assert float(probability) == pytest.approx(expected["probability"].iloc[0])
    assert b.message.strip() == expected["predicted_label"].iloc[0]  # default key only
    assert a.content_type == "text/csv"


def test_target_variant(endpoint: EndpointRuntime, churn: TrainedModel) -> None:
    assert send(endpoint, churn, 20, target_variant="B") == Counter({"B": 20})
    with pytest.raises(UnknownVariantError, match="'C' does not exist"):
        endpoint.invoke(churn.csv_body(), content_type="text/csv", target_variant="C")


def test_container_errors_are_results(endpoint: EndpointRuntime, churn: TrainedModel) -> None:
    before = endpoint.stats()["B"]["Invocation4XXErrors"]
    result = endpoint.invoke(b"1,2,3", content_type="text/csv", target_variant="B")
    assert (result.status, result.ok, result.variant) == (400, False, "B")
    assert "got 3" in result.message
    result = endpoint.invoke(churn.csv_body(), accept="image/png", target_variant="B")
    assert result.status == 406
    assert endpoint.stats()["B"]["Invocation4XXErrors"] == before + 2


@pytest.mark.usefixtures("weights")
def test_weight_update_changes_the_split(endpoint: EndpointRuntime, churn: TrainedModel) -> None:
    endpoint.update_weights_and_capacities([{"VariantName": "A", "DesiredWeight": 0.0}])
    assert send(endpoint, churn, 30) == Counter({"B": 30})
    endpoint.update_weights_and_capacities(
        [{"VariantName": "A", "DesiredWeight": 1.0}, {"VariantName": "B", "DesiredWeight": 1.0}]
    )
    served = send(endpoint, churn, 200)
    assert 100 - 40 <= served["A"] <= 100 + 40
    with pytest.raises(UnknownVariantError):
        endpoint.update_weights_and_capacities([{"VariantName": "Z", "DesiredWeight": 1.0}])
    endpoint.update_weights_and_capacities(
        [{"VariantName": "A", "DesiredWeight": 0.0}, {"VariantName": "B", "DesiredWeight": 0.0}]
    )
    with pytest.raises(EndpointUnavailableError, match="weight is 0"):
        endpoint.invoke(churn.csv_body(), content_type="text/csv")
    # A target variant still reaches a variant at weight 0.
    assert endpoint.invoke(churn.csv_body(), target_variant="A").ok


@pytest.mark.usefixtures("weights")
def test_scaling_instances(endpoint: EndpointRuntime, churn: TrainedModel) -> None:
    endpoint.update_weights_and_capacities([{"VariantName": "B", "DesiredInstanceCount": 3}])
    (b,) = [v for v in endpoint.variants() if v["VariantName"] == "B"]
    assert b["CurrentInstanceCount"] == 3 and b["HealthyInstanceCount"] == 3
    before = {i["Pid"]: i["Invocations"] for i in b["Instances"]}
    send(endpoint, churn, 30, target_variant="B")
    (b,) = [v for v in endpoint.variants() if v["VariantName"] == "B"]
    # Round robin: each instance took a third.
    assert sorted(i["Invocations"] - before[i["Pid"]] for i in b["Instances"]) == [10, 10, 10]
    pids = [i["Pid"] for i in b["Instances"]]
    endpoint.update_weights_and_capacities([{"VariantName": "B", "DesiredInstanceCount": 1}])
    (b,) = [v for v in endpoint.variants() if v["VariantName"] == "B"]
    assert [i["Pid"] for i in b["Instances"]] == pids[:1]
    for pid in pids[1:]:
        assert not _alive(pid)


def test_killed_instance_is_replaced(churn: TrainedModel, tmp_path: Path) -> None:
    # Its own runtime: what earlier tests did to the shared endpoint's variants stays out of it.
    runtime = EndpointRuntime(seed=3, monitor_interval=None, cache_dir=tmp_path / "cache")
    try:
        runtime.start([VariantSpec("B", str(churn.package), {}, instance_count=1)])
        (b,) = runtime.variants()
        victim = b["Instances"][0]["Pid"]
        # Another thread waiting on the process holds its wait lock, so poll() alone would
        # call the dead instance running: the health check must still see it exited.
        (process,) = [i.process for i in runtime._variants["B"].instances]
        threading.Thread(target=process.wait, daemon=True).start()
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while _alive(victim) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(victim)
        with pytest.raises(EndpointUnavailableError, match="'B' has no"):
            runtime.invoke(churn.csv_body(), target_variant="B")
        report = runtime.check_health()
        assert len(report) == 1 and f"pid {victim}" in report[0], report
        assert "exited with code -9" in report[0] and "replaced by instance" in report[0]
        assert runtime.invoke(churn.csv_body(), target_variant="B").ok
        (b,) = runtime.variants()
        assert b["Instances"][0]["Pid"] != victim and b["HealthyInstanceCount"] == 1
        assert runtime.check_health() == []
    finally:
        runtime.stop()


def test_async_invoke(endpoint: EndpointRuntime, churn: TrainedModel) -> None:
    async def many() -> list[int]:
        results = await asyncio.gather(
            *(
                endpoint.ainvoke(churn.csv_body(i, i + 1), content_type="text/csv")
                for i in range(20)
            )
        )
        return [r.status for r in results]

    assert asyncio.run(many()) == [200] * 20


def test_update_variants_without_downtime(churn: TrainedModel, tmp_path: Path) -> None:
    runtime = EndpointRuntime(seed=1, monitor_interval=None, cache_dir=tmp_path / "cache")
    try:
        runtime.start([VariantSpec("Blue", str(churn.package))])
        old = [i["Pid"] for v in runtime.variants() for i in v["Instances"]]
        failures: list[str] = []
        served: Counter[str] = Counter()
        done = threading.Event()

        def traffic() -> None:
            while not done.is_set():
                try:
                    result = runtime.invoke(churn.csv_body(), content_type="text/csv")
                except Exception as exc:
                    failures.append(repr(exc))
                    continue
                served[result.variant] += 1
                if not result.ok:
                    failures.append(result.message)

        thread = threading.Thread(target=traffic)
        thread.start()
        time.sleep(0.3)
        runtime.update_variants([VariantSpec("Green", str(churn.archive), KEYS)])
        time.sleep(0.3)
        done.set()
        thread.join()
        assert failures == []
        assert served["Blue"] > 0 and served["Green"] > 0
        assert [v["VariantName"] for v in runtime.variants()] == ["Green"]
        assert not any(_alive(pid) for pid in old)
        # A failing update leaves the running set serving.
        with pytest.raises(JobNotFoundError):
            runtime.update_variants([VariantSpec("Broken", str(tmp_path / "nothing"))])
        assert runtime.invoke(churn.csv_body()).variant == "Green"
    finally:
        runtime.stop()
    assert not runtime.running
    with pytest.raises(EndpointUnavailableError):
        runtime.invoke(churn.csv_body())


def test_start_failures_give_a_reason(churn: TrainedModel, tmp_path: Path) -> None:
    runtime = EndpointRuntime(monitor_interval=None, cache_dir=tmp_path / "cache")
    try:
        bad_env = {"SAGEMAKER_BATCH_STRATEGY": "sometimes"}
        with pytest.raises(EndpointStartError) as caught:
            runtime.start([VariantSpec("AllTraffic", str(churn.package), bad_env)])
        message = str(caught.value)
        assert "variant 'AllTraffic' instance 1" in message and "exited with code 2" in message
        assert "SAGEMAKER_BATCH_STRATEGY" in message
        with pytest.raises(EndpointStartError, match="used twice"):
            runtime.start([VariantSpec("X", str(churn.package))] * 2)
        with pytest.raises(EndpointStartError, match="instance count 0"):
            runtime.start([VariantSpec("X", str(churn.package), instance_count=0)])
    finally:
        runtime.stop()
    # An instance that never answers /ping.
    silent = tmp_path / "silent-python"
    silent.write_text("#!/bin/sh\nexec sleep 60\n")
    silent.chmod(0o755)
    runtime = EndpointRuntime(monitor_interval=None, startup_timeout=1, python=str(silent))
    try:
        with pytest.raises(EndpointStartError, match="did not answer /ping within 1 s"):
            runtime.start([VariantSpec("AllTraffic", str(churn.package))])
        assert runtime.variants() == []
    finally:
        runtime.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
