"""Standing retraining policies kept by ``mlpilot serve``: one per endpoint, in the metadata
store (so they survive restarts), each round the same champion/challenger round as
``mlpilot retrain ENDPOINT --data`` (:func:`retrain_endpoint`), run in the service.

A round starts when new objects appear under the policy's input prefix (polled every
``IntervalSeconds``), every ``ScheduleSeconds`` when set, or on demand. Every step goes to the
audit log (``retrain_events``). Rounds run one at a time, on one thread of the service.

A round in progress is kept in its policy's record (``RoundInProgress``: its trigger and files,
the step it reached, the names it made) from the moment its files are taken until its decision
is logged. Rounds run on the keeper's thread only, so one found there when the keeper looks is
one a restart cut short: the endpoint goes back on the champion's config, an ``interrupted``
event is logged and the round runs again on the same files (at most ``MAX_INTERRUPTIONS``
times cut short, then ``failed``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from mlpilot.errors import MlpilotError
from mlpilot.service._errors import ServiceError, validation
from mlpilot.service._retrain import (
    CAPTURED_SINCE,
    CanarySettings,
    Control,
    InProcessControl,
    RetrainError,
    RetrainOutcome,
    challenger_model_name,
    check_holdout_columns,
    find_champion,
    restore_champion_config,
    retrain_endpoint,
    write_manifest,
)

__all__ = ["MAX_INTERRUPTIONS", "POLICY", "RetrainPolicies"]

log = logging.getLogger("mlpilot.service")
#: The policies' kind among the store's resources (named by their endpoint).
POLICY = "retrain-policy"
#: The settings a policy takes, with their defaults (None: no default; required when "!").
_SETTINGS: dict[str, Any] = {
    "WatchPrefix": "!",
    "Holdout": "!",
    "IntervalSeconds": 300.0,
    "ScheduleSeconds": None,
    "Margin": 0.0,
    "WithOldData": False,
    "Job": None,
    "CanaryWeight": 0.1,
    "CanarySeconds": 10.0,
    "MaxLatencyMs": None,
    "JobTimeoutSeconds": 3600.0,
    "GroundTruth": None,
    "CapturedSinceSeconds": CAPTURED_SINCE,
}
#: The steps a client may log for a round it ran itself (mlpilot retrain --data, promote).
ROUND_ACTIONS = frozenset(
    {
        "triggered",
        "champion",
        "challenger_started",
        "challenger_failed",
        "evaluated",
        "registered",
        "approved",
        "canary",
        "rolled_back",
        "promotion_failed",
        "promoted",
        "decision",
    }
)
#: How many times a restart may cut a round short before the round ends ``failed``.
MAX_INTERRUPTIONS = 2
#: What a round's steps tell its record in progress: step → {detail: RoundInProgress member}.
_PROGRESS = {
    "champion": {"endpoint_config": "ChampionEndpointConfig", "model": "ChampionModel"},
    "challenger_started": {"job": "ChallengerJob"},
    "registered": {"package": "ChallengerPackage", "model": "ChallengerModel"},
    "canary": {"endpoint_config": "CanaryEndpointConfig", "model": "ChallengerModel"},
}
_NUMBERS = {
    "IntervalSeconds": (1.0, 86400.0 * 366),
    "ScheduleSeconds": (1.0, 86400.0 * 366),
    "Margin": (0.0, math.inf),
    "CanarySeconds": (0.0, 86400.0),
    "MaxLatencyMs": (0.0, math.inf),
    "JobTimeoutSeconds": (1.0, 86400.0 * 7),
    "CapturedSinceSeconds": (1.0, 86400.0 * 366),
}


class RetrainPolicies:
    """The policies of one service: the operations on them, and the thread keeping them."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.store = service.store
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: What the rounds act through (tests put a scripted one in its place).
        self.control: Control = InProcessControl(service)

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._keep, name="retrain-policies", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            # A round in progress ends with the service's jobs (stopped) or is cut off.
            self._thread.join(timeout=2.0)

    # -- operations -----------------------------------------------------------------------
    def put(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the policy of ``endpoint``."""
        from mlpilot.data import list_objects, read_table
        from mlpilot.package import load_model

        settings = _settings(body)
        self.service.call("DescribeEndpoint", {"EndpointName": endpoint})  # its own error
        try:
            champion = find_champion(self.control, endpoint, settings["Job"])
            model = load_model(champion.model_data_url)
            columns = [str(c) for c in read_table(settings["Holdout"]).columns]
            check_holdout_columns(model, columns, settings["Holdout"])
        except RetrainError as exc:
            raise validation(str(exc)) from None
        except MlpilotError as exc:
            raise validation(f"{endpoint}: {exc}") from None
        try:
            seen = list_objects(settings["WatchPrefix"])
        except (MlpilotError, OSError):
            seen = []  # the prefix is made when the first data lands
        now = round(time.time(), 3)
        record = {
            "EndpointName": endpoint,
            "PolicyArn": self.service.config.arn(POLICY, endpoint),
            **settings,
            "Status": "Enabled",
            "CreationTime": now,
            "LastModifiedTime": now,
            "ChampionJob": champion.job,
            "Seen": seen,
            "NextCheckTime": now + settings["IntervalSeconds"],
            "NextScheduledTime": (
                now + settings["ScheduleSeconds"] if settings["ScheduleSeconds"] else None
            ),
            "RunRequested": False,
            "LastRound": None,
            "RoundInProgress": None,
        }
        with self._lock:
            earlier = self.store.get_resource(POLICY, endpoint)
            if earlier is None:
                self.store.insert_resource(POLICY, endpoint, record["PolicyArn"], record)
            else:
                record["CreationTime"] = earlier["CreationTime"]
                # The round running now goes on with the settings it started with.
                record["RoundInProgress"] = earlier.get("RoundInProgress")
                self.store.put_resource(POLICY, endpoint, record)
        self.store.add_retrain_event(
            endpoint,
            "policy_replaced" if earlier else "policy_created",
            {k: record[k] for k in _SETTINGS} | {"existing_objects": len(seen)},
        )
        self._wake.set()
        return _shown(record)

    def get(self, endpoint: str) -> dict[str, Any]:
        return _shown(self._policy(endpoint))

    def every(self) -> list[dict[str, Any]]:
        page = self.store.list_resources(POLICY, limit=10_000, descending=False)
        return [_shown(r) for r in page.rows]

    def delete(self, endpoint: str) -> None:
        self._policy(endpoint)
        with self._lock:
            self.store.delete_resource(POLICY, endpoint)
        self.store.add_retrain_event(endpoint, "policy_deleted", {})

    def run(self, endpoint: str) -> dict[str, Any]:
        """Ask for a round now (on the keeper's thread)."""
        with self._lock:
            record = self._policy(endpoint)
            record["RunRequested"] = True
            self.store.put_resource(POLICY, endpoint, record)
        self.store.add_retrain_event(endpoint, "run_requested", {})
        self._wake.set()
        return _shown(record)

    def record(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """Log the steps of a round a client ran on ``endpoint`` (``{"Events": [...]}``, each
        with its ``action``), as a policy's rounds are logged; marked ``source: command``."""
        events = body.get("Events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events:
            raise validation("Give Events: a list of steps, each with its action")
        for number, event in enumerate(events, start=1):
            if not isinstance(event, dict) or event.get("action") not in ROUND_ACTIONS:
                raise validation(
                    f"Event {number} needs an action among {', '.join(sorted(ROUND_ACTIONS))}"
                )
        self.service.call("DescribeEndpoint", {"EndpointName": endpoint})  # its own error
        for event in events:
            details = {k: v for k, v in event.items() if k not in ("action", "time")}
            # The service's clock orders the log, whoever ran the round.
            details["time"] = round(time.time(), 3)
            self.store.add_retrain_event(
                endpoint, event["action"], {**details, "source": "command"}
            )
        return {"Recorded": len(events)}

    def history(self, endpoint: str | None) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.store.retrain_events(endpoint)
        return events

    def _policy(self, endpoint: str) -> dict[str, Any]:
        record = self.store.get_resource(POLICY, endpoint)
        if record is None:
            raise ServiceError(
                "ResourceNotFound", f"No retraining policy for endpoint {endpoint}", 404
            )
        return record

    # -- the keeper -----------------------------------------------------------------------
    def _keep(self) -> None:
        while not self._stop.is_set():
            try:
                self.recover()
            except Exception:
                log.exception("Recovering interrupted retraining rounds failed")
            for record in self.every():
                if self._stop.is_set():
                    return
                try:
                    self.tick(record["EndpointName"])
                except Exception:
                    log.exception("Retraining policy of %s failed", record["EndpointName"])
            self._wake.wait(1.0)
            self._wake.clear()

    def tick(self, endpoint: str, now: float | None = None) -> RetrainOutcome | None:
        """Start the round of ``endpoint``'s policy when one is due; its outcome, or None."""
        from mlpilot.data import list_objects

        now = time.time() if now is None else now
        with self._lock:
            record = self.store.get_resource(POLICY, endpoint)
            if record is None or record.get("RoundInProgress"):
                return None  # one cut short: recover() runs it again first
            reason = "on demand" if record.get("RunRequested") else None
            scheduled = record.get("NextScheduledTime")
            if reason is None and scheduled is not None and now >= scheduled:
                reason = "schedule"
            new: list[str] = []
            found: list[str] = []
            if now >= record["NextCheckTime"] or reason:
                record["NextCheckTime"] = now + record["IntervalSeconds"]
                try:
                    found = list_objects(record["WatchPrefix"])
                except (MlpilotError, OSError):
                    found = []
                seen = set(record["Seen"])
                new = [uri for uri in found if uri not in seen]
                if new and reason is None:
                    reason = "new data"
            if reason is None:
                self.store.put_resource(POLICY, endpoint, record)
                return None
            files = new or found
            record["Seen"] = sorted(set(record["Seen"]) | set(new))
            record["RunRequested"] = False
            if record.get("ScheduleSeconds"):
                record["NextScheduledTime"] = now + record["ScheduleSeconds"]
            if files:
                # Written with Seen: the files are never marked seen without their round.
                record["RoundInProgress"] = {
                    "Trigger": reason,
                    "Files": files,
                    "StartTime": round(time.time(), 3),
                    "Step": "triggered",
                    "Interruptions": 0,
                }
            self.store.put_resource(POLICY, endpoint, record)
        if not files:
            self.store.add_retrain_event(
                endpoint, "skipped", {"trigger": reason, "reason": "no data under the prefix"}
            )
            return None
        return self._round(record, reason, files)

    def _round(self, record: dict[str, Any], reason: str, files: list[str]) -> RetrainOutcome:
        from mlpilot.data import read_table

        endpoint = record["EndpointName"]
        progress = record.get("RoundInProgress") or {}
        interruptions = int(progress.get("Interruptions") or 0)
        manifest = progress.get("Manifest")
        if not manifest:
            folder = self.service.config.data_dir / "retrain"
            folder.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            manifest = str(folder / f"{endpoint}-{stamp}.manifest")
        self._progress(endpoint, {"Step": "triggered", "Manifest": manifest})
        again = {"attempt": interruptions + 1, "resumed": True} if interruptions else {}
        self.store.add_retrain_event(
            endpoint, "triggered", {"trigger": reason, "files": files, **again}
        )

        def on_step(step: dict[str, Any]) -> None:
            names = _PROGRESS.get(step["action"], {})
            self._progress(
                endpoint,
                {"Step": step["action"]}
                | {member: step[key] for key, member in names.items() if step.get(key)},
            )
            self.store.add_retrain_event(endpoint, step["action"], step)

        try:
            write_manifest(files, manifest)
            outcome = retrain_endpoint(
                self.control,
                endpoint,
                data=manifest,
                data_type="ManifestFile",
                holdout=read_table(record["Holdout"]),
                margin=float(record["Margin"]),
                with_old_data=bool(record["WithOldData"]),
                job=record.get("Job"),
                canary=CanarySettings(
                    float(record["CanaryWeight"]),
                    float(record["CanarySeconds"]),
                    record.get("MaxLatencyMs"),
                ),
                job_timeout=float(record["JobTimeoutSeconds"]),
                ground_truth=record.get("GroundTruth"),
                captured_since=float(record.get("CapturedSinceSeconds") or CAPTURED_SINCE),
                keyring=self.service.config.keyring if self.service.config.kms_keys else None,
                on_step=on_step,
                challenger_job=progress.get("ChallengerJob") if interruptions else None,
            )
        except MlpilotError as exc:
            outcome = RetrainOutcome(decision="failed", reason=str(exc))
        except Exception as exc:  # a bug must not leave the round in progress for ever
            log.exception("Retraining round of %s failed", endpoint)
            outcome = RetrainOutcome(decision="failed", reason=f"{type(exc).__name__}: {exc}")
        if outcome.decision == "failed" and self._stop.is_set():
            # Cut short by the service stopping (its jobs are stopped): the next start
            # recovers the round instead of deciding it.
            return outcome
        self._decide(endpoint, outcome)
        return outcome

    def _decide(self, endpoint: str, outcome: RetrainOutcome) -> None:
        """Log the round's decision and clear the round in progress."""
        summary = {k: v for k, v in vars(outcome).items() if k != "steps"}
        self.store.add_retrain_event(endpoint, "decision", summary)
        with self._lock:
            current = self.store.get_resource(POLICY, endpoint)
            if current is not None:
                current["LastRound"] = {"time": round(time.time(), 3), **summary}
                current["LastModifiedTime"] = round(time.time(), 3)
                current["RoundInProgress"] = None
                self.store.put_resource(POLICY, endpoint, current)

    def _progress(self, endpoint: str, changes: dict[str, Any]) -> None:
        with self._lock:
            current = self.store.get_resource(POLICY, endpoint)
            if current is None or not current.get("RoundInProgress"):
                return  # the policy was deleted while its round ran
            current["RoundInProgress"] = {**current["RoundInProgress"], **changes}
            self.store.put_resource(POLICY, endpoint, current)

    # -- rounds cut short by a restart ----------------------------------------------------
    def recover(self) -> list[RetrainOutcome]:
        """Put right every round found in progress (one a restart cut short: rounds run on
        the keeper's thread, which is not in one now): each endpoint back on its champion's
        config first, then each round run again. The outcomes of the rounds run again."""
        found = [
            r["EndpointName"]
            for r in self.store.list_resources(POLICY, limit=10_000, descending=False).rows
            if r.get("RoundInProgress")
        ]
        for endpoint in found:
            self._interrupted(endpoint)
        outcomes = []
        for endpoint in found:
            with self._lock:
                record = self.store.get_resource(POLICY, endpoint)
            progress = (record or {}).get("RoundInProgress")
            if progress and progress.get("Step") == "interrupted":
                outcomes.append(self._round(record, progress["Trigger"], progress["Files"]))
        return outcomes

    def _interrupted(self, endpoint: str) -> None:
        """The champion's config back on the endpoint, what the cut-short attempt left behind
        put aside, the ``interrupted`` event; ``failed`` when that was once too often."""
        with self._lock:
            record = self.store.get_resource(POLICY, endpoint)
        progress = dict((record or {}).get("RoundInProgress") or {})
        if not progress:
            return
        if self._decided_since(endpoint, float(progress.get("StartTime") or 0.0)):
            # Stopped between logging its decision and clearing the round: nothing to redo.
            with self._lock:
                current = self.store.get_resource(POLICY, endpoint)
                if current is not None:
                    current["RoundInProgress"] = None
                    self.store.put_resource(POLICY, endpoint, current)
            return
        step = progress.get("Step")
        details: dict[str, Any] = {
            "step": step,
            "attempt": int(progress.get("Interruptions") or 0) + 1,
            "trigger": progress.get("Trigger"),
            "files": progress.get("Files"),
            "challenger_job": progress.get("ChallengerJob"),
        }
        champion_config = progress.get("ChampionEndpointConfig")
        restored = False
        if champion_config:
            try:
                restored = restore_champion_config(self.control, endpoint, champion_config)
            except RetrainError as exc:
                details["restore_failed"] = str(exc)
            details["endpoint_config"] = champion_config
            details["restored"] = restored
        reusable = self._put_aside(progress, step, ok="restore_failed" not in details)
        if step == "interrupted":
            # Cut short again before it ran again: already counted.
            self._progress(endpoint, {"ChallengerJob": reusable})
            return
        interruptions = int(progress.get("Interruptions") or 0) + 1
        self.store.add_retrain_event(endpoint, "interrupted", details)
        if interruptions >= MAX_INTERRUPTIONS:
            self._decide(
                endpoint,
                RetrainOutcome(
                    decision="failed",
                    champion=progress.get("ChampionModel"),
                    challenger=progress.get("ChallengerModel") or progress.get("ChallengerJob"),
                    reason=(
                        f"the round was cut short by a restart of the service {interruptions} "
                        f"times (the last at step {step}); it is not run again"
                    ),
                ),
            )
            return
        self._progress(
            endpoint,
            {"Step": "interrupted", "Interruptions": interruptions, "ChallengerJob": reusable},
        )

    def _put_aside(self, progress: dict[str, Any], step: str | None, ok: bool) -> str | None:
        """What a cut-short attempt registered is rejected and its challenger's model removed,
        so that its challenger job (when still usable) is scored and registered afresh; that
        job's name, or None when the next attempt must start its own."""
        control = self.control
        package = progress.get("ChallengerPackage")
        if package:
            try:
                found = control.call("DescribeModelPackage", ModelPackageName=package)
                if found.get("ModelApprovalStatus") != "Rejected":  # a loss keeps its reason
                    control.call(
                        "UpdateModelPackage",
                        ModelPackageArn=package,
                        ModelApprovalStatus="Rejected",
                        ApprovalDescription=(
                            f"mlpilot retrain: the round was cut short by a restart at step {step}"
                        ),
                    )
            except RetrainError as exc:
                log.warning("Could not reject %s: %s", package, exc)
        job = progress.get("ChallengerJob")
        if not job:
            return None
        model = challenger_model_name(job)
        try:
            control.call("DescribeModel", ModelName=model)
        except RetrainError:
            return job  # none made yet
        if ok:
            try:
                control.call("DeleteModel", ModelName=model)
                return job
            except RetrainError as exc:
                log.warning("Could not delete model %s: %s", model, exc)
        return None

    def _decided_since(self, endpoint: str, since: float) -> bool:
        """Whether the policy's last logged step since ``since`` is a decision (a client's
        rounds, logged beside, do not count)."""
        own = [
            e
            for e in self.store.retrain_events(endpoint)
            if e.get("source") != "command" and e["time"] >= since
        ]
        return bool(own) and own[-1]["action"] == "decision"


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - set(_SETTINGS))
    if unknown:
        raise validation(
            f"Unknown retraining policy setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(_SETTINGS)}"
        )
    out: dict[str, Any] = {}
    for key, default in _SETTINGS.items():
        value = body.get(key, None if default == "!" else default)
        if value is None and default == "!":
            raise validation(f"A retraining policy needs {key}")
        if key in _NUMBERS and value is not None:
            low, high = _NUMBERS[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise validation(f"{key} must be a number, not {value!r}")
            if not low <= float(value) <= high:
                raise validation(f"{key} must be between {low:g} and {high:g}, not {value:g}")
            value = float(value)
        out[key] = value
    if not 0.0 < float(out["CanaryWeight"]) < 1.0:
        raise validation(f"CanaryWeight must be between 0 and 1, not {out['CanaryWeight']}")
    for key in ("WatchPrefix", "Holdout"):
        if not isinstance(out[key], str) or not out[key]:
            raise validation(f"{key} must be a path or s3:// URI")
    if out["GroundTruth"] is not None and (
        not isinstance(out["GroundTruth"], str) or not out["GroundTruth"]
    ):
        raise validation("GroundTruth must be a path or s3:// URI")
    if not isinstance(out["WithOldData"], bool):
        raise validation("WithOldData must be true or false")
    return out


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    """A policy as the API shows it: the objects it has seen counted, not listed."""
    out = {k: v for k, v in record.items() if k != "Seen"}
    out["SeenObjects"] = len(record.get("Seen") or ())
    return out
