"""Column coercions used inside fitted preprocessing pipelines (via `FunctionTransformer`).

They live in this module because `bundles.load_skops` trusts `mcp_server.common.transformers.*`:
a pipeline saved with them loads back without widening the set of trusted types. They make a
pipeline tolerate data that arrives at apply time with other dtypes than at fit time (a
categorical column read as numbers or all-NaN floats, a numeric column read as text).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _frame(x: Any) -> pd.DataFrame:
    return x if isinstance(x, pd.DataFrame) else pd.DataFrame(np.asarray(x, dtype=object))


def as_text(x: Any) -> pd.DataFrame:
    """Every value as a string (missing stays NaN), so encoders never see mixed types.

    Whole numbers stored as floats (`1.0`, as a column with gaps is read) become `"1"`, matching
    the same column read as integers elsewhere.
    """

    def text(value: Any) -> Any:
        if value is None or value is pd.NA or value is pd.NaT:
            return np.nan
        if isinstance(value, float | np.floating) and np.isnan(value):  # float32 NaN is no Python float
            return np.nan
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        return str(value)

    frame = _frame(x)
    return pd.DataFrame({c: frame[c].astype(object).map(text).astype(object) for c in frame.columns})


def as_number(x: Any) -> pd.DataFrame:
    """Every value as a float; anything that is not a number becomes NaN (then imputed)."""
    frame = _frame(x)
    return pd.DataFrame(
        {c: pd.to_numeric(frame[c].astype(object), errors="coerce").astype(float) for c in frame.columns}
    )
