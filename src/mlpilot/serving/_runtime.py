"""An endpoint's data plane: production variants, each a pool of ``mlpilot serve-model``
processes on 127.0.0.1, with SageMaker's routing (target variant, else weighted random choice,
then round robin over the variant's instances) and per-variant metrics.

Every instance is a real container process speaking the container contract over HTTP, so what
an endpoint serves is exactly what ``mlpilot serve-model`` serves on any container platform.

Here: :class:`EndpointRuntime`, which changes the variant set (start, update, health checks,
stop) and routes invocations. A variant's parts are in :mod:`._variants`, the processes and
how they start and stop in :mod:`._instances`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mlpilot.serving._codec import InvocationResult
from mlpilot.serving._errors import (
    ContainerFailure,
    EndpointStartError,
    EndpointUnavailableError,
    UnknownVariantError,
)
from mlpilot.serving._explainer import EXPLANATIONS_HEADER
from mlpilot.serving._instances import (
    STOP_GRACE_S,
    Instance,
    kill_all,
    launch_instance,
    stop_processes,
)
from mlpilot.serving._source import resolve_model
from mlpilot.serving._variants import Variant, VariantSpec, VariantStats, check_specs
from mlpilot.serving._wire import ConnectionPool, WireResponse

__all__ = ["EndpointRuntime"]

log = logging.getLogger("mlpilot.serving")


@dataclass
class _Attempt:
    """What one invocation already tried."""

    retried: bool = False


class EndpointRuntime:
    """The running variants of one endpoint.

    Parameters
    ----------
    seed:
        Seeds the weighted variant choice, so a sequence of invocations routes repeatably.
    startup_timeout:
        Seconds an instance has to answer ``/ping`` (SageMaker allows 4 minutes).
    invocation_timeout:
        Seconds a container has to answer an invocation (SageMaker: 60).
    ping_timeout:
        Seconds for one ``/ping`` answer (SageMaker: 2).
    monitor_interval:
        Seconds between background health checks that restart dead instances; None: only when
        :meth:`check_health` is called.
    cache_dir:
        Where model archives are unpacked (see :func:`mlpilot.serving.resolve_model`).
    work_dir:
        Where instance logs and port files go; a temporary folder, removed by :meth:`stop`,
        when omitted.
    stats_window:
        Recent invocations the latency percentiles are computed over.
    threads_per_instance:
        BLAS/OpenMP threads of each instance unless its environment sets them.
    python:
        The interpreter that runs the instances (this one by default).

    All methods are thread-safe; :meth:`ainvoke` is the asyncio twin of :meth:`invoke`. Changes
    (:meth:`start`, :meth:`update_weights_and_capacities`, :meth:`update_variants`,
    :meth:`check_health`, :meth:`stop`) block until done and run one at a time; invocations
    continue meanwhile.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        startup_timeout: float = 240.0,
        invocation_timeout: float = 60.0,
        ping_timeout: float = 2.0,
        monitor_interval: float | None = 5.0,
        cache_dir: str | Path | None = None,
        work_dir: str | Path | None = None,
        stats_window: int = 1000,
        threads_per_instance: int = 1,
        python: str | None = None,
    ) -> None:
        self.seed = seed
        self.startup_timeout = startup_timeout
        self.invocation_timeout = invocation_timeout
        self.ping_timeout = ping_timeout
        self.monitor_interval = monitor_interval
        self.cache_dir = cache_dir
        self.stats_window = stats_window
        self.threads_per_instance = threads_per_instance
        self.python = python or sys.executable
        self._own_work_dir = work_dir is None
        self._work = Path(work_dir or tempfile.mkdtemp(prefix="mlpilot-endpoint-"))
        self._work.mkdir(parents=True, exist_ok=True)
        self._variants: dict[str, Variant] = {}
        self._stats: dict[str, VariantStats] = {}
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._update_lock = threading.RLock()
        self._timeout = httpx.Timeout(invocation_timeout, connect=2.0)
        self._client = httpx.Client(timeout=self._timeout, limits=httpx.Limits(max_connections=256))
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, ConnectionPool
        ] = weakref.WeakKeyDictionary()
        self._clients_lock = threading.Lock()
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._finalizer = weakref.finalize(self, kill_all, self._processes)
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._monitor: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, variants: Sequence[VariantSpec]) -> None:
        """Start every variant's instances and wait until all answer ``/ping``.

        Raises :class:`EndpointStartError` (the endpoint's FailureReason) after stopping what
        was started, or a one-line error for a model that cannot be found.
        """
        check_specs(variants)
        with self._update_lock:
            if self._stopped.is_set():
                raise EndpointUnavailableError("the endpoint runtime was stopped")
            self._variants = self._launch(variants)
        if self.monitor_interval and self._monitor is None:
            self._monitor = threading.Thread(
                target=self._watch, name="endpoint-monitor", daemon=True
            )
            self._monitor.start()

    def update_variants(self, variants: Sequence[VariantSpec]) -> None:
        """Replace the variant set without downtime (UpdateEndpoint): start the new instances,
        switch traffic once all answer ``/ping``, then stop the old ones. If the new ones fail,
        the old set keeps serving and :class:`EndpointStartError` is raised. Metrics continue
        for variants that keep their name."""
        check_specs(variants)
        with self._update_lock:
            new = self._launch(variants)
            old = self._variants
            self._variants = new
            self._retire([i for v in old.values() for i in v.instances])

    def update_weights_and_capacities(self, desired: Sequence[Mapping[str, Any]]) -> None:
        """Apply ``DesiredWeightsAndCapacities`` items (``VariantName``, optional
        ``DesiredWeight``, ``DesiredInstanceCount``). New instances are started (and answer
        ``/ping``) before any change is applied; surplus ones stop after they leave the pool.
        Raises :class:`UnknownVariantError` (nothing changed) or :class:`EndpointStartError`."""
        with self._update_lock:
            variants = self._variants
            plan: list[tuple[Variant, float | None, int | None]] = []
            for item in desired:
                name = item.get("VariantName")
                if name not in variants:
                    raise UnknownVariantError(self._unknown(name))
                weight = item.get("DesiredWeight")
                count = item.get("DesiredInstanceCount")
                if weight is not None and (not math.isfinite(float(weight)) or float(weight) < 0):
                    raise EndpointStartError(f"DesiredWeight {weight!r} of {name!r} must be >= 0")
                if count is not None and (not isinstance(count, int) or count < 0):
                    raise EndpointStartError(
                        f"DesiredInstanceCount {count!r} of {name!r} must be a whole number >= 0"
                    )
                plan.append((variants[name], weight, count))
            added: dict[str, list[Instance]] = {}
            try:
                for variant, _, count in plan:
                    extra = (count or 0) - len(variant.instances)
                    if count is not None and extra > 0:
                        added[variant.name] = [self._spawn(variant) for _ in range(extra)]
                self._wait_ready([i for group in added.values() for i in group])
            except BaseException:
                self._retire([i for group in added.values() for i in group])
                raise
            retired: list[Instance] = []
            for variant, weight, count in plan:
                if weight is not None:
                    variant.weight = float(weight)
                if count is None:
                    continue
                if variant.name in added:
                    variant.instances = variant.instances + tuple(added[variant.name])
                elif count < len(variant.instances):
                    retired.extend(variant.instances[count:])
                    variant.instances = variant.instances[:count]
            self._retire(retired)

    def check_health(self) -> list[str]:
        """Probe every instance; restart those that exited or failed two probes in a row.

        Returns one line per problem found (and what was done about it).
        """
        report: list[str] = []
        with self._update_lock:
            for variant in list(self._variants.values()):
                for instance in variant.instances:
                    problem = self._probe(instance)
                    if problem is None:
                        continue
                    report.append(self._replace(variant, instance, problem))
        return report

    def stop(self) -> None:
        """Stop every instance (SIGTERM, then SIGKILL after 10 s) and release the clients."""
        self._stopped.set()
        self._wake.set()
        with self._update_lock:
            variants, self._variants = self._variants, {}
            stop_processes([i.process for v in variants.values() for i in v.instances], 10.0)
            kill_all(self._processes)
            self._processes.clear()
        self._client.close()
        with self._clients_lock:
            clients = list(self._async_clients.items())
            self._async_clients.clear()
        for loop, client in clients:
            if loop.is_running() and not loop.is_closed():
                loop.call_soon_threadsafe(client.close)
        if self._own_work_dir:
            shutil.rmtree(self._work, ignore_errors=True)

    def __enter__(self) -> EndpointRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- invocations ----------------------------------------------------------------------------
    def invoke(
        self,
        body: bytes,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        target_variant: str | None = None,
        custom_attributes: str | None = None,
        enable_explanations: str | None = None,
    ) -> InvocationResult:
        """Send one request to a variant's instance and return its answer (any status: a
        ``status`` ≥ 400 is the container's error, for InvokeEndpoint's ModelError).

        Raises :class:`UnknownVariantError` for an unknown ``target_variant``,
        :class:`EndpointUnavailableError` when no instance can take it, and
        :class:`ContainerFailure` when the container gives no answer in time.
        """
        variant = self._choose(target_variant)
        headers = self._headers(content_type, accept, custom_attributes, enable_explanations)
        for instance, attempt in self._attempts(variant):
            started = time.perf_counter()
            try:
                response = self._client.post(
                    f"{instance.url}/invocations", content=body, headers=headers
                )
            except httpx.TransportError as exc:
                self._retry_or_raise(variant, instance, exc, attempt)
                continue
            return self._answer(variant, instance, response, time.perf_counter() - started)
        raise AssertionError("_attempts raises once no instance is left to try")

    async def ainvoke(
        self,
        body: bytes,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        target_variant: str | None = None,
        custom_attributes: str | None = None,
        enable_explanations: str | None = None,
    ) -> InvocationResult:
        """:meth:`invoke` for asyncio callers (kept-alive connections per event loop)."""
        variant = self._choose(target_variant)
        headers = self._headers(content_type, accept, custom_attributes, enable_explanations)
        client = self._async_client()
        for instance, attempt in self._attempts(variant):
            started = time.perf_counter()
            try:
                response = await client.post(instance.url or "", "/invocations", body, headers)
            except httpx.TransportError as exc:
                self._retry_or_raise(variant, instance, exc, attempt)
                continue
            return self._answer(variant, instance, response, time.perf_counter() - started)
        raise AssertionError("_attempts raises once no instance is left to try")

    # -- facts ----------------------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per variant: ``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors``
        (including invocations the container never answered), ``ModelLatency`` in µs
        (``Count``, ``Sum``, ``Minimum``, ``Maximum``, ``Average``, and ``p50``/``p99`` over the
        last ``stats_window`` invocations), ``CurrentWeight`` and ``CurrentInstanceCount``."""
        out = {}
        for name, variant in self._variants.items():
            out[name] = {
                **variant.stats.snapshot(),
                "CurrentWeight": variant.weight,
                "CurrentInstanceCount": len(variant.instances),
            }
        return out

    def variants(self) -> list[dict[str, Any]]:
        """The running variants: name, weight, instance count, model folder and instances."""
        return [
            {
                "VariantName": v.name,
                "CurrentWeight": v.weight,
                "CurrentInstanceCount": len(v.instances),
                "HealthyInstanceCount": sum(
                    1 for i in v.instances if i.healthy and i.process.poll() is None
                ),
                "Model": str(v.model_dir),
                "Environment": dict(v.spec.environment),
                "Instances": [i.describe() for i in v.instances],
            }
            for v in self._variants.values()
        ]

    @property
    def running(self) -> bool:
        return bool(self._variants) and not self._stopped.is_set()

    # -- routing --------------------------------------------------------------------------------
    def _unknown(self, name: Any) -> str:
        known = ", ".join(repr(n) for n in self._variants) or "none"
        return f"variant {name!r} does not exist (variants: {known})"

    def _choose(self, target: str | None) -> Variant:
        variants = self._variants
        if not variants:
            raise EndpointUnavailableError("the endpoint has no running variants")
        if target is not None:
            variant = variants.get(target)
            if variant is None:
                raise UnknownVariantError(self._unknown(target))
            return variant
        candidates = [v for v in variants.values() if v.weight > 0 and v.instances]
        if not candidates:
            raise EndpointUnavailableError(
                "no variant can take traffic: every weight is 0 or has no instances"
            )
        total = sum(v.weight for v in candidates)
        with self._rng_lock:
            point = self._rng.random() * total
        for variant in candidates:
            point -= variant.weight
            if point < 0:
                return variant
        return candidates[-1]

    def _attempts(self, variant: Variant) -> Iterator[tuple[Instance, _Attempt]]:
        """The instances one invocation tries in turn (another after a failed try, each
        instance and then two more at most); raises EndpointUnavailableError after the last."""
        attempt = _Attempt()
        for _ in range(len(variant.instances) + 2):
            yield self._instance(variant), attempt
        raise EndpointUnavailableError(f"variant {variant.name!r} has no reachable instance")

    def _instance(self, variant: Variant) -> Instance:
        instance = variant.pick()
        if instance is None or instance.url is None:
            raise EndpointUnavailableError(
                f"variant {variant.name!r} has no healthy instance (restarting)"
                if variant.instances
                else f"variant {variant.name!r} has no instances"
            )
        return instance

    @staticmethod
    def _headers(
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None,
        enable_explanations: str | None = None,
    ) -> dict[str, str]:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        if custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        if enable_explanations is not None:
            headers[EXPLANATIONS_HEADER] = enable_explanations
        return headers

    @staticmethod
    def _answer(
        variant: Variant,
        instance: Instance,
        response: httpx.Response | WireResponse,
        seconds: float,
    ) -> InvocationResult:
        variant.stats.record(response.status_code, seconds)
        instance.invocations += 1
        return InvocationResult(
            response.status_code,
            response.content,
            response.headers.get("content-type", ""),
            variant.name,
        )

    def _lost(self, instance: Instance) -> None:
        instance.healthy = False
        self._wake.set()

    def _retry_or_raise(
        self, variant: Variant, instance: Instance, exc: httpx.TransportError, attempt: _Attempt
    ) -> None:
        """Return to try again (predictions are idempotent), or raise ContainerFailure.

        Another instance is tried when this one refused the connection or has exited; a
        connection the container closed while alive (a stale keep-alive) is retried once.
        """
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            self._lost(instance)  # never reached the container
            return
        if _exited(instance.process):
            self._lost(instance)
            return
        if not isinstance(exc, httpx.TimeoutException) and not attempt.retried:
            attempt.retried = True
            return
        variant.stats.record(0, None)
        if isinstance(exc, httpx.TimeoutException):
            message = f"the container did not answer within {self.invocation_timeout:g} s"
        else:
            message = f"the container closed the connection ({type(exc).__name__})"
        raise ContainerFailure(message, variant=variant.name) from None

    def _async_client(self) -> ConnectionPool:
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            client = self._async_clients.get(loop)
            if client is None:
                client = ConnectionPool(connect_timeout=2.0, timeout=self.invocation_timeout)
                self._async_clients[loop] = client
        return client

    # -- processes ------------------------------------------------------------------------------
    def _launch(self, specs: Sequence[VariantSpec]) -> dict[str, Variant]:
        """Resolve models, start every instance, wait for all; all-or-nothing."""
        variants: dict[str, Variant] = {}
        started: list[Instance] = []
        try:
            for spec in specs:
                model_dir = resolve_model(spec.model, cache_dir=self.cache_dir)
                stats = self._stats.get(spec.name) or VariantStats(self.stats_window)
                variant = Variant(spec, model_dir, (), stats, itertools.count(1))
                instances = tuple(self._spawn(variant) for _ in range(spec.instance_count))
                started.extend(instances)
                variant.instances = instances
                variants[spec.name] = variant
            self._wait_ready(started)
        except BaseException:
            self._retire(started)
            raise
        for name, variant in variants.items():
            self._stats[name] = variant.stats
        return variants

    def _spawn(self, variant: Variant) -> Instance:
        instance = launch_instance(
            variant.name,
            next(variant.numbers),
            variant.model_dir,
            variant.spec.environment,
            work_dir=self._work,
            python=self.python,
            threads=self.threads_per_instance,
            cache_dir=self.cache_dir,
        )
        self._processes.add(instance.process)
        return instance

    def _ping(self, instance: Instance) -> bool:
        try:
            response = self._client.get(f"{instance.url}/ping", timeout=self.ping_timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _wait_ready(self, instances: Sequence[Instance]) -> None:
        """Until every instance answers ``/ping``; EndpointStartError naming the first that
        exits or is not ready within ``startup_timeout``."""
        pending = list(instances)
        deadline = time.monotonic() + self.startup_timeout
        while pending:
            for instance in list(pending):
                code = instance.process.poll()
                if code is not None:
                    said = instance.last_words()
                    raise EndpointStartError(
                        f"{instance.label}: the container exited with code {code} before "
                        f"answering /ping" + (f": {said}" if said else "")
                    )
                if instance.read_port() and self._ping(instance):
                    pending.remove(instance)
            if not pending:
                return
            if time.monotonic() > deadline:
                instance = pending[0]
                raise EndpointStartError(
                    f"{instance.label}: the container did not answer /ping within "
                    f"{self.startup_timeout:g} s"
                )
            time.sleep(0.05)

    def _retire(self, instances: Sequence[Instance]) -> None:
        processes = [i.process for i in instances]
        stop_processes(processes, STOP_GRACE_S)
        for instance in instances:
            self._processes.discard(instance.process)
            instance.port_file.unlink(missing_ok=True)

    def _probe(self, instance: Instance) -> str | None:
        if _exited(instance.process):
            # poll() says "running" while another thread waits on the process: that thread
            # reaps it now, and wait() reads the code it stores.
            try:
                code: int | None = instance.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
            return "exited" if code is None else f"exited with code {code}"
        if instance.read_port() and self._ping(instance):
            instance.strikes = 0
            instance.healthy = True
            return None
        instance.strikes += 1
        instance.healthy = False
        if instance.strikes >= 2:
            return "did not answer /ping twice in a row"
        return None

    def _replace(self, variant: Variant, instance: Instance, problem: str) -> str:
        line = f"{instance.label} (pid {instance.process.pid}) {problem}"
        try:
            fresh = self._spawn(variant)
            try:
                self._wait_ready([fresh])
            except BaseException:
                self._retire([fresh])
                raise
        except Exception as exc:
            instance.healthy = False
            log.warning("%s; restart failed: %s", line, exc)
            return f"{line}; restart failed: {exc}"
        variant.instances = tuple(fresh if i is instance else i for i in variant.instances)
        self._retire([instance])
        log.warning("%s; replaced by instance %d", line, fresh.number)
        return f"{line}; replaced by instance {fresh.number} ({fresh.url})"

    def _watch(self) -> None:
        interval = self.monitor_interval or 5.0
        while not self._stopped.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                self.check_health()
            except Exception:  # the monitor must outlive any one failed check
                log.exception("endpoint health check failed")


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the instance's process has ended. ``poll()`` alone can say "running" for a dead
    process while another thread holds the Popen's wait lock, so a killed process's zombie
    (or its absence) is also read from /proc where there is one."""
    if process.poll() is not None:
        return True
    if not os.path.exists("/proc/self/stat"):
        return False
    try:
        with open(f"/proc/{process.pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True  # no such process any more
