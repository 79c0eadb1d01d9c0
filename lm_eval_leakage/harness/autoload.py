"""Make lm-eval see the ``leak_*`` tasks and the ``hf-prefix`` model with no extra flag.

``pyproject.toml`` declares both plugins the way lm-eval's entry-point groups expect them: the
``lm_eval.tasks`` entry point names the package ``lm_eval_leakage.tasks``, whose own folder holds
the task YAMLs, and the ``lm_eval.models`` entry point names ``hf-prefix``'s class. An lm-eval that
reads these groups needs nothing else. lm-eval 0.4.13 reads neither, so this bridge stands in for
it, and stands aside wherever the installed lm-eval does the job itself:

* ``lm_eval_leakage.pth`` in site-packages runs :func:`install` at interpreter start. It only
  reads one environment variable and puts a finder on ``sys.meta_path``; nothing is imported.
* When (and only when) ``lm_eval.tasks.manager`` is imported, the finder wraps its loader so that,
  right after the module executes, ``TaskManager.__init__`` is wrapped to append the task folder
  to ``include_path``, unless a probe shows that this ``TaskManager`` already indexes the task
  folder on its own (:func:`indexes_task_plugins`: a manager built with no default tasks and no
  include path finds ``leak_*`` tasks), in which case the folder is not added a second time.
* Likewise, right after ``lm_eval.models`` (lm-eval's list of model names) executes, ``hf-prefix``
  is added to the model registry as a lazy placeholder (``lm_eval_leakage.harness.prefix_model``,
  only imported when a run asks for it), unless lm-eval's registry loads model plugins itself
  (:func:`loads_model_plugins`). The finder removes itself once both are done. This covers
  ``lm_eval``, ``python -m lm_eval``, ``accelerate launch -m lm_eval``, ``lm-eval ls/validate`` and
  ``simple_evaluate``, since all build a ``TaskManager``.

Switch it off with ``LM_EVAL_LEAKAGE_AUTOLOAD=0`` and pass
``--include_path "$(python -m lm_eval_leakage tasks-dir)"`` instead.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import logging
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
PREFIX_MODEL_TARGET = "lm_eval_leakage.harness.prefix_model:PrefixSharingHFLM"
"""Its ``module:object`` path, as the ``lm_eval.models`` entry point in ``pyproject.toml`` gives it."""


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


def _is_ours(name: str) -> bool:
    return name.startswith("leak_")


def indexes_task_plugins(cls: type, init: Any) -> bool:
    """Whether ``cls`` finds this package's tasks with no ``include_path`` (plugin discovery).

    Builds one bare instance with ``init`` (the unwrapped ``__init__``), no default tasks and no
    include path, and looks for ``leak_*`` names in its index. lm-eval 0.4.13's manager indexes
    nothing then; one that reads the ``lm_eval.tasks`` entry points indexes our folder. The answer
    is kept per class, so the probe runs once per process.
    """
    cached = cls.__dict__.get("_lm_eval_leakage_plugin_aware")  # own class only: a base class may differ
    if cached is None:
        probe = cls.__new__(cls)
        try:
            init(probe, include_defaults=False)
            cached = any(_is_ours(name) for name in probe.all_tasks)
        except TypeError as error:  # no include_defaults argument: not a manager this probe knows
            logging.getLogger(__name__).debug("task-plugin probe of %s failed (%s); adding the task folder", cls, error)
            cached = False
        cls._lm_eval_leakage_plugin_aware = cached
    return bool(cached)


def patch_task_manager(module: ModuleType) -> None:
    """Wrap ``module.TaskManager.__init__`` so every instance also indexes our task folder.

    Nothing is added when the manager already discovers the folder through the ``lm_eval.tasks``
    entry point (:func:`indexes_task_plugins`), so no task is indexed twice.
    """
    cls = module.TaskManager
    if getattr(cls.__init__, _PATCHED, False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if not indexes_task_plugins(cls, original):
            if len(args) >= 2:  # include_path passed positionally (verbosity, include_path, ...)
                args = (args[0], _with_our_tasks(args[1]), *args[2:])
            else:
                kwargs["include_path"] = _with_our_tasks(kwargs.get("include_path"))
        original(self, *args, **kwargs)

    setattr(__init__, _PATCHED, True)
    cls.__init__ = __init__


def loads_model_plugins(registry_module: ModuleType) -> bool:
    """Whether lm-eval's registry loads ``lm_eval.models`` entry points itself.

    Detected by the capability, not a version: the registry module offers a plugin loader
    (``load_plugins``), which resolves ``--model`` names from the installed packages' entry points.
    """
    return callable(getattr(registry_module, "load_plugins", None))


def register_models(module: ModuleType) -> None:
    """Add ``hf-prefix`` to lm-eval's model registry, lazily (after ``lm_eval.models`` ran).

    Stands aside when the registry loads model plugins itself: the ``lm_eval.models`` entry point
    in ``pyproject.toml`` then names the same class.
    """
    from lm_eval.api import registry

    if loads_model_plugins(registry):
        return
    if PREFIX_MODEL not in registry.model_registry:
        registry.model_registry.register(PREFIX_MODEL, target=PREFIX_MODEL_TARGET)


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
