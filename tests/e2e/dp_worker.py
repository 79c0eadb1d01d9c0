"""Run leak_* tasks data-parallel on CPU (gloo), the way lm-eval's hf backend runs on many GPUs.

Launched by tests/test_distributed.py as ``python -m torch.distributed.run --nproc_per_node N``.
lm-eval's hf backend only enters its data-parallel mode when it sees more than one GPU; on a CPU
machine we put the model into exactly the state it would set there (accelerator, rank, world
size), so lm-eval's own sharding, gathering and rank-0 aggregation run unchanged.
"""

from __future__ import annotations

import json
import sys

from accelerate import Accelerator
from lm_eval import simple_evaluate
from lm_eval.api.registry import get_model


def main(model_dir: str, tasks: str, metadata: str, out_file: str, backend: str = "hf") -> None:
    accelerator = Accelerator(cpu=True)
    lm = get_model(backend)(pretrained=model_dir, device="cpu", batch_size=8, dtype="float32")
    if accelerator.num_processes > 1:
        lm.accelerator = accelerator
        lm._rank = accelerator.process_index
        lm._world_size = accelerator.num_processes
    results = simple_evaluate(model=lm, tasks=tasks.split(","), metadata=json.loads(metadata), bootstrap_iters=0)
    with open(f"{out_file}.rank{lm.rank}", "w", encoding="utf-8") as handle:
        json.dump({"rank": lm.rank, "world_size": lm.world_size}, handle)
    if accelerator.is_main_process:
        with open(out_file, "w", encoding="utf-8") as handle:
            json.dump({k: results[k] for k in ("results", "n-samples")}, handle, indent=1, default=str)


if __name__ == "__main__":
    main(*sys.argv[1:6])
