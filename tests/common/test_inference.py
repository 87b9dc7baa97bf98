from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from mcp_server.common.bundles import Bundle
from mcp_server.common.inference import predict


class _IndexModel:
    """Predicts class indices, as XGBoost and the networks do."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x[:, 0], dtype=np.int64)


def test_predict_maps_indices_to_integer_labels_usable_by_sklearn() -> None:
    bundle = Bundle(uri="", metadata={"label_encoded": True, "classes": [3, 5, 7]}, model=_IndexModel())
    predicted = predict(bundle, np.array([[0.0], [2.0], [1.0]]))
    assert predicted.tolist() == [3, 7, 5]
    assert predicted.dtype.kind == "i"
    truth = np.array([3, 7, 7])
    assert accuracy_score(truth, predicted) == 2 / 3
    assert f1_score(truth, predicted, average="weighted") > 0


def test_predict_maps_indices_to_string_labels() -> None:
    bundle = Bundle(uri="", metadata={"label_encoded": True, "classes": ["cat", "dog"]}, model=_IndexModel())
    assert predict(bundle, np.array([[1.0], [0.0]])).tolist() == ["dog", "cat"]
