"""Make lm-eval see the ``leak_*`` tasks with no ``--include_path``.

lm-eval 0.4.13 has no plugin mechanism for tasks (an ``lm_eval.tasks`` entry-point group is
proposed upstream; ``pyproject.toml`` declares it for when it lands). Until then this bridge adds
the package's task folder to every ``TaskManager``'s ``include_path``:

* ``lm_eval_leakage.pth`` in site-packages runs :func:`install` at interpreter start. It only
  reads one environment variable and puts a finder on ``sys.meta_path``; nothing is imported.
* When (and only when) ``lm_eval.tasks.manager`` is imported, the finder wraps its loader so that,
  right after the module executes, ``TaskManager.__init__`` is wrapped to append the task folder.
  Likewise, right after ``lm_eval.models`` (lm-eval's list of model names) executes, the
  ``hf-prefix`` model is added to it as a lazy placeholder (``lm_eval_leakage.harness.prefix_model``, only
  imported when a run asks for it). The finder removes itself once both are done. This covers ``lm_eval``, ``python -m lm_eval``, ``accelerate launch -m
  lm_eval``, ``lm-eval ls/validate`` and ``simple_evaluate``, since all build a ``TaskManager``.

Switch it off with ``LM_EVAL_LEAKAGE_AUTOLOAD=0`` and pass
``--include_path "$(python -m lm_eval_leakage tasks-dir)"`` instead.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ENV_SWITCH = "LM_EVAL_LEAKAGE_AUTOLOAD"
_TASKS = "lm_eval.tasks.manager"
_MODELS = "lm_eval.models"
_PATCHED = "_lm_eval_leakage_patched"
PREFIX_MODEL = "hf-prefix"
"""``--model`` name of :class:`lm_eval_leakage.harness.prefix_model.PrefixSharingHFLM`."""
_PREFIX_MODEL_TARGET = "lm_eval_leakage.harness.prefix_model:PrefixSharingHFLM"


def tasks_dir() -> Path:
    """Folder of the task YAMLs: the package ``lm_eval_leakage.tasks`` (editable or installed alike)."""
    folder = Path(__file__).resolve().parent.parent / "tasks"
    if not (folder / "_leak_template_yaml").is_file():
        raise FileNotFoundError(f"lm_eval_leakage task folder {folder} has no _leak_template_yaml")
    return folder


def enabled() -> bool:
    """Whether the start-up bridge is on (default) or switched off by the environment."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in {"0", "false", "no", "off"}


def _with_our_tasks(include_path: Any) -> Any:
    ours = tasks_dir()
    paths = [] if include_path is None else list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
    if any(Path(p).resolve() == ours for p in paths):
        return include_path
    return [*paths, str(ours)]


def patch_task_manager(module: ModuleType) -> None:
    """Wrap ``module.TaskManager.__init__`` so every instance also indexes our task folder."""
    cls = module.TaskManager
    if getattr(cls.__init__, _PATCHED, False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) >= 2:  # include_path passed positionally (verbosity, include_path, ...)
            args = (args[0], _with_our_tasks(args[1]), *args[2:])
        else:
            kwargs["include_path"] = _with_our_tasks(kwargs.get("include_path"))
        original(self, *args, **kwargs)

    setattr(__init__, _PATCHED, True)
    cls.__init__ = __init__


def register_models(module: ModuleType) -> None:
    """Add ``hf-prefix`` to lm-eval's model registry, lazily (after ``lm_eval.models`` ran)."""
    from lm_eval.api.registry import model_registry

    if PREFIX_MODEL not in model_registry:
        model_registry.register(PREFIX_MODEL, target=_PREFIX_MODEL_TARGET)


_HOOKS = {_TASKS: patch_task_manager, _MODELS: register_models}


class _Loader(importlib.abc.Loader):
    def __init__(self, wrapped: importlib.abc.Loader, hook: Any) -> None:
        self._wrapped = wrapped
        self._hook = hook

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._wrapped.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._wrapped.exec_module(module)
        self._hook(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self._wrapped, name)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.pending = {name for name in _HOOKS if name not in sys.modules}

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.pending:
            return None
        self.pending.discard(fullname)
        if not self.pending:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)  # the real one, not us again
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, _HOOKS[fullname])
        return spec


def install() -> None:
    """Arm the bridge (called from the ``.pth`` file at interpreter start)."""
    if not enabled():
        return
    for name, hook in _HOOKS.items():
        if name in sys.modules:
            hook(sys.modules[name])
    if any(name not in sys.modules for name in _HOOKS) and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
