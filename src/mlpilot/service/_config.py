"""The service's settings, with embedded defaults: everything under one data folder."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlpilot.package import Keyring

__all__ = ["ServiceConfig", "default_max_concurrent_jobs"]

_ACCOUNT = re.compile(r"^\d{12}$")
#: A dotted Python module name.
_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
#: Memory one running AutoML job is given room for when the default limit is worked out.
_GIB_PER_JOB = 4


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def default_max_concurrent_jobs() -> int:
    """AutoML jobs run at once by default: half the cores, at most one per 4 GiB of memory,
    at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = max(1, (cores or 1) // 2)
    memory = _memory_gib()
    if memory is not None:
        limit = min(limit, max(1, int(memory // _GIB_PER_JOB)))
    return limit


@dataclass
class ServiceConfig:
    """How one ``mlpilot serve`` runs.

    Parameters
    ----------
    data_dir:
        Holds the metadata database (unless ``store_url`` says otherwise), job staging folders
        for S3 output, runner logs and cached models.
    store_url:
        SQLAlchemy URL of the metadata store (default: SQLite in ``data_dir``).
    access_keys:
        Access key id → secret. When set, every request must carry a valid SigV4 signature
        by one of them; when empty, any (or no) signature is accepted.
    allowed_roots:
        Folders that local URIs (``file://``, absolute paths) in requests must resolve into,
        the data folder included; when empty, any local path is accepted.
    objective_modules:
        Python modules (each with its submodules) whose functions a job's user metric (tag
        ``mlpilot:Objective``) may name; a request naming any other module is a
        ValidationException. Empty: no user metric is run.
    kms_keys:
        KMS-style key name (key id, key ARN, ``alias/...``) → file holding a 256-bit key. A job
        whose ``OutputDataConfig.KmsKeyId`` names one has its model packages encrypted with
        it; naming any other key is a ValidationException.
    """

    data_dir: Path = field(default_factory=lambda: Path("mlpilot-data"))
    store_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    region: str = field(default_factory=lambda: os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    account_id: str = "000000000000"
    access_keys: dict[str, str] = field(default_factory=dict)
    allowed_roots: list[Path] = field(default_factory=list)
    #: AutoML jobs running at once; more wait in a FIFO queue (InProgress, Starting).
    max_concurrent_jobs: int = field(default_factory=default_max_concurrent_jobs)
    #: Jobs waiting in that queue; one more is ResourceLimitExceeded, as SageMaker's quota.
    max_queued_jobs: int = 100
    #: Endpoint instances (serve-model processes) of all endpoints together; an endpoint
    #: create or update that would need more is ResourceLimitExceeded, as SageMaker's quota.
    max_endpoint_instances: int = 16
    #: Worker processes per job (default: the machine's cores).
    job_parallelism: int | None = None
    #: Seconds without a heartbeat after which a job's runner is presumed dead.
    heartbeat_timeout: float = 30.0
    #: Requests per second per client (access key, or address when unsigned); over it,
    #: ThrottlingException. None: no limit.
    max_requests_per_second: float | None = None
    #: CreateAutoMLJob[V2] calls per minute per client; over it, ThrottlingException.
    max_job_creations_per_minute: float | None = None
    #: Seconds a client has to send a request's whole body; a slower one gets 408.
    body_timeout: float = 60.0
    #: Seconds a client has to send a request's line and headers; a slower one gets 408.
    header_timeout: float = 60.0
    kms_keys: dict[str, Path] = field(default_factory=dict)
    #: Deploy (CreateEndpoint, UpdateEndpoint, CreateTransformJob) a model made from a model
    #: package only when the package is Approved. Off: SageMaker deploys any package.
    require_approved_packages: bool = False
    objective_modules: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for module in self.objective_modules:
            if not _MODULE.fullmatch(module):
                raise ValueError(
                    f"--allow-objective-module {module!r}: give a Python module name "
                    "(e.g. mypkg or mypkg.metrics)"
                )
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.allowed_roots = [Path(root).expanduser().resolve() for root in self.allowed_roots]
        if not _ACCOUNT.match(self.account_id):
            raise ValueError(f"The account id must be 12 digits; got {self.account_id!r}")
        self.kms_keys = {
            name: Path(path).expanduser().resolve() for name, path in self.kms_keys.items()
        }
        # Read the keys now, so a bad name or key file stops the start rather than a job.
        self._keyring: Keyring | None = None
        if self.kms_keys:
            self._keyring = self.keyring
        for name in ("max_concurrent_jobs", "max_queued_jobs", "max_endpoint_instances"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}")
        for name in (
            "max_requests_per_second",
            "max_job_creations_per_minute",
            "body_timeout",
            "header_timeout",
        ):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be a positive number; got {value}")

    @property
    def keyring(self) -> Keyring:
        """The keys of :attr:`kms_keys`, read once (a ValueError names a bad name or file)."""
        if self._keyring is None:
            from mlpilot.package import Keyring

            self._keyring = Keyring.from_files(self.kms_keys)
        return self._keyring

    @property
    def database_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'mlpilot.db'}"

    @property
    def uri_roots(self) -> list[Path]:
        """Where local URIs may lead: nowhere in particular (empty) unless roots are set."""
        return [*self.allowed_roots, self.data_dir] if self.allowed_roots else []

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def arn(self, kind: str, name: str) -> str:
        # The real service lower-cases resource names in ARNs.
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{kind}/{name.lower()}"
