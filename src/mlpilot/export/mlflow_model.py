"""The MLflow "model from code" of an exported mlpilot model: MLflow copies this file into the
model folder and runs it on loading, which hands MLflow the pyfunc wrapper (no pickled
Python object in the folder)."""

from mlflow.models import set_model

from mlpilot.export._mlflow import MlpilotPyfunc

set_model(MlpilotPyfunc())
