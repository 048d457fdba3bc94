"""Small enums shared by every layer, spelled as SageMaker spells them."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CandidateStatus", "JobStatus", "Mode", "ProblemType", "SecondaryStatus"]


class ProblemType(StrEnum):
    BINARY = "BinaryClassification"
    MULTICLASS = "MulticlassClassification"
    REGRESSION = "Regression"

    @property
    def is_classification(self) -> bool:
        return self is not ProblemType.REGRESSION


class Mode(StrEnum):
    AUTO = "AUTO"
    ENSEMBLING = "ENSEMBLING"
    HYPERPARAMETER_TUNING = "HYPERPARAMETER_TUNING"


class JobStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


class CandidateStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


class SecondaryStatus(StrEnum):
    STARTING = "Starting"
    ANALYZING_DATA = "AnalyzingData"
    FEATURE_ENGINEERING = "FeatureEngineering"
    MODEL_TUNING = "ModelTuning"
    TRAINING_MODELS = "TrainingModels"
    MAX_CANDIDATES_REACHED = "MaxCandidatesReached"
    MAX_AUTOML_JOB_RUNTIME_REACHED = "MaxAutoMLJobRuntimeReached"
    CANDIDATE_DEFINITIONS_GENERATED = "CandidateDefinitionsGenerated"
    GENERATING_EXPLAINABILITY_REPORT = "GeneratingExplainabilityReport"
    GENERATING_MODEL_INSIGHTS_REPORT = "GeneratingModelInsightsReport"
    DEPLOYING_MODEL = "DeployingModel"
    COMPLETED = "Completed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
