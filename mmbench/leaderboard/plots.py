"""Inline SVG plots (matplotlib, Agg): the per-subset bar chart of a task and training curves.

Output is deterministic — fixed hash salt, no date metadata, text kept as text — so a rebuilt
site diffs cleanly.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"svg.hashsalt": "mmbench", "svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
         "axes.spines.right": False, "font.family": "sans-serif"}


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG is inlined in HTML


def _scope_ids(svg: str, prefix: str) -> str:
    """Prefix every id (and its references) so several inline SVGs on a page never collide."""
    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", prefix)
    return re.sub(r'(id="|url\(#|href="#)', lambda m: f"{m.group(1)}{prefix}-", svg)


def _plain(text: str) -> str:
    """Text drawn as written: matplotlib parses ``$...$`` as mathtext (a label such as
    ``$\\frac{$`` would fail to render); an escaped dollar is drawn as one."""
    return str(text).replace("$", r"\$")


def subset_bars(labels: Sequence[str], subsets: Sequence[str], means: Sequence[Sequence[float | None]],
                stds: Sequence[Sequence[float | None]], metric: str, plot_id: str) -> str:
    """Grouped bars: one group per subset, one bar per row (mean ± std, in percent)."""
    with plt.rc_context(STYLE):
        width = max(6.0, 0.9 + 0.28 * len(subsets) * max(len(labels), 1))
        figure, axis = plt.subplots(figsize=(min(width, 14.0), 3.4))
        count = max(len(labels), 1)
        bar = 0.8 / count
        colours = plt.get_cmap("tab20")
        for i, label in enumerate(labels):
            xs = [j - 0.4 + bar * (i + 0.5) for j in range(len(subsets))]
            heights = [100 * m if m is not None else 0.0 for m in means[i]]
            errors = [100 * s if s is not None else 0.0 for s in stds[i]]
            axis.bar(xs, heights, bar, yerr=errors, label=_plain(label), color=colours(i % 20), capsize=1.5,
                     error_kw={"elinewidth": 0.6})
        axis.set_xticks(range(len(subsets)), [_plain(s) for s in subsets], rotation=20)
        axis.set_ylabel(_plain(f"{metric} (%)"))
        axis.legend(fontsize=7, ncols=2, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _scope_ids(_svg(figure), plot_id)


def curves(series: Sequence[tuple[str, Sequence[int], Sequence[float]]], ylabel: str, plot_id: str) -> str:
    """Line plot of ``(label, epochs, values)`` series (values already in display units)."""
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(6.0, 3.0))
        colours = plt.get_cmap("tab20")
        for i, (label, epochs, values) in enumerate(series):
            axis.plot(list(epochs), list(values), marker="o", markersize=2.5, linewidth=1.2, label=_plain(label),
                      color=colours(i % 20))
        axis.set_xlabel("epoch")
        axis.set_ylabel(_plain(ylabel))
        if len(series) > 1:
            axis.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _scope_ids(_svg(figure), plot_id)
