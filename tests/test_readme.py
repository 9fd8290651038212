"""The plugin example in the README is real: it loads as a plugin and passes the conformance kit."""

from pathlib import Path

from mmbench.plugins import Registry
from mmbench.testing import check_method

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_plugin_example_conforms(tmp_path):
    text = README.read_text()
    block = text.split("<!-- plugin-example -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    plugin = tmp_path / "pooled.py"
    plugin.write_text(block)
    registry = Registry.load(plugins=[str(plugin)], entry_points=False)
    assert not registry.broken
    records = check_method(registry.method("pooled-linear"), overrides={"scale": "2"}, out=tmp_path / "runs")
    assert {r["task"]["kind"] for r in records} == {"classification", "anti-spoofing"}
    assert records[0]["config"] == {"scale": 2.0}
