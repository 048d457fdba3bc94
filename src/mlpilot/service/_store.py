"""The service's metadata store: SQLAlchemy Core over SQLite by default (any SQLAlchemy URL,
PostgreSQL included, works: only portable types and statements are used).

Records are kept as JSON text in the shapes the API returns; the columns beside them are what
lists filter and sort on, and what the service needs to supervise running jobs.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypedDict, Unpack

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

__all__ = ["AlreadyExists", "Listing", "Page", "Store", "decode_token", "encode_token"]

metadata = MetaData()

automl_jobs = Table(
    "automl_jobs",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("arn", String(256), nullable=False),
    Column("status", String(32), nullable=False),
    Column("secondary_status", String(64), nullable=False),
    Column("created", Float, nullable=False),
    Column("modified", Float, nullable=False),
    Column("ended", Float),
    #: The DescribeAutoMLJobV2 record (artifact locations as the caller sees them).
    Column("record", Text, nullable=False),
    #: "V2" or "V1": which Create call made it (Describe of the other version translates).
    Column("api_version", String(4), nullable=False),
    Column("v1_request", Text),
    #: Where the engine writes (a local folder), and what the caller named (S3 or local).
    Column("local_root", Text, nullable=False),
    Column("output_root", Text, nullable=False),
    Column("runner_pid", Integer),
    Column("runner_host", String(255)),
    Column("heartbeat", Float),
    Column("stop_requested", Boolean, nullable=False, default=False),
    #: ModelDeployConfig progress: null (none asked), "pending", "done", "failed".
    Column("deploy_state", String(16)),
)

candidates = Table(
    "automl_candidates",
    metadata,
    Column("job_name", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("objective_value", Float),
    Column("created", Float, nullable=False),
    Column("record", Text, nullable=False),
)

#: Models, endpoint configs, endpoints, transform jobs: one table, told apart by ``kind``.
resources = Table(
    "resources",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("arn", String(256), nullable=False),
    Column("status", String(32)),
    Column("created", Float, nullable=False),
    Column("modified", Float, nullable=False),
    Column("record", Text, nullable=False),
)


#: The audit trail of deployments: one row per production variant each time CreateEndpoint or
#: UpdateEndpoint puts a model on an endpoint. ``package_id`` is the package's payload
#: checksum (its manifest's), so ``mlpilot card`` finds a package's deployments wherever the
#: package was read from. Rows are only added (a new table, made by ``create_all`` like the
#: others on a store that predates it).
deployments = Table(
    "model_deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("package_id", String(64), index=True),
    Column("model_data_url", Text, nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("endpoint", String(128), nullable=False),
    Column("variant", String(128), nullable=False),
    Column("endpoint_config", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("time", Float, nullable=False),
)


#: The model registry's packages (CreateModelPackage): versioned ones (in a group, keyed
#: ``group/version``) and unversioned ones (keyed by their name). The columns beside the record
#: are what ListModelPackages filters and sorts on; ``client_token`` makes a retried create
#: answer the package it made. Groups are ``resources`` of kind ``model-package-group``.
model_packages = Table(
    "model_packages",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("arn", String(256), nullable=False, unique=True),
    Column("group_name", String(64), index=True),
    Column("version", Integer),
    Column("approval", String(32)),
    Column("created", Float, nullable=False),
    Column("modified", Float, nullable=False),
    Column("client_token", String(64), index=True),
    Column("record", Text, nullable=False),
)


#: The retraining policies' audit log (``mlpilot retrain history``): one row per step of a
#: round (triggered, champion, challenger started, evaluated, registered, canary, promoted,
#: kept, rolled back, failed), only ever added. The policies themselves are ``resources`` of
#: kind ``retrain-policy``.
retrain_events = Table(
    "retrain_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", String(128), nullable=False, index=True),
    Column("time", Float, nullable=False),
    Column("action", String(32), nullable=False),
    Column("details", Text, nullable=False),
)


class AlreadyExists(Exception):
    pass


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    """Offset from a NextToken; ValueError for one this service did not issue."""
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except Exception as exc:
        raise ValueError("Invalid pagination token") from exc
    if offset < 0:
        raise ValueError("Invalid pagination token")
    return offset


class Listing(TypedDict, total=False):
    """What a List operation asks for: filters (name substring in any case, status, exclusive
    time bounds), order and page. Left out: no filter, descending, the first 10."""

    name_contains: str | None
    status: str | None
    created_after: float | None
    created_before: float | None
    modified_after: float | None
    modified_before: float | None
    sort_by: str
    descending: bool
    offset: int
    limit: int


class Page:
    def __init__(self, rows: list[dict[str, Any]], next_offset: int | None) -> None:
        self.rows = rows
        self.next_token = None if next_offset is None else encode_token(next_offset)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: the service reads while job runners (other processes) write.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Store:
    """All reads and writes of service metadata.

    Parameters
    ----------
    url:
        A SQLAlchemy URL, e.g. ``sqlite:////var/lib/mlpilot/mlpilot.db`` or
        ``postgresql+psycopg://user@host/mlpilot``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- AutoML jobs ----------------------------------------------------------------------
    def insert_job(self, row: dict[str, Any]) -> None:
        try:
            with self._tx() as conn:
                conn.execute(automl_jobs.insert().values(**_dump(row)))
        except IntegrityError as exc:
            raise AlreadyExists(row["name"]) from exc

    def get_job(self, name: str) -> dict[str, Any] | None:
        with self._tx() as conn:
            found = conn.execute(select(automl_jobs).where(automl_jobs.c.name == name)).first()
        return None if found is None else _load(found._asdict())

    def job_by_arn(self, arn: str) -> dict[str, Any] | None:
        """The job with ARN ``arn`` (ARNs hold the name lower-cased)."""
        with self._tx() as conn:
            found = conn.execute(select(automl_jobs).where(automl_jobs.c.arn == arn)).first()
        return None if found is None else _load(found._asdict())

    def update_job(self, name: str, **values: Any) -> None:
        with self._tx() as conn:
            conn.execute(
                automl_jobs.update().where(automl_jobs.c.name == name).values(**_dump(values))
            )

    def active_jobs(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(
                select(automl_jobs).where(automl_jobs.c.status.in_(("InProgress", "Stopping")))
            ).all()
        return [_load(r._asdict()) for r in rows]

    def count_active_jobs(self) -> int:
        with self._tx() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(automl_jobs)
                    .where(automl_jobs.c.status.in_(("InProgress", "Stopping")))
                ).scalar_one()
            )

    def queued_jobs(self) -> list[dict[str, Any]]:
        """Jobs waiting for a slot (InProgress, Starting, no runner yet), in the order they
        were asked for: by when they were queued (a new job's creation; a resumed job's
        resume request, which sets ``modified``)."""
        t = automl_jobs
        with self._tx() as conn:
            rows = conn.execute(
                select(t)
                .where(
                    t.c.status == "InProgress",
                    t.c.secondary_status == "Starting",
                    t.c.runner_pid.is_(None),
                )
                .order_by(t.c.modified, t.c.name)
            ).all()
        return [_load(r._asdict()) for r in rows]

    def list_jobs(self, **listing: Unpack[Listing]) -> Page:
        """Job rows, by name unless told (ties by name, in the same direction)."""
        return self._list(automl_jobs, [], listing, default_sort="Name", tie_follows=True)

    # -- candidates -----------------------------------------------------------------------
    def put_candidate(self, job_name: str, record: dict[str, Any]) -> None:
        value = (record.get("FinalAutoMLJobObjectiveMetric") or {}).get("Value")
        values = {
            "status": record["CandidateStatus"],
            "objective_value": value,
            "created": record.get("CreationTime") or time.time(),
            "record": json.dumps(record, default=str),
        }
        key = and_(candidates.c.job_name == job_name, candidates.c.name == record["CandidateName"])
        with self._tx() as conn:
            updated = conn.execute(candidates.update().where(key).values(**values)).rowcount
            if not updated:
                conn.execute(
                    candidates.insert().values(
                        job_name=job_name, name=record["CandidateName"], **values
                    )
                )

    def list_candidates(
        self,
        job_name: str,
        *,
        status: str | None = None,
        name: str | None = None,
        sort_by: str | None = None,
        descending: bool = False,
        offset: int = 0,
        limit: int = 10,
    ) -> Page:
        t = candidates
        conditions = [t.c.job_name == job_name]
        if status:
            conditions.append(t.c.status == status)
        if name:
            conditions.append(t.c.name == name)
        if sort_by == "FinalObjectiveMetricValue":
            # Candidates without a value go last whichever the order.
            orders: list[Any] = [
                t.c.objective_value.is_(None),
                t.c.objective_value.desc() if descending else t.c.objective_value.asc(),
            ]
        elif sort_by == "Status":
            orders = [t.c.status.desc() if descending else t.c.status.asc()]
        else:
            orders = [t.c.created.desc() if descending else t.c.created.asc()]
        query = select(t).where(and_(*conditions)).order_by(*orders, t.c.name.asc())
        return self._page(query, offset, limit)

    # -- models, endpoint configs, endpoints, transform jobs --------------------------------
    def insert_resource(self, kind: str, name: str, arn: str, record: dict[str, Any]) -> None:
        now = time.time()
        try:
            with self._tx() as conn:
                conn.execute(
                    resources.insert().values(
                        kind=kind,
                        name=name,
                        arn=arn,
                        status=_status_of(record),
                        created=record.get("CreationTime", now),
                        modified=record.get("LastModifiedTime", now),
                        record=json.dumps(record, default=str),
                    )
                )
        except IntegrityError as exc:
            raise AlreadyExists(name) from exc

    def get_resource(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._tx() as conn:
            found = conn.execute(
                select(resources).where(and_(resources.c.kind == kind, resources.c.name == name))
            ).first()
        return None if found is None else json.loads(found.record)

    def resource_by_arn(self, kind: str, arn: str) -> dict[str, Any] | None:
        with self._tx() as conn:
            found = conn.execute(
                select(resources).where(and_(resources.c.kind == kind, resources.c.arn == arn))
            ).first()
        return None if found is None else json.loads(found.record)

    def put_resource(self, kind: str, name: str, record: dict[str, Any]) -> None:
        """Replace an existing resource's record (status and modified time follow it)."""
        with self._tx() as conn:
            conn.execute(
                resources.update()
                .where(and_(resources.c.kind == kind, resources.c.name == name))
                .values(
                    status=_status_of(record),
                    modified=record.get("LastModifiedTime", time.time()),
                    record=json.dumps(record, default=str),
                )
            )

    def delete_resource(self, kind: str, name: str) -> bool:
        with self._tx() as conn:
            deleted = conn.execute(
                resources.delete().where(and_(resources.c.kind == kind, resources.c.name == name))
            ).rowcount
        return bool(deleted)

    def list_resources(self, kind: str, **listing: Unpack[Listing]) -> Page:
        """The records of one kind, newest first unless told (ties by name, A to Z)."""
        condition = resources.c.kind == kind
        page = self._list(
            resources, [condition], listing, default_sort="CreationTime", tie_follows=False
        )
        page.rows = [row["record"] for row in page.rows]
        return page

    # -- model packages -------------------------------------------------------------------
    def insert_model_package(self, row: dict[str, Any]) -> None:
        """Add a package: ``name``, ``arn``, ``group_name``, ``version``, ``approval``,
        ``client_token`` and its ``record`` (whose times the row's columns take)."""
        record = row["record"]
        values = {
            **row,
            "created": record["CreationTime"],
            "modified": record.get("LastModifiedTime", record["CreationTime"]),
            "record": json.dumps(record, default=str),
        }
        try:
            with self._tx() as conn:
                conn.execute(model_packages.insert().values(**values))
        except IntegrityError as exc:
            raise AlreadyExists(row["arn"]) from exc

    def model_package(
        self, *, arn: str | None = None, client_token: str | None = None
    ) -> dict[str, Any] | None:
        """The package whose ARN is ``arn``, or that the create with ``client_token`` made."""
        t = model_packages
        condition = t.c.arn == arn if arn is not None else t.c.client_token == client_token
        with self._tx() as conn:
            found = conn.execute(select(t).where(condition)).first()
        return None if found is None else json.loads(found.record)

    def put_model_package(self, arn: str, record: dict[str, Any]) -> None:
        """Replace a package's record (its approval status and modified time follow it)."""
        t = model_packages
        with self._tx() as conn:
            conn.execute(
                t.update()
                .where(t.c.arn == arn)
                .values(
                    approval=record.get("ModelApprovalStatus"),
                    modified=record.get("LastModifiedTime", time.time()),
                    record=json.dumps(record, default=str),
                )
            )

    def delete_model_package(self, arn: str) -> bool:
        t = model_packages
        with self._tx() as conn:
            deleted = conn.execute(t.delete().where(t.c.arn == arn)).rowcount
        return bool(deleted)

    def last_package_version(self, group: str) -> int:
        """The highest version the packages of ``group`` hold (0: none)."""
        t = model_packages
        with self._tx() as conn:
            found = conn.execute(
                select(func.max(t.c.version)).where(t.c.group_name == group)
            ).scalar_one()
        return int(found or 0)

    def list_model_packages(
        self,
        *,
        group: str | None,
        versioned: bool | None,
        approval: str | None,
        listing: Listing,
    ) -> Page:
        """Package records: of ``group`` (its versions), of one kind (``versioned`` True or
        False; None: both), with an approval status, and the listing's name, creation-time
        bounds, order and page. By creation time unless sorted by name (a versioned package's
        name is its group's; then by version). Ascending unless told."""
        t = model_packages
        name = func.coalesce(t.c.group_name, t.c.name)
        conditions: list[Any] = []
        if name_contains := listing.get("name_contains"):
            conditions.append(func.lower(name).contains(name_contains.lower()))
        if (after := listing.get("created_after")) is not None:
            conditions.append(t.c.created > after)
        if (before := listing.get("created_before")) is not None:
            conditions.append(t.c.created < before)
        if group is not None:
            conditions.append(t.c.group_name == group)
        if versioned is not None:
            conditions.append(t.c.version.is_not(None) if versioned else t.c.version.is_(None))
        if approval is not None:
            conditions.append(t.c.approval == approval)
        keys = [name, t.c.version] if listing.get("sort_by") == "Name" else [t.c.created, t.c.arn]
        descending = listing.get("descending", False)
        orders = [key.desc() if descending else key.asc() for key in keys]
        query = select(t).where(and_(True, *conditions)).order_by(*orders)
        page = self._page(query, listing.get("offset", 0), listing.get("limit", 10))
        page.rows = [row["record"] for row in page.rows]
        return page

    # -- deployments' audit trail ------------------------------------------------------------
    def add_deployments(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            with self._tx() as conn:
                conn.execute(deployments.insert(), rows)

    def list_deployments(self, package_id: str) -> list[dict[str, Any]]:
        """The deployments of the package whose payload checksum is ``package_id``, oldest
        first."""
        t = deployments
        with self._tx() as conn:
            found = conn.execute(
                select(t).where(t.c.package_id == package_id).order_by(t.c.time, t.c.id)
            ).all()
        return [
            {k: v for k, v in row._mapping.items() if k not in ("id", "package_id")}
            for row in found
        ]

    # -- retraining's audit log -----------------------------------------------------------
    def add_retrain_event(self, endpoint: str, action: str, details: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(
                retrain_events.insert().values(
                    endpoint=endpoint,
                    time=float(details.get("time") or time.time()),
                    action=action,
                    details=json.dumps(details, default=str),
                )
            )

    def retrain_events(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """The audit log, oldest first (one endpoint's, or every one's)."""
        t = retrain_events
        query = select(t).order_by(t.c.time, t.c.id)
        if endpoint is not None:
            query = query.where(t.c.endpoint == endpoint)
        with self._tx() as conn:
            found = conn.execute(query).all()
        return [
            {
                **json.loads(row.details),
                "endpoint": row.endpoint,
                "time": row.time,
                "action": row.action,
            }
            for row in found
        ]

    # -- helpers --------------------------------------------------------------------------
    def _list(
        self,
        t: Table,
        conditions: list[Any],
        listing: Listing,
        *,
        default_sort: str,
        tie_follows: bool,
    ) -> Page:
        descending = listing.get("descending", True)
        sort_by = listing.get("sort_by", default_sort)
        column = {"Name": t.c.name, "CreationTime": t.c.created, "Status": t.c.status}[sort_by]
        order = column.desc() if descending else column.asc()
        tie = t.c.name.desc() if descending and tie_follows else t.c.name.asc()
        query = select(t).where(and_(True, *conditions, *_filters(t, listing))).order_by(order, tie)
        return self._page(query, listing.get("offset", 0), listing.get("limit", 10))

    def _page(self, query: Any, offset: int, limit: int) -> Page:
        with self._tx() as conn:
            rows = conn.execute(query.offset(offset).limit(limit + 1)).all()
        more = len(rows) > limit
        loaded = [_load(r._asdict()) for r in rows[:limit]]
        return Page(loaded, offset + limit if more else None)


def _filters(t: Table, listing: Listing) -> list[Any]:
    """The conditions of a listing's filters."""
    conditions: list[Any] = []
    if name_contains := listing.get("name_contains"):
        conditions.append(func.lower(t.c.name).contains(name_contains.lower()))
    if status := listing.get("status"):
        conditions.append(t.c.status == status)
    for column, bound, after in (
        (t.c.created, listing.get("created_after"), True),
        (t.c.created, listing.get("created_before"), False),
        (t.c.modified, listing.get("modified_after"), True),
        (t.c.modified, listing.get("modified_before"), False),
    ):
        if bound is not None:
            conditions.append(column > bound if after else column < bound)
    return conditions


def _status_of(record: dict[str, Any]) -> str | None:
    for key in ("EndpointStatus", "TransformJobStatus", "Status"):
        if key in record:
            return str(record[key])
    return None


def _dump(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: json.dumps(v, default=str) if k in ("record", "v1_request") and v is not None else v
        for k, v in values.items()
    }


def _load(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("record", "v1_request"):
        if row.get(key) is not None:
            row[key] = json.loads(row[key])
    return row
