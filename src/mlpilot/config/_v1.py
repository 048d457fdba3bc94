"""CreateAutoMLJob (V1) requests, read as the CreateAutoMLJobV2 requests they amount to.

V1 names the target in each input channel and the problem type at the top; V2 puts both in
``AutoMLProblemTypeConfig.TabularJobConfig``. V1 only describes tabular jobs.
"""

from __future__ import annotations

from typing import Any

from mlpilot.errors import ConfigError

__all__ = ["v2_request"]


def v2_request(request: dict[str, Any]) -> dict[str, Any]:
    """A CreateAutoMLJob (V1) request as the CreateAutoMLJobV2 request it amounts to."""
    channels = request["InputDataConfig"]
    targets = {c["TargetAttributeName"] for c in channels}
    if len(targets) != 1:
        raise ConfigError(
            f"Every channel must name the same TargetAttributeName; got {sorted(targets)}"
        )
    weights = {c.get("SampleWeightAttributeName") for c in channels}
    if len(weights) != 1:
        raise ConfigError("Every channel must name the same SampleWeightAttributeName")
    job = request.get("AutoMLJobConfig") or {}
    generation = job.get("CandidateGenerationConfig") or {}
    tabular: dict[str, Any] = {"TargetAttributeName": targets.pop()}
    weight = weights.pop()
    if weight:
        tabular["SampleWeightAttributeName"] = weight
    for key, value in (
        ("ProblemType", request.get("ProblemType")),
        ("CompletionCriteria", job.get("CompletionCriteria")),
        ("Mode", job.get("Mode")),
        ("FeatureSpecificationS3Uri", generation.get("FeatureSpecificationS3Uri")),
        ("GenerateCandidateDefinitionsOnly", request.get("GenerateCandidateDefinitionsOnly")),
    ):
        if value is not None:
            tabular[key] = value
    if generation.get("AlgorithmsConfig") is not None:
        tabular["CandidateGenerationConfig"] = {"AlgorithmsConfig": generation["AlgorithmsConfig"]}
    v2: dict[str, Any] = {
        "AutoMLJobName": request["AutoMLJobName"],
        "AutoMLJobInputDataConfig": [
            {
                k: v
                for k, v in c.items()
                if k in ("ChannelType", "ContentType", "CompressionType", "DataSource")
            }
            for c in channels
        ],
        "OutputDataConfig": request["OutputDataConfig"],
        "AutoMLProblemTypeConfig": {"TabularJobConfig": tabular},
        "RoleArn": request["RoleArn"],
    }
    for key in ("Tags", "AutoMLJobObjective", "ModelDeployConfig"):
        if request.get(key) is not None:
            v2[key] = request[key]
    if job.get("DataSplitConfig") is not None:
        v2["DataSplitConfig"] = job["DataSplitConfig"]
    if job.get("SecurityConfig") is not None:
        v2["SecurityConfig"] = job["SecurityConfig"]
    return v2
