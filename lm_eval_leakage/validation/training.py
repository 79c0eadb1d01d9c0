"""Fine-tuning for the controlled-contamination runs: a plain torch loop with resumable checkpoints.

torch, transformers and tqdm are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

OPTIMIZER_FILE = "optimizer.pt"


def resolve_device(device: str | None) -> str:
    """``device`` if given, else ``"cuda"`` when available, else ``"cpu"``."""
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each text followed by the end-of-text token, truncated to ``max_length``."""
    eos = tokenizer.eos_token or ""
    return [
        tokenizer(text + eos, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
        for text in texts
    ]


def _batch_tensors(batch: Sequence[list[int]], pad_id: int) -> tuple[Any, Any, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding)."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
    return input_ids, attention, input_ids.masked_fill(attention == 0, -100)


def _train_epoch(
    model: Any, optimizer: Any, encoded: Sequence[list[int]], order: np.ndarray, *,
    batch_size: int, pad_id: int, device: str, bar: Any, epoch: int,
) -> list[float]:
    """One pass over ``encoded`` in ``order``; the loss of each step."""
    model.train()
    losses: list[float] = []
    for start in range(0, len(order), batch_size):
        input_ids, attention, labels = _batch_tensors([encoded[i] for i in order[start : start + batch_size]], pad_id)
        loss = model(
            input_ids=input_ids.to(device), attention_mask=attention.to(device), labels=labels.to(device)
        ).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.3f}")
    return losses


def _save_checkpoint(model: Any, tokenizer: Any, optimizer: Any, folder: Path, previous: Path | None) -> None:
    """Model, tokenizer and optimiser state in ``folder``; the previous optimiser state is removed."""
    import torch

    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
    if previous is not None:
        (previous / OPTIMIZER_FILE).unlink(missing_ok=True)


def _load(source: Path, device: str, learning_rate: float, *, resume: bool) -> tuple[Any, Any, Any]:
    """Model (float32, on ``device``), tokenizer and AdamW optimiser; its state too when resuming."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).to(device)
    model.config.use_cache = False
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    if resume:
        optimizer.load_state_dict(torch.load(source / OPTIMIZER_FILE, map_location=device))
    return model, tokenizer, optimizer


def fine_tune(
    model_dir: str | os.PathLike[str],
    texts: Sequence[str],
    *,
    epochs: Sequence[int],
    checkpoint_dir: str | os.PathLike[str],
    learning_rate: float,
    batch_size: int,
    max_length: int,
    seed: int,
    device: str = "cpu",
    resume_epoch: int = 0,
) -> Iterator[tuple[int, Path, dict[str, float]]]:
    """Continue the pre-training of a causal LM on ``texts``; yield after each listed epoch.

    Plain torch loop: AdamW (constant learning rate, no weight decay), batches of ``batch_size``
    texts in a seeded random order per epoch, right padding, causal-LM loss on every real token
    (the tokenizer's end-of-text token is appended to each text as a document boundary), texts
    truncated to ``max_length`` tokens. The model has no dropout in eval mode and this loop
    uses no other randomness, so a run is reproducible from ``seed`` on one device.

    Each checkpoint also holds the optimiser state (``optimizer.pt``, removed from the previous
    checkpoint when the next one is written), so that ``resume_epoch`` can continue an interrupted
    run exactly: the model and optimiser come from ``checkpoint_dir/epoch_<resume_epoch>`` and the
    shuffling generator replays the epochs already done.

    Yields:
        ``(epoch, checkpoint folder, {"loss", "seconds", "cpu_seconds"})`` after each epoch in
        ``epochs`` (loss: mean training loss of that epoch; the times: training and saving since
        the previous checkpoint); the folder holds the model and tokenizer.
    """
    from tqdm.auto import tqdm

    source = Path(checkpoint_dir) / f"epoch_{resume_epoch}" if resume_epoch else Path(model_dir)
    model, tokenizer, optimizer = _load(source, device, learning_rate, resume=bool(resume_epoch))
    encoded = _encode(tokenizer, texts, max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    rng = np.random.default_rng(seed)
    for _ in range(resume_epoch):  # replay the shuffles of the epochs already done
        rng.permutation(len(encoded))
    last, steps = max(epochs), math.ceil(len(encoded) / batch_size)
    bar = tqdm(total=last * steps, initial=resume_epoch * steps, desc="fine-tuning", unit="step")
    started, cpu_started = time.perf_counter(), time.process_time()
    previous = source if resume_epoch else None
    for epoch in range(resume_epoch + 1, last + 1):
        losses = _train_epoch(
            model, optimizer, encoded, rng.permutation(len(encoded)),
            batch_size=batch_size, pad_id=pad_id, device=device, bar=bar, epoch=epoch,
        )
        if epoch in epochs:
            folder = Path(checkpoint_dir) / f"epoch_{epoch}"
            _save_checkpoint(model, tokenizer, optimizer, folder, previous)
            previous = folder
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            yield epoch, folder, {"loss": float(np.mean(losses)), "seconds": seconds, "cpu_seconds": cpu_seconds}
            started, cpu_started = time.perf_counter(), time.process_time()
    bar.close()


__all__ = ["OPTIMIZER_FILE", "fine_tune", "resolve_device"]
