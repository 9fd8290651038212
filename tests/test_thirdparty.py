"""A third-party distribution registers a method through the `mmbench` entry-point group and runs
end to end through the CLI — the path every external plugin takes (no pip: a dist-info on
sys.path)."""

import json
import textwrap

import pytest

from conftest import FAST, run_cli

PLUGIN = '''
"""A third-party method: per-modality global-average-pooled pixels, concatenated, one linear layer."""
from dataclasses import dataclass

from mmbench import MethodSpec, hookimpl


@dataclass(frozen=True)
class Config:
    scale: float = 1.0


def build(task, config, ctx):
    import torch
    from torch import nn
    from mmbench.engine import MethodModule
    from mmbench.models import task_loss

    class PooledLinear(MethodModule):
        def __init__(self):
            super().__init__()
            self.modalities = ctx.modalities
            self.channels = [ctx.shapes[m][0] for m in ctx.modalities]
            self.linear = nn.Linear(sum(self.channels), task.num_classes)

        def _features(self, batch, present):
            parts = []
            for m, c in zip(self.modalities, self.channels):
                if m in present:
                    parts.append(batch[m].mean(dim=(2, 3)) * config.scale)
                else:
                    parts.append(batch["target"].new_zeros(batch["target"].shape[0], c, dtype=torch.float32))
            return torch.cat(parts, dim=1)

        def training_step(self, batch, step):
            logits = self.linear(self._features(batch, self.modalities))
            return {"ce": task_loss(task, logits, batch["target"])}

        def predict(self, batch, modalities):
            return self.linear(self._features(batch, modalities))

    return PooledLinear()


@hookimpl
def mmbench_methods():
    return [MethodSpec(name="pooled-linear", description="third-party test method", build=build,
                       config=Config, kinds=frozenset({"classification", "anti-spoofing"}))]
'''


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "thirdparty_mm").mkdir(parents=True)
    (root / "thirdparty_mm" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    dist = root / "thirdparty_mm-0.3.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-mm\nVersion: 0.3.0\n")
    (dist / "entry_points.txt").write_text("[mmbench]\npooled = thirdparty_mm\n")
    return root


def test_entry_point_plugin_is_listed(site):
    result = run_cli("plugins", "--json", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["pooled"]["distribution"] == "thirdparty-mm"
    assert plugins["pooled"]["version"] == "0.3.0"
    assert plugins["pooled"]["methods"] == ["pooled-linear"]


@pytest.mark.slow
def test_entry_point_method_runs_end_to_end(site, tmp_path):
    out = tmp_path / "runs"
    result = run_cli("run", "--method", "pooled-linear", "--task", "synth-rgbd-cls", "--set", "scale=2",
                     *FAST, "--out", str(out), env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    (path,) = (out / "synth-rgbd-cls" / "pooled-linear").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "completed"
    assert record["method"]["plugin"] == "pooled" and record["method"]["version"] == "0.3.0"
    assert record["config"] == {"scale": 2.0}
    assert set(record["metrics"]["best"]) == {"rgb+depth", "rgb", "depth"}
    assert "●" in result.stdout and "○" in result.stdout and "mean" in result.stdout  # results table
