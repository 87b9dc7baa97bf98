"""The README's main job: the demo must keep running end to end as the project grows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_demo_runs_the_whole_workflow_through_the_mcp_client(tmp_path: Path) -> None:
    storage = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    proc = subprocess.run(
        [sys.executable, "-m", "demo", "--storage", str(storage)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    sections = ("== Data preparation ==", "== Training ==", "== Evaluation ==", "== Model registry ==")
    sections += ("== Pipeline ==",)
    for section in sections:
        assert section in out
    assert "FAILED" not in out
    assert "Done:" in out
    # Artifacts the sections promise exist on disk: processed data, two bundles, a report, the registry.
    assert (storage / "raw" / "breast_cancer.processed.train.parquet").is_file()
    bundles = sorted(p.parent.name for p in storage.glob("models/*/metadata.json"))
    assert len(bundles) >= 2
    assert list(storage.glob("reports/*.html"))
    assert list(storage.glob("registry/*/versions/1.json"))
    # The pipeline section: its run record, and a production model registered by it.
    assert list(storage.glob("pipelines/job-*.json"))
    assert "'status': 'production'" in out and "mlops:passed" in out
