"""Turning a feature frame into the matrix a LightGBM estimator sees, the same way at fit and predict."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

# Columns that identify a row rather than describe it: never used as features, tolerated in X.
KEY_COLUMNS: tuple[str, ...] = ("customer_id", "offer_id", "as_of", "sent_at", "habit_tags")


class MissingFeaturesError(ValueError):
    """The frame given to a fitted model lacks features the model was trained on."""

    def __init__(self, model: str, missing: list[str], found: list[str]):
        self.missing = list(missing)
        super().__init__(
            f"{model}: X must contain the features it was fitted on; {len(missing)} missing: "
            f"{missing[:10]}{' ...' if len(missing) > 10 else ''}; found {len(found)} columns"
        )


def check_frame(X, model: str) -> pd.DataFrame:
    """X as a DataFrame with string column names; a clear error for anything else."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{model}: X must be a pandas DataFrame with named feature columns, got {type(X).__name__}")
    if X.shape[0] == 0:
        raise ValueError(f"{model}: X has no rows")
    return X


def learn_layout(X: pd.DataFrame) -> tuple[list[str], dict[str, list[str]]]:
    """Feature names (all columns but keys and list-valued ones) and the categories of text columns."""
    names: list[str] = []
    categories: dict[str, list[str]] = {}
    for col in X.columns:
        if col in KEY_COLUMNS:
            continue
        s = X[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            categories[col] = [str(c) for c in s.cat.categories]
        elif ptypes.is_string_dtype(s.dtype) or ptypes.is_object_dtype(s.dtype):
            sample = s.dropna()
            if len(sample) and isinstance(sample.iloc[0], (list, tuple, np.ndarray)):
                continue  # list-valued columns (habit tags) are not model features
            categories[col] = sorted(str(v) for v in sample.unique())
        elif ptypes.is_datetime64_any_dtype(s.dtype):
            continue
        names.append(col)
    return names, categories


def to_matrix(
    X: pd.DataFrame, names: list[str], categories: dict[str, list[str]], model: str
) -> pd.DataFrame:
    """The fitted feature columns, in fitted order, with numeric dtypes and fixed categories."""
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise MissingFeaturesError(model, missing, list(X.columns))
    out = {}
    for col in names:
        s = X[col]
        if col in categories:
            # Unknown values (not seen at fit) become missing, which LightGBM handles.
            known = s.astype("object").isin(categories[col]).to_numpy()
            values = np.where(known, np.asarray(s, dtype=object), None)
            out[col] = pd.Categorical(values, categories=categories[col])
        elif ptypes.is_bool_dtype(s.dtype):
            out[col] = s.astype("float64")
        else:
            out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
    return pd.DataFrame(out, index=X.index)


def numeric_matrix(frame: pd.DataFrame) -> np.ndarray:
    """A ``to_matrix`` frame as float64 numbers (categoricals as their codes, NaN when missing)."""
    out = np.empty(frame.shape, dtype=np.float64)
    for j, col in enumerate(frame.columns):
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        else:
            out[:, j] = s.to_numpy(dtype=np.float64, na_value=np.nan)
    return out
