"""scikit-learn estimators and pipelines to ONNX through skl2onnx.

A pipeline fitted on a DataFrame gets one ONNX input per column it was fitted on: text and
categorical columns as ``tensor(string)``, numbers and booleans as the requested float type.
Classifiers output a label tensor and a probability tensor (no ZipMap), so every runtime and
:class:`~pytest_mlops.models.onnx.OnnxModel` read them the same way.

Missing strings: ONNX string tensors cannot hold NaN. :class:`OnnxModel` feeds a missing string as
``""``, so before converting, a copy of the model is adjusted to treat ``""`` as missing where
scikit-learn treats NaN as missing (string ``SimpleImputer`` and NaN categories of
``OneHotEncoder``/``OrdinalEncoder``). The user's model is never modified.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from pytest_mlops.errors import DataError, ModelError
from pytest_mlops.export.types import Converted, Dtype

__all__ = ["convert_sklearn", "supported_estimators", "walk"]


def supported_estimators() -> list[str]:
    """The scikit-learn class names skl2onnx can convert, sorted."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    return sorted({c.__name__ for c in sklearn_operator_name_map if not c.__name__.startswith("_")})


def convert_sklearn(
    model: Any, sample: Any, *, dtype: Dtype, output: str = "auto", opset: int | None
) -> Converted:
    """Convert a fitted estimator or pipeline; see :func:`~pytest_mlops.export.export_onnx`.

    *output* is ignored: the final estimator says what its outputs are.
    """
    try:
        import skl2onnx
    except ImportError:
        raise ModelError(
            "exporting scikit-learn models needs skl2onnx: pip install 'pytest-mlops[sklearn-onnx]'"
        ) from None
    _check_supported(model)
    _check_fitted(model)
    initial_types = _initial_types(model, sample, dtype)
    patched = _by_column(_patch_missing_strings(copy.deepcopy(model)), sample)
    final = _final_estimator(patched)
    is_classifier = hasattr(final, "classes_") and hasattr(final, "predict")
    # probabilities as a tensor; classifiers without them output labels and raw scores already
    has_proba = is_classifier and hasattr(final, "predict_proba")
    options = {id(final): {"zipmap": False}} if has_proba else None
    try:
        proto = skl2onnx.convert_sklearn(
            patched,
            name=type(model).__name__,  # skl2onnx's default is a random uuid: keep hashes stable
            initial_types=initial_types,
            options=options,
            target_opset=opset,
        )
    except Exception as exc:
        raise ModelError(
            f"skl2onnx cannot convert the {_describe(model)}: {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:400] if str(exc).strip() else ''}"
        ) from None
    classes = None
    if is_classifier:
        classes = [_plain(c) for c in final.classes_]
        output = "probabilities" if hasattr(final, "predict_proba") else "labels"
    else:
        output = "values"
    return Converted(
        proto=proto,
        source=f"scikit-learn:{type(model).__name__}",
        producer=f"skl2onnx {skl2onnx.__version__}",
        output=output,
        classes=classes,
        dtype=dtype,
    )


def _describe(model: Any) -> str:
    return f"scikit-learn {type(model).__name__}"


def _plain(value: Any) -> Any:
    """A class label as a JSON-ready Python value."""
    return value.item() if hasattr(value, "item") else value


def walk(model: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every estimator inside pipelines, column transformers and feature unions, with its path."""
    here = path or type(model).__name__
    yield here, model
    steps = getattr(model, "steps", None)
    if isinstance(steps, list):
        for name, step in steps:
            if step not in (None, "passthrough", "drop"):
                yield from walk(step, f"{here} > {name}")
        return
    transformers = getattr(model, "transformers_", None) or getattr(model, "transformer_list", None)
    if isinstance(transformers, list):
        for item in transformers:
            name, step = item[0], item[1]
            if not isinstance(step, str):
                yield from walk(step, f"{here} > {name}")


def _check_supported(model: Any) -> None:
    from skl2onnx._supported_operators import sklearn_operator_name_map

    known = set(sklearn_operator_name_map)
    for where, estimator in walk(model):
        if type(estimator) not in known:
            raise ModelError(
                f"skl2onnx has no converter for {type(estimator).__module__}."
                f"{type(estimator).__name__} (at {where}): replace it with a supported estimator "
                "or register a converter with skl2onnx.update_registered_converter. Supported: "
                + ", ".join(supported_estimators())
            )


def _check_fitted(model: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise ModelError(
            f"the {_describe(model)} is not fitted: call fit() before exporting it"
        ) from None
    except TypeError:
        pass


def _takes_columns(model: Any) -> bool:
    """Whether the model's first step picks its input columns by name (a ColumnTransformer)."""
    while isinstance(getattr(model, "steps", None), list):
        model = model.steps[0][1]
    return hasattr(model, "transformers_")


def _by_column(model: Any, sample: Any) -> Any:
    """A model fitted on named columns that takes one matrix gets a column-picking first step.

    So the ONNX file has one input per column, like the data, and takes a frame with extra
    columns the way the estimator does.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None or _takes_columns(model):
        return model
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    columns = [str(n) for n in names]
    picker = ColumnTransformer([("columns", "passthrough", columns)]).fit(sample[columns])
    return Pipeline([("columns", picker), ("model", model)])


def _final_estimator(model: Any) -> Any:
    while isinstance(getattr(model, "steps", None), list):
        model = model.steps[-1][1]
    return model


def _initial_types(model: Any, sample: Any, dtype: Dtype) -> list[tuple[str, Any]]:
    """One input per fitted column for frames; one matrix ``X`` otherwise."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    float_type = FloatTensorType if dtype == "float32" else DoubleTensorType
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        if not isinstance(sample, pd.DataFrame):
            raise DataError(
                f"the {_describe(model)} was fitted on named columns {list(names)[:10]}: "
                "pass a DataFrame sample with those columns"
            )
        missing = [str(n) for n in names if n not in sample.columns]
        if missing:
            raise DataError(f"the sample lacks the columns {missing} the model was fitted on")
        return [
            (str(n), (StringTensorType if _is_text(sample[n]) else float_type)([None, 1]))
            for n in names
        ]
    width = getattr(model, "n_features_in_", None)
    if sample is None and width is not None:  # a matrix model: its width says it all
        return [("X", float_type([None, int(width)]))]
    if isinstance(sample, pd.DataFrame):
        for column in sample.columns:
            _is_text(sample[column])  # raises on unusable types
        if any(_is_text(sample[c]) for c in sample.columns):
            raise DataError(
                f"the {_describe(model)} takes one numeric matrix, but the sample has text "
                "columns: fit the model on a DataFrame (so it knows its columns) or encode them"
            )
        array = sample.to_numpy()
    else:
        array = np.asarray(sample)
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"the sample for the {_describe(model)} has dtype {array.dtype}: expected a numeric "
            f"array of shape (rows, {width if width is not None else 'features'})"
        )
    n = int(array.shape[1]) if array.ndim == 2 else 1
    if width is not None and n != int(width):
        raise DataError(
            f"the sample has {n} features per row, the {_describe(model)} was fitted on {width}"
        )
    return [("X", float_type([None, n]))]


def _is_text(column: pd.Series) -> bool:
    """Whether a column becomes a string input; a DataError for types ONNX cannot take."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return False
    if isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(column):
        return True
    if column.dtype.kind == "O":
        kinds = {type(v).__name__ for v in column.dropna().head(1000)}
        if kinds <= {"str", "str_"}:
            return True
        if kinds <= {"int", "float", "bool", "int64", "float64"}:
            return False
        raise DataError(
            f"sample column {column.name!r} mixes value types {sorted(kinds)}: ONNX inputs "
            "hold one type, so cast the column to str or to a number first"
        )
    raise DataError(
        f"sample column {column.name!r} has dtype {column.dtype}: ONNX inputs take numbers, "
        "booleans or strings; convert it first (e.g. a timestamp to seconds)"
    )


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _patch_missing_strings(model: Any) -> Any:
    """Make a copy treat ``""`` as missing where the original treats NaN as missing strings."""
    for _, estimator in walk(model):
        name = type(estimator).__name__
        stats = getattr(estimator, "statistics_", None)
        if (
            name == "SimpleImputer"
            and stats is not None
            and stats.dtype == object
            and _is_nan(estimator.missing_values)
        ):
            estimator.missing_values = ""
        categories = getattr(estimator, "categories_", None)
        if name in ("OneHotEncoder", "OrdinalEncoder") and categories is not None:
            estimator.categories_ = [
                np.asarray(["" if _is_nan(v) else v for v in cats], dtype=object)
                if cats.dtype == object and any(_is_nan(v) for v in cats)
                else cats
                for cats in categories
            ]
    return model
