"""Which model a run is, and the short name the report shows for it.

A run's model is keyed by what lm-eval wrote in its results file: ``config.model`` with
``config.model_args`` (``pretrained=/models/tiny,dtype=float32``, a string or an object), else
``model_name``, else (no results file) the run's folder. Two runs with the same key and task are the
same model run twice (the later one wins, see ``runs.load_runs``); different keys are different
models, even when their paths end in the same folder name.

The display name is the last part of a local path (``/models/tiny`` -> ``tiny``) or the hub name
(``org/model``). When two models would show the same name, each gets the fewest trailing parts of
its path that tell it from the others (``models/tiny``, ``other/tiny``), and, when the paths are the
same, the model arguments that differ (``tiny (dtype=float16)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any


@dataclass(frozen=True)
class ModelId:
    """A model as a run's files name it.

    Attributes:
        key: Full identity: model type and arguments, the full model name, or the run folder.
        name: Short display name (before disambiguation).
        path: The model's path or hub name, split into parts (for disambiguation).
        args: Model arguments other than the path, as ``key=value`` texts.
    """

    key: str
    name: str
    path: tuple[str, ...]
    args: tuple[str, ...] = ()


def _args(model_args: Any) -> dict[str, str]:
    """lm-eval's ``model_args`` (``"a=1,b=2"`` or ``{"a": 1}``) as a dict of texts."""
    if isinstance(model_args, Mapping):
        return {str(k): str(v) for k, v in model_args.items()}
    pairs = [p.split("=", 1) for p in str(model_args or "").split(",") if p.strip()]
    return {p[0].strip(): (p[1].strip() if len(p) > 1 else "") for p in pairs}


def short_name(full: str) -> str:
    """``/models/tiny`` -> ``tiny`` (local paths), hub names unchanged."""
    return PurePosixPath(full).name if full.startswith(("/", ".", "~")) else full


def model_id(results: Mapping[str, Any] | None, folder: str) -> ModelId:
    """The model of a run from its results file (``None``: no results file, keyed by ``folder``)."""
    if results is None:
        return ModelId(key=f"folder:{folder}", name=PurePosixPath(folder).name, path=PurePosixPath(folder).parts)
    config = results.get("config") if isinstance(results.get("config"), Mapping) else {}
    args = _args(config.get("model_args"))
    full = str(results.get("model_name") or args.get("pretrained") or args.get("model") or "")
    path = args.get("pretrained") or args.get("model") or full
    others = tuple(f"{k}={v}" for k, v in args.items() if k not in ("pretrained", "model"))
    if args:
        key = f"{config.get('model', '')}:" + ",".join(f"{k}={v}" for k, v in args.items())
    elif full:
        key = f"name:{full}"
    else:
        key = f"folder:{folder}"
    name = short_name(full) if full else PurePosixPath(folder).name
    return ModelId(key=key, name=name, path=PurePosixPath(path or folder).parts, args=others)


def display_names(ids: Sequence[ModelId]) -> dict[str, str]:
    """A unique display name per key of ``ids`` (see the module docstring)."""
    unique = {m.key: m for m in ids}
    by_name: dict[str, list[ModelId]] = {}
    for m in unique.values():
        by_name.setdefault(m.name, []).append(m)
    names: dict[str, str] = {}
    for name, group in by_name.items():
        if len(group) == 1:
            names[group[0].key] = name
            continue
        for m in group:
            names[m.key] = _distinguished(m, [o for o in group if o.key != m.key])
    taken: dict[str, int] = {}
    for key in sorted(names):  # last resort: the same path and arguments under other keys
        taken[names[key]] = taken.get(names[key], 0) + 1
        if taken[names[key]] > 1:
            names[key] = f"{names[key]} #{taken[names[key]]}"
    return names


def _distinguished(model: ModelId, others: Sequence[ModelId]) -> str:
    """``model``'s name with the fewest trailing path parts (then arguments) that no other shares."""
    parts = [p for p in model.path if p != "/"]
    for k in range(2, len(parts) + 1):
        tail = parts[-k:]
        if all([p for p in o.path if p != "/"][-k:] != tail for o in others):
            return "/".join(tail)
    base = "/".join(parts[-1:]) or model.name
    same_path = [o for o in others if o.path == model.path]
    differing = [a for a in model.args if any(a not in o.args for o in same_path)]
    return f"{base} ({','.join(differing)})" if differing else base
