"""The plugin entry points and the start-up bridge that stands in for them.

Two lm-evals are covered: 0.4.13, which reads no plugin entry points (the bridge adds the task
folder and ``hf-prefix``), and one that reads them, simulated here the way lm-eval's plugin loaders
resolve an entry point: for ``lm_eval.tasks`` the module part of the value becomes a folder (a
package's own folder, or the folder holding a plain module) scanned for YAML; for
``lm_eval.models`` the ``module:object`` value is registered under the entry point's name. With
the simulated lm-eval, every ``leak_*`` task is indexed from one folder only and the bridge
registers nothing itself.
"""

from __future__ import annotations

import importlib.util
import inspect
import types
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from lm_eval.api import registry
from lm_eval.tasks.manager import TaskManager

from lm_eval_leakage.harness import autoload
from lm_eval_leakage.harness.autoload import PREFIX_MODEL, tasks_dir

REAL_INIT = inspect.unwrap(TaskManager.__init__)


def _entry_point(group: str, name: str) -> Any:
    found = [ep for ep in entry_points(group=group) if ep.name == name]
    assert len(found) == 1, f"the installed project declares no {group} entry point {name!r}: reinstall it"
    return found[0]


def plugin_folder(value: str) -> Path:
    """Folder of a task entry point's value, as a plugin-aware lm-eval resolves it."""
    spec = importlib.util.find_spec(value.split(":")[0])
    assert spec is not None, value
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    assert spec.origin is not None
    return Path(spec.origin).resolve().parent


class PluginAwareTaskManager(TaskManager):
    """A manager that indexes every ``lm_eval.tasks`` plugin folder before ``include_path``."""

    def __init__(self, verbosity: Any = None, include_path: Any = None, include_defaults: bool = True,
                 metadata: Any = None) -> None:
        extra = [] if include_path is None else list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
        self.scanned = [plugin_folder(ep.value) for ep in entry_points(group="lm_eval.tasks")] + [Path(p).resolve() for p in extra]
        REAL_INIT(self, include_path=self.scanned, include_defaults=include_defaults, metadata=metadata)


def _bridged(cls: type) -> type:
    """A fresh subclass of ``cls`` (own ``__init__``) wrapped by the bridge, as lm-eval's would be."""
    sub = type(cls.__name__, (cls,), {"__init__": lambda self, *a, **k: cls.__init__(self, *a, **k)})
    autoload.patch_task_manager(types.SimpleNamespace(TaskManager=sub))
    return sub


def test_task_entry_point_names_the_folder_of_the_yamls() -> None:
    folder = plugin_folder(_entry_point("lm_eval.tasks", "leakage").value)
    assert folder == tasks_dir().resolve()
    yamls = {p.name for p in folder.rglob("*.yaml")}
    assert {"leak_mmlu.yaml", "leak_cmb_control.yaml", "leak_custom_native.yaml"} <= yamls
    assert all(name.startswith("leak_") for name in yamls), "the plugin folder holds only this package's tasks"


def test_plain_lm_eval_gets_the_folder_from_the_bridge() -> None:
    plain = type("TaskManager", (TaskManager,), {"__init__": REAL_INIT})
    assert not autoload.indexes_task_plugins(plain, REAL_INIT)
    manager = _bridged(plain)(include_defaults=False)
    assert "leak_mmlu" in manager.all_tasks
    assert [Path(p).resolve() for p in manager.include_path] == [tasks_dir().resolve()]


def test_plugin_aware_lm_eval_indexes_the_folder_once() -> None:
    cls = _bridged(PluginAwareTaskManager)
    assert autoload.indexes_task_plugins(PluginAwareTaskManager, PluginAwareTaskManager.__init__)
    manager = cls(include_defaults=False)
    assert manager.scanned.count(tasks_dir().resolve()) == 1, manager.scanned
    assert {"leak_mmlu", "leak_cmb_control", "leak_custom_native"} <= set(manager.all_tasks)
    user = cls(include_path=["/nonexistent-user-tasks"], include_defaults=False)
    assert user.scanned.count(tasks_dir().resolve()) == 1, user.scanned


def test_model_entry_point_resolves_to_the_prefix_model() -> None:
    from lm_eval_leakage.harness.prefix_model import PrefixSharingHFLM

    ep = _entry_point("lm_eval.models", PREFIX_MODEL)
    assert ep.value == autoload.PREFIX_MODEL_TARGET
    models = registry.Registry("model")
    models.register(ep.name, target=ep.value)  # what a plugin-aware registry does with it
    assert models.get(PREFIX_MODEL) is PrefixSharingHFLM


def test_bridge_registers_the_model_only_without_plugin_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not autoload.loads_model_plugins(registry), "lm-eval 0.4.13 loads no model plugins"
    monkeypatch.setattr(registry, "model_registry", registry.Registry("model"))
    autoload.register_models(types.ModuleType("lm_eval.models"))
    assert PREFIX_MODEL in registry.model_registry

    monkeypatch.setattr(registry, "model_registry", registry.Registry("model"))
    monkeypatch.setattr(registry, "load_plugins", lambda group, components: [], raising=False)
    assert autoload.loads_model_plugins(registry)
    autoload.register_models(types.ModuleType("lm_eval.models"))
    assert PREFIX_MODEL not in registry.model_registry
