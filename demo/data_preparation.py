"""Demo section: data preparation. Loads and validates the raw breast-cancer CSV, preprocesses it
for classification, splits it (stratified), exports a CSV copy, engineers features on the raw
data and prepares a CartPole environment spec.

Returns the URIs later sections (training, evaluation) use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# What the raw data must look like: the label is 0/1 and never missing, measurements positive.
RAW_SCHEMA = {
    "target": {"dtype": "int", "nullable": False, "allowed_values": [0, 1]},
    "clinic": {"dtype": "string", "allowed_values": ["north", "south", "east"]},
    "mean_radius": {"dtype": "float", "min": 0},
    "mean_area": {"dtype": "float", "min": 0},
}


async def run(demo: Any, storage_root: Path, raw_uri: str) -> dict[str, Any]:
    """`demo` is the demo's `Demo` (its `call(tool, show, **arguments)` prints one line per call)."""
    print("\n== Data preparation ==")
    await demo.call("load_dataset", ("rows", "columns", "column_names"), s3_uri=raw_uri, preview_rows=2)
    await demo.call(
        "validate_data",
        ("is_valid", "checks"),
        data_s3_uri=raw_uri,
        schema=RAW_SCHEMA,
        required_columns=["target", "clinic"],
        max_missing_ratio=0.05,
    )
    processed = await demo.call(
        "preprocess_supervised",
        ("output_s3_uri", "pipeline_s3_uri", "n_rows", "n_features", "class_counts"),
        dataset_s3_uri=raw_uri,
        target_column="target",
        task_type="classification",
        preprocessing_config={"normalize": True, "handle_missing": "median", "encode_categorical": "onehot"},
    )
    split = await demo.call(
        "split_dataset",
        ("train_rows", "validation_rows", "test_rows", "class_counts"),
        dataset_s3_uri=processed["output_s3_uri"],
        stratify_column="target",
        random_state=42,
    )
    export = await demo.call(
        "save_processed_data",
        ("output_s3_uri", "rows", "sha256"),
        data_s3_uri=split["test_s3_uri"],
        output_s3_uri="exports/breast_cancer_test.csv",
    )
    features = await demo.call(
        "feature_engineering",
        ("output_s3_uri", "new_columns"),
        dataset_s3_uri=raw_uri,
        operations=[
            {"type": "log", "columns": ["mean_area"]},
            {"type": "interaction", "pairs": [["mean_radius", "mean_texture"]]},
            {"type": "bin", "column": "mean_area", "bins": 3, "labels": ["small", "medium", "large"]},
            {"type": "one_hot", "columns": ["clinic"]},
        ],
    )
    env = await demo.call(
        "preprocess_reinforcement",
        ("env_spec_s3_uri", "observation_space", "action_space"),
        environment="CartPole-v1",
        wrappers=[{"type": "time_limit", "max_episode_steps": 200}],
    )
    return {
        "raw_uri": raw_uri,
        "processed_uri": processed["output_s3_uri"],
        "pipeline_uri": processed["pipeline_s3_uri"],
        "feature_names": processed["feature_names"],
        "target_column": "target",
        "train_uri": split["train_s3_uri"],
        "validation_uri": split["validation_s3_uri"],
        "test_uri": split["test_s3_uri"],
        "export_csv_uri": export["output_s3_uri"],
        "features_uri": features["output_s3_uri"],
        "env_spec_uri": env["env_spec_s3_uri"],
        "storage_root": str(storage_root),
    }
