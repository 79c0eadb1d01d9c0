"""Write the golden run and report under tests/data/golden (the regression tests' expected output).

Run from the repository root: ``.venv/bin/python tests/support/make_golden.py``. It builds the tiny
model, runs ``lm_eval`` on the golden items of four tasks (``leak_mmlu``, ``leak_mmlu_control``,
``leak_cmb``, ``leak_custom``) with ``--log_samples``, copies that output folder to
``golden/run`` (the model folder renamed ``tiny``), and writes the report's text files
(``--formats png``; figures are not compared) to ``golden/report`` and, with other detector
settings, to ``golden/report_mirror``. Re-running it replaces the expected figures: do so only
when a change of figures is intended, and say so in the commit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GOLDEN = REPO / "tests" / "data" / "golden"
sys.path.insert(0, str(HERE.parent))

from support.tiny_model import build_tiny_model  # noqa: E402

TASKS = ("leak_mmlu", "leak_mmlu_control", "leak_cmb", "leak_custom")
CUSTOM = [
    {"id": "q1", "question": "Pick the prime.", "options": ["4", "6", "7"], "subject": "math"},
    {"id": "q2", "question": "Pick the colour.", "options": ["red", "dog", "cat", "sun", "tree"]},
]
REPORT_TEXT_FILES = ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "subjects.md", "subjects.csv",
                     "items.csv", "top_items.md", "delta_sweep.md", "delta_sweep.csv")
REPORT_SETTINGS = {
    "report": ["--null-draws", "20"],
    "report_mirror": ["--null-draws", "0", "--b-null", "mirror", "--keep-nonexchangeable",
                      "--delta", "-0.1", "--delta-sweep=-0.25,-0.1", "--alpha", "0.2"],
}


def environment(data: Path) -> dict[str, str]:
    """Environment of the golden ``lm_eval`` run: offline, each benchmark read from its golden file."""
    custom = data / "custom.jsonl"
    custom.write_text("".join(json.dumps(r) + "\n" for r in CUSTOM), encoding="utf-8")
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "LM_EVAL_LEAKAGE_MMLU_DATA": str(GOLDEN / "mmlu_items.jsonl"),
        "LM_EVAL_LEAKAGE_CMB_DATA": str(GOLDEN / "cmb_items.json"),
        "LM_EVAL_LEAKAGE_CUSTOM_DATA": str(custom),
    }


def run_lm_eval(model: Path, out: Path, env: dict[str, str]) -> None:
    lm_eval = Path(sys.executable).parent / "lm_eval"
    subprocess.run(
        [str(lm_eval), "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
         "--tasks", ",".join(TASKS), "--device", "cpu", "--batch_size", "16",
         "--output_path", str(out), "--log_samples"],
        check=True, env=env,
    )


def write_reports(run: Path, target: Path) -> None:
    for name, extra in REPORT_SETTINGS.items():
        with tempfile.TemporaryDirectory() as scratch:
            subprocess.run([sys.executable, "-m", "lm_eval_leakage", "report", str(run), "--out", scratch,
                            "--formats", "png", *extra], check=True)
            folder = target / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for file in REPORT_TEXT_FILES:
                if (Path(scratch) / file).exists():
                    shutil.copy(Path(scratch) / file, folder / file)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        model = build_tiny_model(work / "tiny")
        run_lm_eval(model, work / "out", environment(work))
        (produced,) = [p for p in (work / "out").iterdir() if p.is_dir()]
        shutil.rmtree(GOLDEN / "run", ignore_errors=True)
        shutil.copytree(produced, GOLDEN / "run" / "tiny")
    write_reports(GOLDEN / "run", GOLDEN)


if __name__ == "__main__":
    main()
