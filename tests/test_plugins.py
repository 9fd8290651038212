"""Plugin discovery: built-ins via entry points, local plugins, broken and duplicate plugins."""

import textwrap

import pytest

from mmbench.errors import MMBenchError
from mmbench.plugins import Registry

EXTRA_METHOD = """
from mmbench import MethodSpec, hookimpl

__version__ = "9.9"

def _build(task, config, ctx):
    from mmbench_baselines.models import build_fusion
    return build_fusion(task, config, ctx)

@hookimpl
def mmbench_methods():
    from mmbench_baselines import FusionConfig
    return [MethodSpec(name="{name}", description="test plugin", build=_build, config=FusionConfig,
                       kinds=frozenset({{"classification"}}))]
"""


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_builtin_plugins_register_through_entry_points(registry):
    names = {p.name: p for p in registry.plugins}
    assert {"synth", "baselines"} <= set(names)
    assert names["baselines"].distribution == "mmbench"
    assert {"unimodal", "fusion", "fusion-dropout", "se-fusion"} <= set(registry.names("method"))
    assert {"synth-rgbd-cls", "synth-rgbd-seg", "synth-rgbdi-pad"} <= set(registry.names("task"))
    assert not registry.broken


def test_local_plugin_file_and_env(tmp_path, monkeypatch):
    path = write(tmp_path, "extra", EXTRA_METHOD.format(name="extra-fusion"))
    registry = Registry.load(plugins=[path])
    assert registry.method("extra-fusion").description == "test plugin"
    assert registry.plugin_of("method", "extra-fusion").version == "9.9"
    monkeypatch.setenv("MMBENCH_PLUGINS", path)
    assert "extra-fusion" in Registry.load().names("method")


def test_import_failure_marks_plugin_broken_others_work(tmp_path):
    path = write(tmp_path, "boom", "raise RuntimeError('cannot load weights')\n")
    registry = Registry.load(plugins=[path])
    broken = {p.name: p.error for p in registry.broken}
    assert "boom" in broken and "RuntimeError: cannot load weights" in broken["boom"]
    assert "fusion" in registry.names("method")
    with pytest.raises(MMBenchError, match="Broken plugins: boom"):
        registry.method("from-boom")


def test_duplicate_names_error_names_both(tmp_path):
    one = write(tmp_path, "one", EXTRA_METHOD.format(name="twin"))
    two = write(tmp_path, "two", EXTRA_METHOD.format(name="twin"))
    registry = Registry.load(plugins=[one, two])
    with pytest.raises(MMBenchError) as info:
        registry.method("twin")
    assert "plugin 'one'" in str(info.value) and "plugin 'two'" in str(info.value)
    assert registry.duplicates()


def test_duplicate_of_a_builtin_name(tmp_path):
    path = write(tmp_path, "shadow", EXTRA_METHOD.format(name="fusion"))
    with pytest.raises(MMBenchError, match="plugin 'shadow'.*plugin 'baselines'|plugin 'baselines'.*plugin 'shadow'"):
        Registry.load(plugins=[path]).method("fusion")


def test_wrong_return_type_is_reported(tmp_path):
    path = write(tmp_path, "wrong", """
        from mmbench import hookimpl

        @hookimpl
        def mmbench_methods():
            return ["not a spec"]
    """)
    registry = Registry.load(plugins=[path])
    error = {p.name: p.error for p in registry.broken}["wrong"]
    assert "mmbench_methods() must return a list of MethodSpec, got str" in error


def test_misspelled_hook_is_reported(tmp_path):
    path = write(tmp_path, "typo", """
        from mmbench import hookimpl

        @hookimpl
        def mmbench_method():
            return []
    """)
    error = {p.name: p.error for p in Registry.load(plugins=[path]).broken}["typo"]
    assert "unknown hook mmbench_method" in error


def test_lifecycle_observers_are_called_and_cannot_break_a_run(tmp_path):
    calls = []

    class Observer:
        from mmbench import hookimpl

        @hookimpl
        def mmbench_run_start(self, run):
            calls.append(run["method"])

        @hookimpl
        def mmbench_run_end(self, run, record):
            raise ValueError("logger down")

    registry = Registry.load()
    registry.register_object("observer", Observer())
    registry.notify("mmbench_run_start", run={"method": "m"})
    with pytest.warns(RuntimeWarning, match="plugin 'observer' failed in mmbench_run_end"):
        registry.notify("mmbench_run_end", run={}, record={})
    assert calls == ["m"]


def test_unknown_names_suggest_closest(registry):
    with pytest.raises(MMBenchError, match="Did you mean 'fusion-dropout'"):
        registry.method("fusion-drop")
    with pytest.raises(MMBenchError, match="Did you mean 'synth-rgbd-seg'"):
        registry.task("synth-rgb-seg")


def test_method_recipe_defaults_name_real_recipe_fields():
    from mmbench import MethodSpec
    from mmbench.errors import MMBenchError

    with pytest.raises(MMBenchError, match=r"recipe=\{\.\.\.\} names unknown recipe field\(s\) selektion"):
        MethodSpec(name="x", description="", build=lambda *a: None, kinds=frozenset({"classification"}),
                   recipe={"selektion": "per-subset"})


def test_method_recipe_defaults_sit_under_the_users_options(registry):
    from mmbench.plan import plan_run

    assert plan_run(registry, "discomkd", "synth-mssar-cls", 0).recipe.selection == "per-subset"
    users = plan_run(registry, "discomkd", "synth-mssar-cls", 0, {"recipe.selection": "mean"})
    assert users.recipe.selection == "mean" and users.recipe.augment_probability == 0.5
    teacher_free = plan_run(registry, "discomkd", "synth-mssar-cls", 0)
    assert all(d.plan.recipe.selection == "mean" for d in teacher_free.dependencies)  # references: the task's recipe
