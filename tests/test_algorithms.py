"""Contract tests every registered algorithm must pass (in the spirit of scikit-learn's common
estimator checks), on small slices of real data sets prepared by each algorithm's own feature
pipeline: learning beats a constant, probabilities are well formed, classes missing from
training get probability 0, sample weights matter, seeds make fits repeatable, time limits stop
training, early stopping turns into refit parameters, defaults lie in the search space, fitted
models pickle, and each algorithm's tags say what it does (and are what the job engine, the
ensemble builder and the reports decide by).
"""

from __future__ import annotations

import itertools
import math
import pickle
import subprocess
import sys
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import special

from helpers_data import ABALONE, CAR, TELCO
from mlpilot._types import ProblemType
from mlpilot.algorithms import (
    DEFAULT_ALGORITHMS,
    ENSEMBLING_ALGORITHMS,
    Algorithm,
    AlgorithmTags,
    Family,
    FitContext,
    ShapMethod,
    StackerRole,
    _registry,
    algorithm_names,
    algorithm_path,
    algorithm_tags,
    get_algorithm,
    register_algorithm,
    short_name,
    stacker_for,
)
from mlpilot.data import read_table
from mlpilot.ensemble import build_portfolio
from mlpilot.ensemble._portfolio import HEAD, LARGE_ROWS, MANY_CLASSES
from mlpilot.errors import ConfigError
from mlpilot.explain import tree_members as _tree_members
from mlpilot.features import FeaturePipeline
from mlpilot.metrics import score_all
from mlpilot.profile import DatasetProfile, build_profile
from mlpilot.search import CandidateSpec
from mlpilot.search._search import candidate_name

ALGORITHMS = (
    "lightgbm",
    "xgboost",
    "catboost",
    "randomforest",
    "extra-trees",
    "linear-learner",
    "mlp",
    "nn-torch",
    "fastai",
)
ITERATIVE = ("lightgbm", "xgboost", "catboost", "mlp", "nn-torch", "fastai")

#: Real data sets, one per problem type: (file, target, problem type).
TASKS = {
    "binary": (TELCO, "Churn", ProblemType.BINARY),
    "multiclass": (CAR, "class", ProblemType.MULTICLASS),
    "regression": (ABALONE, "Rings", ProblemType.REGRESSION),
}
ROWS = 1_500

#: Cheap settings for the tests that are not about the defaults.
SMALL: dict[str, dict[str, Any]] = {
    "lightgbm": {"n_estimators": 40},
    "xgboost": {"n_estimators": 40},
    "catboost": {"iterations": 40},
    "randomforest": {"n_estimators": 40},
    "extra-trees": {"n_estimators": 40},
    "linear-learner": {},
    "mlp": {"epochs": 5, "hidden_size": 64},
    "nn-torch": {"epochs": 5, "layers": "64-32"},
    "fastai": {"epochs": 5, "layers": "64-32"},
}

#: Far more work than fits in a second, so only the time limit can end training early.
HUGE: dict[str, dict[str, Any]] = {
    "lightgbm": {
        "n_estimators": 1_000_000,
        "learning_rate": 1e-4,
        "num_leaves": 256,
        "min_child_samples": 3,
    },
    "xgboost": {"n_estimators": 1_000_000, "learning_rate": 1e-4, "max_depth": 10},
    "catboost": {"iterations": 1_000_000, "learning_rate": 1e-4, "depth": 8},
    "randomforest": {"n_estimators": 100_000},
    "extra-trees": {"n_estimators": 100_000},
    "linear-learner": {"C": 1e6},
    "mlp": {
        "epochs": 1_000_000,
        "learning_rate": 1e-6,
        "hidden_size": 512,
        "layers": 4,
        "batch_size": 64,
    },
    "nn-torch": {
        "epochs": 1_000_000,
        "learning_rate": 1e-6,
        "layers": "512-256",
        "batch_size": 128,
    },
    "fastai": {
        "epochs": 1_000_000,
        "learning_rate": 1e-6,
        "layers": "512-256",
        "batch_size": 128,
    },
}


# -- data ------------------------------------------------------------------------------------
@dataclass
class Task:
    """A data set slice with a 60/20/20 train/validation/test split of its rows."""

    name: str
    raw: pd.DataFrame
    target: str
    profile: DatasetProfile
    y: np.ndarray
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    @property
    def problem_type(self) -> ProblemType:
        return self.profile.problem_type

    @property
    def n_classes(self) -> int:
        return len(self.profile.target.labels) if self.problem_type.is_classification else 0


@dataclass
class Matrices:
    """One task prepared by one algorithm's preprocessing (pipeline fitted on train rows)."""

    task: Task
    X_train: Any
    X_valid: Any
    X_test: Any
    categorical_features: list[int]
    category_cardinalities: list[int]

    @property
    def y_train(self) -> np.ndarray:
        return self.task.y[self.task.train]

    @property
    def y_valid(self) -> np.ndarray:
        return self.task.y[self.task.valid]

    @property
    def y_test(self) -> np.ndarray:
        return self.task.y[self.task.test]

    def context(self, time_limit: float | None = None) -> FitContext:
        return FitContext(
            categorical_features=self.categorical_features,
            category_cardinalities=self.category_cardinalities,
            time_limit=time_limit,
            n_jobs=1,
        )


def load_task(name: str) -> Task:
    path, target, problem_type = TASKS[name]
    raw = read_table(path)
    raw = raw.sample(n=min(ROWS, len(raw)), random_state=0).reset_index(drop=True)
    profile = build_profile(raw, target)
    assert profile.problem_type is problem_type
    y = profile.target.encode(raw[target])
    order = np.random.default_rng(0).permutation(len(raw))
    a, b = int(0.6 * len(raw)), int(0.8 * len(raw))
    return Task(name, raw, target, profile, y, order[:a], order[a:b], order[b:])


@dataclass
class DataCache:
    """Loads each task and prepares each (task, algorithm) matrix once per module."""

    tasks: dict[str, Task] = field(default_factory=dict)
    matrices: dict[tuple[str, str], Matrices] = field(default_factory=dict)

    def task(self, name: str) -> Task:
        if name not in self.tasks:
            self.tasks[name] = load_task(name)
        return self.tasks[name]

    def get(self, task_name: str, algorithm: str) -> Matrices:
        key = (task_name, algorithm)
        if key not in self.matrices:
            task = self.task(task_name)
            cls = get_algorithm(algorithm)
            pipeline = FeaturePipeline.from_profile(task.profile, cls.preprocessing, seed=0)

            def rows(index: np.ndarray) -> pd.DataFrame:
                return task.raw.iloc[index].reset_index(drop=True)

            X_train = pipeline.fit_transform(rows(task.train), task.y[task.train])
            self.matrices[key] = Matrices(
                task,
                X_train,
                pipeline.transform(rows(task.valid)),
                pipeline.transform(rows(task.test)),
                list(pipeline.categorical_features_),
                list(pipeline.category_cardinalities_),
            )
        return self.matrices[key]


@dataclass
class FitCache:
    """Models trained with default parameters and early stopping, shared by several tests."""

    data: DataCache
    models: dict[tuple[str, str], Algorithm] = field(default_factory=dict)

    def get(self, task_name: str, algorithm: str) -> tuple[Algorithm, Matrices]:
        m = self.data.get(task_name, algorithm)
        key = (task_name, algorithm)
        if key not in self.models:
            cls = get_algorithm(algorithm)
            model = cls(m.task.problem_type, m.task.n_classes, seed=0)
            model.fit(
                m.X_train,
                m.y_train,
                eval_set=(m.X_valid, m.y_valid, None),
                context=m.context(),
            )
            self.models[key] = model
        return self.models[key], m


@pytest.fixture(scope="module")
def data() -> DataCache:
    return DataCache()


@pytest.fixture(scope="module")
def default_fits(data: DataCache) -> FitCache:
    return FitCache(data)


def fit(
    algorithm: str,
    m: Matrices,
    params: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
    X: Any = None,
    y: np.ndarray | None = None,
    eval_set: Any = None,
    time_limit: float | None = None,
) -> Algorithm:
    cls = get_algorithm(algorithm)
    model = cls(m.task.problem_type, m.task.n_classes, params, seed=seed)
    return model.fit(
        m.X_train if X is None else X,
        m.y_train if y is None else y,
        sample_weight=sample_weight,
        eval_set=eval_set,
        context=m.context(time_limit),
    )


def outputs(model: Algorithm, X: Any) -> np.ndarray:
    """Class probabilities (classification) or predicted values (regression)."""
    return model.predict_proba(X) if model.problem_type.is_classification else model.predict(X)


def assert_probabilities(proba: np.ndarray, n_rows: int, n_classes: int) -> None:
    assert proba.shape == (n_rows, n_classes)
    assert np.isfinite(proba).all()
    assert proba.min() >= 0.0
    assert proba.max() <= 1.0
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def scores(model: Algorithm, m: Matrices) -> dict[str, float]:
    task = m.task
    return score_all(
        task.problem_type,
        m.y_test,
        outputs(model, m.X_test),
        positive_index=task.profile.target.positive_index,
        n_classes=task.n_classes,
    )


# -- registry --------------------------------------------------------------------------------
def test_registry_names_every_algorithm() -> None:
    assert set(algorithm_names()) == set(ALGORITHMS)
    assert set(DEFAULT_ALGORITHMS) == set(ALGORITHMS) - {"nn-torch", "fastai"}
    assert len(DEFAULT_ALGORITHMS) == len(set(DEFAULT_ALGORITHMS))
    # Autopilot's ENSEMBLING set, fastai mapped to nn-torch with fastai's defaults.
    assert set(ENSEMBLING_ALGORITHMS) == set(ALGORITHMS) - {"mlp"}
    assert issubclass(get_algorithm("fastai"), get_algorithm("nn-torch"))
    for name in ALGORITHMS:
        cls = get_algorithm(name)
        assert issubclass(cls, Algorithm)
        assert cls.name == name
        assert cls.description
        assert set(cls.problem_types) == set(ProblemType)
        module, _, class_name = algorithm_path(name).partition(":")
        assert (module, class_name) == (cls.__module__, cls.__name__)
        assert (cls.iteration_param is not None) == (name in ITERATIVE)


def test_unknown_algorithm_error_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="no-such-algorithm") as info:
        get_algorithm("no-such-algorithm")
    message = str(info.value)
    for name in ALGORITHMS:
        assert name in message


def test_register_algorithm_rejects_a_path_without_class() -> None:
    with pytest.raises(ConfigError, match=r"package\.module:ClassName"):
        register_algorithm("broken", "mlpilot.algorithms.lightgbm.LightGBM")
    assert "broken" not in algorithm_names()


def test_register_algorithm(monkeypatch: pytest.MonkeyPatch) -> None:
    # Work on a copy of the registry so other tests see the real one.
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    register_algorithm("my-linear", "mlpilot.algorithms.linear:LinearLearner")
    assert get_algorithm("my-linear") is get_algorithm("linear-learner")
    assert "my-linear" in algorithm_names()

    register_algorithm("missing-module", "no_such_module_for_mlpilot:Model")
    with pytest.raises(ConfigError, match="cannot be imported"):
        get_algorithm("missing-module")
    register_algorithm("missing-class", "mlpilot.algorithms.linear:NoSuchClass")
    with pytest.raises(ConfigError, match="cannot be imported"):
        get_algorithm("missing-class")
    register_algorithm("not-an-algorithm", "mlpilot.errors:ConfigError")
    with pytest.raises(ConfigError, match="not an mlpilot Algorithm"):
        get_algorithm("not-an-algorithm")

    # An unregistered "module:Class" path resolves directly.
    assert get_algorithm("mlpilot.algorithms.forests:ExtraTrees") is get_algorithm("extra-trees")


def test_fit_context_time_limit() -> None:
    unlimited = FitContext()
    assert unlimited.time_left() == float("inf")
    assert not unlimited.out_of_time()
    limited = FitContext(time_limit=30.0, n_jobs=0, categorical_features=None)
    assert 29.0 < limited.time_left() <= 30.0
    assert not limited.out_of_time()
    assert limited.out_of_time(reserve=31.0)
    assert limited.n_jobs == 1
    assert limited.categorical_features == []
    # A spent budget is a limit, not "no limit".
    assert FitContext(time_limit=0.0).out_of_time()
    assert FitContext(time_limit=-1.0).out_of_time()


# -- declared data ---------------------------------------------------------------------------
@pytest.mark.parametrize("problem_type", list(ProblemType))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_defaults_lie_in_search_space(algorithm: str, problem_type: ProblemType) -> None:
    cls = get_algorithm(algorithm)
    for n_rows in (100, 100_000):
        defaults = cls.default_params(problem_type, n_rows)
        space = cls.search_space(problem_type, n_rows)
        assert space, "every algorithm tunes something"
        # Every tuned hyperparameter has a default (params are the defaults plus overrides).
        assert set(space) <= set(defaults)
        for name, dist in space.items():
            value = defaults[name]
            assert dist._contains(dist.to_internal_repr(value)), (name, value, dist)
        if cls.iteration_param is not None:
            assert int(defaults[cls.iteration_param]) >= 1


# -- learning --------------------------------------------------------------------------------
@pytest.mark.parametrize("task_name", list(TASKS))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_default_model_beats_constant_predictor(
    default_fits: FitCache, algorithm: str, task_name: str
) -> None:
    model, m = default_fits.get(task_name, algorithm)
    task = m.task
    n_test = len(m.y_test)
    predicted = model.predict(m.X_test)
    assert predicted.shape == (n_test,)
    result = scores(model, m)

    if task.problem_type.is_classification:
        proba = model.predict_proba(m.X_test)
        assert_probabilities(proba, n_test, task.n_classes)
        np.testing.assert_array_equal(predicted, proba.argmax(axis=1))
        assert np.issubdtype(predicted.dtype, np.integer)
    if task.problem_type is ProblemType.BINARY:
        assert result["AUC"] > 0.6
    elif task.problem_type is ProblemType.MULTICLASS:
        prior = np.bincount(m.y_train, minlength=task.n_classes) / len(m.y_train)
        prior_log_loss = -np.mean(np.log(np.clip(prior[m.y_test], 1e-15, None)))
        assert result["LogLoss"] < prior_log_loss
        assert result["Accuracy"] > prior.max()
    else:
        assert np.isfinite(predicted).all()
        assert result["RMSE"] < np.std(m.y_test)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_class_missing_from_training_gets_zero_probability(data: DataCache, algorithm: str) -> None:
    m = data.get("multiclass", algorithm)
    absent = 1  # a middle class, so the column mapping matters
    assert (m.y_test == absent).any()
    keep_train, keep_valid = m.y_train != absent, m.y_valid != absent
    model = fit(
        algorithm,
        m,
        SMALL[algorithm],
        X=m.X_train[keep_train],
        y=m.y_train[keep_train],
        eval_set=(m.X_valid[keep_valid], m.y_valid[keep_valid], None),
    )

    proba = model.predict_proba(m.X_test)
    assert_probabilities(proba, len(m.y_test), m.task.n_classes)
    assert (proba[:, absent] == 0.0).all()
    assert absent not in set(model.predict(m.X_test))
    # The classes it did see still get probability.
    assert (proba[:, [c for c in range(m.task.n_classes) if c != absent]].max(axis=0) > 0).all()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sample_weight_changes_the_model(data: DataCache, algorithm: str) -> None:
    m = data.get("binary", algorithm)
    positive = m.task.profile.target.positive_index
    params = dict(SMALL[algorithm])
    if algorithm in ("randomforest", "extra-trees"):
        # Fully grown trees have pure leaves, where weights cannot move the probabilities
        # (only the splits): let the leaves hold a few rows.
        params["min_samples_leaf"] = 5
    plain = outputs(fit(algorithm, m, params), m.X_test)
    weights = np.where(m.y_train == positive, 10.0, 0.1)
    weighted = outputs(fit(algorithm, m, params, sample_weight=weights), m.X_test)

    # Very different weights give a different model, one that believes much more in the
    # up-weighted class.
    assert np.abs(weighted - plain).max() > 0.05
    assert weighted[:, positive].mean() > plain[:, positive].mean() + 0.05

    if algorithm != "randomforest":
        # Unit weights are no weights. (Not for the random forest: scikit-learn draws its
        # bootstrap samples differently when given weights, so only the distribution matches.)
        ones = fit(algorithm, m, params, sample_weight=np.ones(len(m.y_train)))
        np.testing.assert_allclose(outputs(ones, m.X_test), plain, atol=1e-6)


@pytest.mark.parametrize("task_name", list(TASKS))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_seed_gives_identical_predictions(
    data: DataCache, algorithm: str, task_name: str
) -> None:
    m = data.get(task_name, algorithm)
    eval_set = (m.X_valid, m.y_valid, None)
    first = fit(algorithm, m, SMALL[algorithm], seed=7, eval_set=eval_set)
    second = fit(algorithm, m, SMALL[algorithm], seed=7, eval_set=eval_set)

    np.testing.assert_array_equal(outputs(first, m.X_test), outputs(second, m.X_test))
    assert first.iterations_ == second.iterations_


class Clock(FitContext):
    """The real clock, noting whether training ever found its time spent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ran_out = False

    def time_left(self) -> float:
        left = super().time_left()
        self.ran_out = self.ran_out or left <= 0
        return left

    def out_of_time(self, reserve: float = 0.0) -> bool:
        spent = super().out_of_time(reserve)
        self.ran_out = self.ran_out or spent
        return spent


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_time_limit_stops_training(data: DataCache, algorithm: str) -> None:
    m = data.get("binary", algorithm)
    params = HUGE[algorithm]
    context = Clock(
        categorical_features=m.categorical_features,
        category_cardinalities=m.category_cardinalities,
        time_limit=1.0,
    )
    model = get_algorithm(algorithm)(m.task.problem_type, m.task.n_classes, params, seed=0)
    model.fit(m.X_train, m.y_train, context=context)

    # Stopped by the deadline (not by a figure of seconds, which a loaded machine would miss),
    # well short of what the parameters ask for, and still a usable model.
    assert_probabilities(model.predict_proba(m.X_test), len(m.y_test), 2)
    if algorithm == "linear-learner":
        return  # one solver call: it has no rounds to stop between
    assert context.ran_out
    if model.iteration_param is not None:
        assert model.iterations_ is not None
        assert 1 <= model.iterations_ < params[model.iteration_param]
    else:  # forests grow trees in chunks and stop between them
        assert model.model_.n_estimators < params["n_estimators"]


class StopAfter(FitContext):
    """A context whose time runs out at the ``calls + 1``-th look at the clock (the iterative
    algorithms look once per round or epoch), independent of machine speed."""

    def __init__(self, calls: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls, self.looks = calls, 0

    def out_of_time(self, reserve: float = 0.0) -> bool:
        self.looks += 1
        return self.looks > self.calls


@pytest.mark.parametrize("algorithm", ITERATIVE)
def test_time_limit_after_best_round_keeps_the_best_model(
    default_fits: FitCache, algorithm: str
) -> None:
    reference, m = default_fits.get("binary", algorithm)
    best = reference.iterations_
    assert best is not None
    # Time runs out a few rounds past the best one, before early stopping's patience is spent.
    context = StopAfter(
        best + 5,
        categorical_features=m.categorical_features,
        category_cardinalities=m.category_cardinalities,
    )
    model = get_algorithm(algorithm)(m.task.problem_type, m.task.n_classes, seed=0)
    model.fit(m.X_train, m.y_train, eval_set=(m.X_valid, m.y_valid, None), context=context)

    assert context.looks > best  # training did go past the best round
    assert model.iterations_ == best
    np.testing.assert_allclose(
        model.predict_proba(m.X_test), reference.predict_proba(m.X_test), atol=1e-6
    )


@pytest.mark.parametrize("algorithm", ITERATIVE)
def test_time_out_at_the_first_round_with_early_stopping_keeps_that_round(
    data: DataCache, algorithm: str
) -> None:
    # The clock runs out at its first look (a loaded machine's tight task limit): the model of
    # the first round ships, as it would without a validation set (XGBoost's early stopping
    # had recorded no best round when the deadline stopped the loop, and raised).
    m = data.get("binary", algorithm)
    context = StopAfter(
        0,
        categorical_features=m.categorical_features,
        category_cardinalities=m.category_cardinalities,
    )
    model = get_algorithm(algorithm)(m.task.problem_type, m.task.n_classes, seed=0)
    model.fit(m.X_train, m.y_train, eval_set=(m.X_valid, m.y_valid, None), context=context)
    assert model.iterations_ is not None and model.iterations_ >= 1
    assert_probabilities(model.predict_proba(m.X_test), len(m.y_test), 2)


# -- refit and persistence -------------------------------------------------------------------
@pytest.mark.parametrize("task_name", list(TASKS))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_refit_params_fix_the_early_stopping_point(
    default_fits: FitCache, algorithm: str, task_name: str
) -> None:
    model, m = default_fits.get(task_name, algorithm)
    cls = type(model)
    original = dict(model.params)
    refit = model.refit_params()

    if cls.iteration_param is None:
        assert refit == model.params
        return
    iterations = model.iterations_
    assert isinstance(iterations, int)
    # Early stopping on the validation set ended training before the cap.
    assert 1 <= iterations < model.params[cls.iteration_param]
    assert refit == {**model.params, cls.iteration_param: iterations}
    assert model.params == original  # refit_params returns a copy

    if task_name == "binary":
        # Trained again without a validation set, the model runs exactly that many iterations.
        again = fit(algorithm, m, refit)
        assert again.iterations_ == iterations


@pytest.mark.parametrize("task_name", list(TASKS))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_pickle_round_trip(default_fits: FitCache, algorithm: str, task_name: str) -> None:
    model, m = default_fits.get(task_name, algorithm)
    blob = pickle.dumps(model)
    restored = pickle.loads(blob)

    assert type(restored) is type(model)
    assert restored.params == model.params
    assert restored.iterations_ == model.iterations_
    assert restored.refit_params() == model.refit_params()
    np.testing.assert_array_equal(outputs(restored, m.X_test), outputs(model, m.X_test))
    np.testing.assert_array_equal(restored.predict(m.X_test), model.predict(m.X_test))
    if algorithm == "mlp":
        # The network travels as its weights, not as pickled torch modules.
        assert b"torch.nn.modules" not in blob


@pytest.mark.parametrize("task_name", list(TASKS))
@pytest.mark.parametrize("algorithm", ["nn-torch", "fastai"])
def test_network_numpy_path_matches_torch(
    default_fits: FitCache, algorithm: str, task_name: str
) -> None:
    """A few rows go through the NumPy forward pass (batch norm folded into the linear
    layers); it must give what the torch network gives, row by row and after pickling."""
    model, m = default_fits.get(task_name, algorithm)
    X = m.X_test[:40]
    few = outputs(model, X)  # NumPy path (≤ 64 rows)
    through_torch = model._forward_torch(X)  # type: ignore[attr-defined]
    if model.problem_type.is_classification:
        np.testing.assert_allclose(few, through_torch, rtol=1e-4, atol=1e-6)
    else:
        np.testing.assert_allclose(
            few,
            through_torch * model.y_std_ + model.y_mean_,
            rtol=1e-4,
            atol=1e-6,  # type: ignore[attr-defined]
        )
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(outputs(restored, X[:1]), few[:1], rtol=1e-9)
    # A batch over the NumPy threshold goes through torch and agrees with the rows one by one.
    many = outputs(model, m.X_test[:200])
    np.testing.assert_allclose(many[:40], few, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("epochs", [1, 2, 4])
def test_network_trains_on_a_one_cycle_schedule_of_a_few_steps(
    data: DataCache, epochs: int
) -> None:
    """Rows that fit one batch make one step an epoch: 4 epochs are 4 steps, whose quarter-long
    warm-up (one step) made PyTorch's one-cycle schedule divide by zero (a refit cut short)."""
    m = data.get("binary", "nn-torch")
    rows = 200
    model = fit(
        "nn-torch",
        m,
        {"epochs": epochs, "layers": "16", "batch_size": 256},
        X=m.X_train[:rows],
        y=m.y_train[:rows],
    )
    assert_probabilities(outputs(model, m.X_test[:10]), 10, 2)


# -- tags ------------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tags_are_declared_and_consistent(algorithm: str) -> None:
    cls = get_algorithm(algorithm)
    tags = algorithm_tags(algorithm)
    assert isinstance(tags, AlgorithmTags)
    assert tags is cls.tags
    assert tags.family is not Family.OTHER  # every built-in algorithm says what it is
    # Early stopping: the tagged parameter is the class's, and one its defaults set.
    assert cls.iteration_param == tags.iteration_param
    assert tags.early_stopping == (algorithm in ITERATIVE)
    if tags.early_stopping:
        assert tags.iteration_param in cls.default_params(ProblemType.BINARY, 1_000)
    # TreeSHAP reads trees: tree models take that path, nothing else does.
    assert tags.tree == (tags.family in (Family.BOOSTING, Family.FOREST))
    assert (tags.shap is ShapMethod.TREE) == tags.tree
    if tags.native_categorical:  # categories reach the model as ordinal codes
        assert cls.preprocessing.categorical == "ordinal"
    if tags.stacker is StackerRole.BOOSTING:
        assert tags.family is Family.BOOSTING
    if tags.stacker is StackerRole.LINEAR:
        assert tags.family is Family.LINEAR
    as_stacker = cls.stacker_params(ProblemType.BINARY, 1_000, 50)
    assert set(as_stacker) == set(cls.default_params(ProblemType.BINARY, 1_000))
    assert short_name(algorithm) == (tags.short_name or algorithm)
    assert ":" not in short_name(algorithm)
    assert len(short_name(algorithm)) <= 16  # candidate names keep 16 characters of it


def test_short_names_and_roles_of_the_registry() -> None:
    shorts = [short_name(a) for a in ALGORITHMS]
    assert len(set(shorts)) == len(shorts)
    assert {a for a in ALGORITHMS if algorithm_tags(a).out_of_bag} == {
        "randomforest",
        "extra-trees",
    }
    assert stacker_for(StackerRole.BOOSTING, ALGORITHMS) == "lightgbm"
    assert stacker_for(StackerRole.LINEAR, ALGORITHMS) == "linear-learner"
    lightgbm = get_algorithm("lightgbm")
    assert lightgbm.stacker_params(ProblemType.BINARY, 1_000, 50)["n_estimators"] == 50


def test_tags_load_no_machine_learning_library() -> None:
    """Tags are read where no model trains (job set-up, the CLI): they must not import torch,
    CatBoost, XGBoost, LightGBM or shap."""
    code = (
        "import sys\n"
        "from mlpilot.algorithms import algorithm_names, algorithm_tags\n"
        "tags = [algorithm_tags(name) for name in algorithm_names()]\n"
        "heavy = ('torch', 'catboost', 'xgboost', 'lightgbm', 'shap')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_iteration_param_and_tags_stay_in_step() -> None:
    class Declared(Algorithm):
        tags = AlgorithmTags(iteration_param="epochs")

    class Inherited(Declared):
        pass

    class Older(Algorithm):  # an algorithm written before tags: iteration_param alone
        iteration_param = "rounds"

    assert Declared.iteration_param == Inherited.iteration_param == "epochs"
    assert Older.tags.iteration_param == "rounds"
    assert Older.tags.early_stopping
    assert not Algorithm.tags.early_stopping
    with pytest.raises(TypeError, match="disagrees"):

        class Both(Algorithm):
            tags = AlgorithmTags(iteration_param="epochs")
            iteration_param = "rounds"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_out_of_bag_tag_means_fit_oob_works(data: DataCache, algorithm: str) -> None:
    m = data.get("multiclass", algorithm)
    task = m.task
    model = get_algorithm(algorithm)(task.problem_type, task.n_classes, SMALL[algorithm], seed=0)
    if not model.tags.out_of_bag:
        with pytest.raises(NotImplementedError):
            model.fit_oob(m.X_train, m.y_train, context=m.context())
        return
    oob = model.fit_oob(m.X_train, m.y_train, context=m.context())
    assert_probabilities(oob, len(m.y_train), task.n_classes)
    # Out of bag: learned, yet not the (near perfect) fit on rows the trees saw.
    majority = np.bincount(m.y_train).max() / len(m.y_train)
    oob_accuracy = (oob.argmax(axis=1) == m.y_train).mean()
    in_bag_accuracy = (model.predict(m.X_train) == m.y_train).mean()
    assert majority < oob_accuracy < in_bag_accuracy
    assert not model._fitting_oob
    assert_probabilities(model.predict_proba(m.X_test), len(m.y_test), task.n_classes)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tree_shap_adds_up_to_the_model_output(default_fits: FitCache, algorithm: str) -> None:
    model, m = default_fits.get("binary", algorithm)
    if model.tags.shap is not ShapMethod.TREE:
        with pytest.raises(NotImplementedError):
            model.tree_shap()
        return
    X = m.X_test[:20]
    values, expected = model.tree_shap()(X)
    assert values.shape[:2] == (20, X.shape[1])
    total = values.sum(axis=1) + expected  # (rows, outputs)
    positive = model.predict_proba(X)[:, 1]
    if model.tags.family is Family.FOREST:  # forests: in probabilities
        np.testing.assert_allclose(total[:, 1], positive, atol=1e-6)
    else:  # boosting: in the positive class's log-odds
        np.testing.assert_allclose(special.expit(total[:, 0]), positive, atol=1e-5)


@pytest.mark.parametrize("task_name", list(TASKS))
@pytest.mark.parametrize("algorithm", ["randomforest", "extra-trees"])
def test_forest_fast_path_is_bit_identical_to_scikit_learn(
    default_fits: FitCache, algorithm: str, task_name: str
) -> None:
    """Below the batch size that takes every core, forests predict by walking their trees as
    one set of arrays; the results are scikit-learn's own, bit for bit (missing values too)."""
    model, m = default_fits.get(task_name, algorithm)
    X = np.array(m.X_test[:200], dtype=np.float64)
    X[::7, 0] = np.nan
    X[::5, -1] = np.nan
    forest = model.model_
    reference = (
        forest.predict_proba(X) if model.problem_type.is_classification else forest.predict(X)
    )
    np.testing.assert_array_equal(outputs(model, X), reference)
    np.testing.assert_array_equal(outputs(model, X[:1]), reference[:1])
    # The walk's arrays are made on first use and stay out of the pickle.
    restored = pickle.loads(pickle.dumps(model))
    assert "_flat" in model.__dict__ and "_flat" not in restored.__dict__
    np.testing.assert_array_equal(outputs(restored, X[:3]), reference[:3])


@pytest.mark.parametrize("task_name", list(TASKS))
def test_lightgbm_single_row_fast_path_is_booster_predict(
    default_fits: FitCache, task_name: str
) -> None:
    """One row goes through LightGBM's single-row C API (parameters parsed once); each row's
    output is what ``Booster.predict`` gives for the whole batch, bit for bit, missing values
    included, and after pickling (the fast path's handle is not pickled)."""
    model, m = default_fits.get(task_name, "lightgbm")
    X = np.array(m.X_test[:200], dtype=np.float32)
    X[::7, 0] = np.nan
    X[::5, -1] = np.nan
    booster = model.model_
    reference = booster.predict(X, num_iteration=booster.best_iteration or None)
    reference = reference if task_name != "binary" else np.column_stack([1 - reference, reference])
    expected = reference if task_name != "regression" else reference.ravel()
    rows = np.concatenate([outputs(model, X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_array_equal(rows, expected)
    assert "_single_row_predictor" in model.__dict__
    restored = pickle.loads(pickle.dumps(model))
    assert "_single_row_predictor" not in restored.__dict__
    np.testing.assert_array_equal(outputs(restored, X[3:4]), expected[3:4])
    with pytest.raises(ValueError, match="expects"):
        model.predict(X[:1, :-1])
    # Fitted again, a model predicts with its new booster, not the one its fast path was made on.
    small = fit("lightgbm", m, {"n_estimators": 3})
    before = outputs(small, X[:1])
    small.params["n_estimators"] = 30
    small.fit(m.X_train, m.y_train, context=m.context())
    again = small.model_.predict(X[:1], num_iteration=small.model_.best_iteration or None)
    np.testing.assert_array_equal(outputs(small, X[:1]).ravel()[-1], np.ravel(again)[-1])
    assert not np.array_equal(outputs(small, X[:1]), before)


@pytest.mark.parametrize("task_name", list(TASKS))
def test_catboost_few_rows_path_is_its_batch_path(default_fits: FitCache, task_name: str) -> None:
    """A few rows skip ``predict``'s per-call parameter reads (Pool and ``_base_predict``
    directly); one row at a time they get what the batch path (a DataFrame through the public
    ``predict``/``predict_proba``) gives, bit for bit, and after pickling."""
    model, m = default_fits.get(task_name, "catboost")
    X = np.array(m.X_test[:200], dtype=np.float32)
    numeric = [j for j in range(X.shape[1]) if j not in m.categorical_features]
    X[::7, numeric[-1:]] = np.nan  # missing numbers (car's columns are all categories)
    batch = outputs(model, X)  # over 64 rows: the DataFrame and the public API
    rows = np.concatenate([outputs(model, X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_array_equal(rows, batch)
    assert "_few_rows_setup" in model.__dict__
    restored = pickle.loads(pickle.dumps(model))
    assert "_few_rows_setup" not in restored.__dict__
    np.testing.assert_array_equal(outputs(restored, X[:5]), batch[:5])
    restored.__dict__["_few_rows_setup"] = ()  # a CatBoost without the private methods
    np.testing.assert_array_equal(outputs(restored, X[:5]), batch[:5])


@pytest.mark.parametrize("task_name", ["binary", "regression"])
def test_forest_baseline_tree_shap_is_the_exact_shapley_value(
    default_fits: FitCache, task_name: str
) -> None:
    """Interventional TreeSHAP against two baseline rows, players being groups of columns,
    equals the Shapley values of switching the groups between the row and each baseline row
    (all 2^4 coalitions computed from predictions), averaged over the baseline rows."""
    model, m = default_fits.get(task_name, "extra-trees")
    X = np.asarray(m.X_test[:3], dtype=np.float64)
    background = np.asarray(m.X_train[:2], dtype=np.float64)
    groups = np.arange(X.shape[1]) % 4
    values, base = model.baseline_tree_shap(background, groups, 4)(X)
    assert values.shape[:2] == (3, 4)
    exact = np.zeros_like(values)
    for player in range(4):
        others = [g for g in range(4) if g != player]
        for size in range(4):
            weight = math.factorial(size) * math.factorial(3 - size) / math.factorial(4)
            for coalition in itertools.combinations(others, size):
                with_player = np.isin(groups, [*coalition, player])
                without = np.isin(groups, coalition)
                for z in background:
                    gain = outputs(model, np.where(with_player, X, z))
                    gain = gain - outputs(model, np.where(without, X, z))
                    exact[:, player] += weight * gain.reshape(3, -1) / len(background)
    np.testing.assert_allclose(values, exact, atol=1e-12)
    mean = outputs(model, background).reshape(2, -1).mean(axis=0)
    np.testing.assert_allclose(base, mean, atol=1e-12)
    total = base + values.sum(axis=1)
    np.testing.assert_allclose(total, outputs(model, X).reshape(3, -1), atol=1e-12)


# -- what decides by the tags ----------------------------------------------------------------
def _retag(monkeypatch: pytest.MonkeyPatch, algorithm: str, **changes: Any) -> None:
    cls = get_algorithm(algorithm)
    monkeypatch.setattr(cls, "tags", replace(cls.tags, **changes))


def test_portfolio_cost_order_follows_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    # Made-up costs: only LightGBM is slow on many rows, only extra trees on many classes.
    for name in ALGORITHMS:
        _retag(
            monkeypatch,
            name,
            slow_on_many_rows=name == "lightgbm",
            slow_on_many_classes=name == "extra-trees",
        )
    everything = list(ENSEMBLING_ALGORITHMS)
    for problem_type, n_rows, n_classes, slow in (
        (ProblemType.BINARY, LARGE_ROWS + 1, 2, "lightgbm"),
        (ProblemType.MULTICLASS, 1_000, MANY_CLASSES + 1, "extra-trees"),
    ):
        usual = build_portfolio(problem_type, 1_000, 3, everything)
        costly = build_portfolio(problem_type, n_rows, n_classes, everything)
        head = [e.label for e in usual[:HEAD]]
        slow_labels = [e.label for e in usual[:HEAD] if e.algorithm == slow]
        expected = [label for label in head if label not in slow_labels] + slow_labels
        assert expected != head  # the made-up cost moves something
        assert [e.label for e in costly[:HEAD]] == expected
        assert [e.key() for e in costly[HEAD:]] == [e.key() for e in usual[HEAD:]]


def test_stacker_choice_follows_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    assert stacker_for(StackerRole.BOOSTING, ["catboost", "xgboost"]) == "xgboost"
    assert stacker_for(StackerRole.LINEAR, ["lightgbm", "mlp"]) is None
    _retag(monkeypatch, "mlp", stacker=StackerRole.LINEAR)
    _retag(monkeypatch, "lightgbm", stacker=None)
    assert stacker_for(StackerRole.LINEAR, ["lightgbm", "mlp"]) == "mlp"
    assert stacker_for(StackerRole.BOOSTING, ALGORITHMS) == "xgboost"


def test_explanation_method_follows_shap_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = SimpleNamespace(output_sources=lambda: [])

    def model(*names: str, pipe: Any = pipeline) -> Any:
        members = [(pipe, get_algorithm(n)(ProblemType.BINARY, 2)) for n in names]
        return SimpleNamespace(members=members)

    assert _tree_members(model("lightgbm", "extra-trees"))
    assert not _tree_members(model("lightgbm", "linear-learner"))
    # A pipeline that cannot say which feature each column came from: Kernel SHAP.
    assert not _tree_members(model("lightgbm", pipe=object()))
    _retag(monkeypatch, "linear-learner", shap=ShapMethod.TREE)
    _retag(monkeypatch, "extra-trees", shap=ShapMethod.KERNEL)
    assert _tree_members(model("lightgbm", "linear-learner"))
    assert not _tree_members(model("lightgbm", "extra-trees"))


def test_candidate_names_use_short_name_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    def name(algorithm: str) -> str:
        return candidate_name("job", 0, CandidateSpec(algorithm, {}, {}))

    assert "-rf-001-" in name("randomforest")
    assert "-linear-001-" in name("linear-learner")
    assert "-lightgbm-001-" in name("lightgbm")
    assert "-stack-lightgbm-001-" in name("stack-lightgbm")  # a stacker's label, no algorithm
    _retag(monkeypatch, "lightgbm", short_name="lgbm")
    assert "-lgbm-001-" in name("lightgbm")
