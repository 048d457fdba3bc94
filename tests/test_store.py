"""The metadata store on SQLite, and on PostgreSQL where one is given
(``MLPILOT_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@host/db``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpilot.service import Store
from mlpilot.service._store import AlreadyExists, decode_token

URLS = ["sqlite"]
if os.environ.get("MLPILOT_TEST_POSTGRES_URL"):
    URLS.append(os.environ["MLPILOT_TEST_POSTGRES_URL"])


@pytest.fixture(params=URLS, ids=lambda u: u.split(":")[0].split("+")[0])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}" if request.param == "sqlite" else request.param
    store = Store(url)
    if not url.startswith("sqlite"):
        from mlpilot.service._store import metadata

        metadata.drop_all(store.engine)
        metadata.create_all(store.engine)
    yield store
    store.close()


def _job(name: str, created: float, status: str = "InProgress") -> dict[str, object]:
    return {
        "name": name,
        "arn": f"arn:aws:sagemaker:us-east-1:000000000000:automl-job/{name}",
        "status": status,
        "secondary_status": "Starting",
        "created": created,
        "modified": created,
        "record": {"AutoMLJobName": name, "Nested": {"Value": 0.5}},
        "api_version": "V2",
        "local_root": f"/tmp/{name}",
        "output_root": f"s3://b/{name}",
        "stop_requested": False,
    }


def test_jobs_round_trip_filter_sort_page(store: Store) -> None:
    for i, name in enumerate(["beta", "Alpha", "gamma"]):
        store.insert_job(_job(name, 100.0 + i, "Completed" if name == "gamma" else "InProgress"))
    with pytest.raises(AlreadyExists):
        store.insert_job(_job("beta", 1.0))
    assert store.get_job("beta")["record"] == {"AutoMLJobName": "beta", "Nested": {"Value": 0.5}}
    assert store.get_job("nope") is None
    assert store.count_active_jobs() == 2
    store.update_job("beta", status="Stopped", stop_requested=True, record={"x": 1})
    row = store.get_job("beta")
    assert (
        row["status"] == "Stopped" and row["stop_requested"] is True and row["record"] == {"x": 1}
    )
    names = [r["name"] for r in store.list_jobs(sort_by="CreationTime", descending=False).rows]
    assert names == ["beta", "Alpha", "gamma"]
    assert [r["name"] for r in store.list_jobs(name_contains="ALP").rows] == ["Alpha"]
    assert [r["name"] for r in store.list_jobs(status="Completed").rows] == ["gamma"]
    assert [r["name"] for r in store.list_jobs(created_after=100.5).rows] == ["gamma", "Alpha"]
    page = store.list_jobs(limit=2, sort_by="Name", descending=False)
    assert len(page.rows) == 2 and page.next_token
    rest = store.list_jobs(
        limit=2, sort_by="Name", descending=False, offset=decode_token(page.next_token)
    )
    assert len(rest.rows) == 1 and rest.next_token is None


def test_candidates_upsert_and_sort(store: Store) -> None:
    for name, value, status in (
        ("c1", 0.7, "Completed"),
        ("c2", None, "Failed"),
        ("c3", 0.9, "Completed"),
    ):
        store.put_candidate(
            "job",
            {
                "CandidateName": name,
                "CandidateStatus": status,
                "CreationTime": 1.0,
                **(
                    {"FinalAutoMLJobObjectiveMetric": {"Value": value}} if value is not None else {}
                ),
            },
        )
    store.put_candidate(
        "job",
        {
            "CandidateName": "c1",
            "CandidateStatus": "Completed",
            "CreationTime": 1.0,
            "FinalAutoMLJobObjectiveMetric": {"Value": 0.95},
        },
    )
    best_first = store.list_candidates("job", sort_by="FinalObjectiveMetricValue", descending=True)
    assert [r["name"] for r in best_first.rows] == ["c1", "c3", "c2"]
    worst_first = store.list_candidates("job", sort_by="FinalObjectiveMetricValue")
    assert [r["name"] for r in worst_first.rows] == ["c3", "c1", "c2"]
    assert [r["name"] for r in store.list_candidates("job", status="Failed").rows] == ["c2"]
    assert len(store.list_candidates("job").rows) == 3


def test_resources(store: Store) -> None:
    name = f"ep-{uuid.uuid4().hex[:6]}"
    store.insert_resource(
        "endpoint", name, "arn", {"EndpointStatus": "Creating", "CreationTime": 5.0}
    )
    with pytest.raises(AlreadyExists):
        store.insert_resource("endpoint", name, "arn", {})
    store.put_resource("endpoint", name, {"EndpointStatus": "InService", "CreationTime": 5.0})
    assert store.get_resource("endpoint", name)["EndpointStatus"] == "InService"
    assert [
        r["EndpointStatus"] for r in store.list_resources("endpoint", status="InService").rows
    ] == ["InService"]
    assert store.list_resources("model").rows == []
    assert store.delete_resource("endpoint", name) is True
    assert store.delete_resource("endpoint", name) is False
