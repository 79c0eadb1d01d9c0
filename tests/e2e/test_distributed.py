"""A two-process data-parallel run gives the same table as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.data import REPO, CMB_EXAMPLE

pytestmark = pytest.mark.slow


def _run(nproc: int, model: Path, out: Path, backend: str = "hf") -> dict:
    metadata = json.dumps({"data_files": str(CMB_EXAMPLE), "sample_items": 9})
    cmd = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_port=29533",
        str(REPO / "tests" / "e2e" / "dp_worker.py"), str(model), "leak_cmb", metadata, str(out), backend,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads(Path(f"{out}.rank{r}").read_text()) for r in range(nproc)]
    assert [r["world_size"] for r in ranks] == [nproc] * nproc  # lm-eval really sharded the items
    saved = json.loads(out.read_text())
    return {**saved["results"]["leak_cmb"], "n_samples": saved["n-samples"]["leak_cmb"]}


@pytest.mark.parametrize("backend", ["hf", "hf-prefix"])
def test_two_processes_match_one(backend: str, tiny_model: Path, tmp_path: Path) -> None:
    """One process with lm-eval's own ``hf`` against two with ``backend`` (CMB: 24 and 120 orderings)."""
    one = _run(1, tiny_model, tmp_path / "one.json")
    two = _run(2, tiny_model, tmp_path / "two.json", backend)
    figures = {k: v for k, v in one.items() if k.split(",")[0] in
               {"leak_a", "leak_a_chance", "leak_a_p", "leak_b", "orig_rank", "n_excluded"}}
    assert len(figures) == 6
    for key, value in figures.items():
        assert two[key] == pytest.approx(value, abs=1e-9), key
    # Nine items split unevenly across two ranks: every item is still counted exactly once.
    assert one["n_samples"] == two["n_samples"]
    assert one["n_samples"]["effective"] == 9
