"""Writes an ENSEMBLING job's candidate-definition notebook.

Autopilot writes this notebook for HPO jobs only; an ENSEMBLING job's is a white box of the
ensemble it built: each base model's pipeline and hyperparameters, the stackers, and the
ensemble weights as literal Python, trained by :class:`~mlpilot.ensemble.EnsembleReplay` on the
job's prepared data and folds. Unedited, it rebuilds the out-of-fold predictions the job
weighted and prints the ensemble's objective beside the job's (equal to 1e-9): the members the
job's clock cut short train what they kept, and the weights are the job's, not selected again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from mlpilot._version import __version__
from mlpilot.ensemble import EnsembleReplay
from mlpilot.reports._build_candidates import _py
from mlpilot.reports._build_exploration import KERNELSPEC

__all__ = ["EnsembleModel", "EnsembleNotebookFacts", "build_ensemble_notebook"]

#: How far the rebuilt objective may be from the job's.
TOLERANCE = 1e-9


@dataclass
class EnsembleModel:
    """One model of the ensemble as the notebook defines it."""

    name: str
    layer: int
    algorithm: str
    params: dict[str, Any]
    preprocessing: dict[str, Any]
    out_of_bag: bool = False
    time_cuts: dict[int, int] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    keep_features: bool = True
    job_value: float | None = None

    def definition(self) -> dict[str, Any]:
        """The literal the notebook writes (what :class:`EnsembleReplay` takes)."""
        out: dict[str, Any] = {
            "algorithm": self.algorithm,
            "params": self.params,
            "preprocessing": self.preprocessing,
        }
        if self.layer == 1:
            out["out_of_bag"] = self.out_of_bag
        else:
            out["inputs"] = self.inputs
            out["keep_features"] = self.keep_features
        out["time_cuts"] = self.time_cuts
        return out


@dataclass
class EnsembleNotebookFacts:
    """What the ENSEMBLING notebook says about its job."""

    job_name: str
    data_dir: str  # relative to the notebook's folder
    problem_type: str
    objective: str
    seed: int
    eval_folds: tuple[int, ...]
    threads: int
    validation: str
    models: list[EnsembleModel]
    weights: dict[str, float]
    threshold: float | None
    best_name: str
    best_value: float
    final_note: str = ""
    notes: list[str] = field(default_factory=list)
    #: The package's ``Calibration`` (``{"Temperature": T, "Floor": eps}``), None for none.
    calibration: dict[str, float] | None = None


def _definition_cell(variable: str, model: EnsembleModel) -> str:
    lines = [f"{variable}[{_py(model.name)}] = {{"]
    for key, value in model.definition().items():
        lines.append(f"    {_py(key)}: {_py(value)},")
    lines.append("}")
    return "\n".join(lines)


def _digest(facts: EnsembleNotebookFacts) -> str:
    base = {m.name: m.definition() for m in facts.models if m.layer == 1}
    stackers = {m.name: m.definition() for m in facts.models if m.layer == 2}
    return EnsembleReplay.digest(base, stackers, facts.weights, facts.threshold, facts.calibration)


def build_ensemble_notebook(facts: EnsembleNotebookFacts) -> Any:
    base = [m for m in facts.models if m.layer == 1]
    stackers = [m for m in facts.models if m.layer == 2]
    cut = [m.name for m in facts.models if m.time_cuts]
    intro = (
        f"# Candidate definitions: {facts.job_name} (ENSEMBLING)\n\n"
        f"A white box of the ensemble the job built for its {facts.problem_type} problem: "
        f"{len(base)} base model(s)"
        + (f", {len(stackers)} stacker(s)" if stackers else "")
        + f" and the weights of their blend, its best candidate `{facts.best_name}` "
        f"({facts.objective} {facts.best_value:.6g} on the out-of-fold predictions).\n\n"
        "Every model is plain Python below: edit a hyperparameter, drop a model or change a "
        "weight and run the notebook again. Unedited, it trains every model again on the "
        "job's prepared data and folds, in this process, and rebuilds the job's objective "
        f"value to {TOLERANCE:g}.\n\n"
        f"**Validation.** {facts.validation}\n\n"
    )
    if facts.final_note:
        intro += f"**The packaged model.** {facts.final_note}\n\n"
    intro += (
        "**Time.** Nothing here is decided by the clock again: "
        + (
            f"the bag members the job's time limit cut short ({', '.join(cut)}) stop where "
            "they stopped (`time_cuts`: by fold, the look at the clock that found the time "
            "spent, e.g. the boosting round)"
            if cut
            else "no model of this ensemble was cut short by the job's time limit"
        )
        + ", and the weights are the job's (a cell below selects them again, for comparison)."
    )
    if facts.notes:
        intro += "\n\n**The job's notes.**\n\n" + "\n".join(f"- {n}" for n in facts.notes)
    cells: list[Any] = [
        new_markdown_cell(intro),
        new_markdown_cell(
            "## Setup\n\nThe job's prepared table and fold plan, saved beside this notebook "
            "(paths relative to it). Every model trains with the job's seed and threads."
        ),
        new_code_cell(
            "import numpy as np\n\n"
            "from mlpilot.ensemble import EnsembleReplay\n\n"
            f"JOB_NAME = {_py(facts.job_name)}\n"
            f"DATA = {_py(facts.data_dir)}  # table.parquet, profile.json, folds.npy\n"
            f"OBJECTIVE = {_py(facts.objective)}\n"
            f"SEED = {facts.seed}\n"
            f"EVAL_FOLDS = {_py(tuple(facts.eval_folds))}\n"
            f"THREADS = {facts.threads}\n"
            "replay = EnsembleReplay(\n"
            "    DATA, objective=OBJECTIVE, seed=SEED, eval_folds=EVAL_FOLDS, threads=THREADS\n"
            ")\n"
            'print(f"{len(replay.rows):,} rows scored out of fold, folds {EVAL_FOLDS}")',
            metadata={"tags": ["setup"]},
        ),
        new_markdown_cell(
            "## Base models (layer 1)\n\nEach is a bag: one model per fold, trained on the "
            "other folds (`out_of_bag`: a forest fit once on every row and scored out of "
            "bag). `preprocessing` is the feature pipeline (see "
            "`mlpilot.features.PreprocessingOptions`), `params` the model's hyperparameters."
        ),
        new_code_cell("BASE_MODELS = {}", metadata={"tags": ["definition"]}),
    ]
    cells += [
        new_code_cell(_definition_cell("BASE_MODELS", m), metadata={"tags": ["definition"]})
        for m in base
    ]
    job_values = {m.name: m.job_value for m in facts.models}
    cells += [
        new_code_cell(
            f"JOB_VALUES = {_py(job_values)}\n"
            "oof = {}  # out-of-fold predictions, by model\n"
            "for name, model in BASE_MODELS.items():\n"
            "    oof[name] = replay.train(name, **model)\n"
            '    print(f"{name}: {OBJECTIVE} {replay.score(oof[name]):.6g} '
            '(the job: {JOB_VALUES.get(name)})")',
            metadata={"tags": ["train"]},
        ),
        new_markdown_cell(
            "## Stackers (layer 2)\n\nTrained on the same folds, on their `inputs`' out-of-"
            "fold predictions (as log-odds or log-probabilities), with the original features "
            "when `keep_features`."
        ),
        new_code_cell("STACKERS = {}", metadata={"tags": ["definition"]}),
    ]
    cells += [
        new_code_cell(_definition_cell("STACKERS", m), metadata={"tags": ["definition"]})
        for m in stackers
    ]
    cells += [
        new_code_cell(
            "for name, stacker in STACKERS.items():\n"
            "    settings = dict(stacker)\n"
            '    inputs = [oof[n] for n in settings.pop("inputs")]\n'
            "    oof[name] = replay.train_stacker(name, inputs=inputs, **settings)\n"
            '    print(f"{name}: {OBJECTIVE} {replay.score(oof[name]):.6g} '
            '(the job: {JOB_VALUES.get(name)})")',
            metadata={"tags": ["train"]},
        ),
        new_markdown_cell(
            "## The ensemble\n\nThe weighted average of the models' predictions (greedy "
            "ensemble selection with replacement: a weight is how often a model was picked "
            "over the steps). `THRESHOLD` is the positive class's probability cut, where the "
            "job chose one for its objective (None: the most probable class). "
            "`CALIBRATION` is the temperature dividing the blend's log-probabilities and the "
            "floor under every probability, fitted on these out-of-fold predictions for a "
            "log-loss objective (None: the blend as it is)."
        ),
        new_code_cell(
            f"WEIGHTS = {_py(facts.weights)}\nTHRESHOLD = {_py(facts.threshold)}\n"
            f"CALIBRATION = {_py(facts.calibration)}",
            metadata={"tags": ["weights"]},
        ),
        new_code_cell(
            "# The selection run again over the models above (the job chose among all its "
            "models,\n"
            "# so on fewer it may weigh them otherwise); to use it: WEIGHTS = selected\n"
            "selected = replay.select(oof)\n"
            "selected",
            metadata={"tags": ["select"]},
        ),
        new_markdown_cell(
            "## Score\n\nThe ensemble's objective on the out-of-fold predictions, as the job "
            "scored its best candidate."
        ),
        new_code_cell(
            "blended = replay.calibrate(replay.blend(oof, WEIGHTS), CALIBRATION)\n"
            "value = replay.score(blended, threshold=THRESHOLD)\n"
            f"JOB_VALUE = {facts.best_value!r}\n"
            f'print(f"{{OBJECTIVE}}: rebuilt {{value!r}}, the job {{JOB_VALUE!r}}")\n'
            "if EnsembleReplay.digest(BASE_MODELS, STACKERS, WEIGHTS, THRESHOLD, CALIBRATION) == "
            f"{_py(_digest(facts))}:\n"
            f"    assert abs(value - JOB_VALUE) <= {TOLERANCE!r}, "
            '"the unedited notebook should rebuild the job\'s value"\n'
            '    print("unedited: the job\'s ensemble, rebuilt")\n'
            "else:\n"
            '    print("edited definitions: compare with the job\'s value above")',
            metadata={"tags": ["compare"]},
        ),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["mlpilot"] = {
        "job": facts.job_name,
        "kind": "candidate-definition",
        "mode": "ENSEMBLING",
        "version": __version__,
    }
    return nb
