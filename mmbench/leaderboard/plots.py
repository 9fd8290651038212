"""Inline SVG plots: the per-subset bar chart of a task and its training curves (matplotlib, Agg),
and the one-line curve of each run page, written directly (one per record: at 10,000 records
matplotlib's 0.1 s a figure would be most of a build).

Output is deterministic — fixed hash salt, no date metadata, text kept as text — so a rebuilt
site diffs cleanly.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from html import escape

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


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values spanning ``[low, high]``."""
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def line(xs: Sequence[float], ys: Sequence[float], xlabel: str, ylabel: str, colour: str = "#1f77b4") -> str:
    """One series as a small inline SVG line plot with its axes, ticks and labels (deterministic)."""
    width, height, left, right, top, bottom = 480, 220, 52, 12, 10, 38
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.08 or max(abs(y0) * 0.05, 0.5)
    y0, y1 = y0 - pad, y1 + pad
    x1 = x1 if x1 > x0 else x0 + 1

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10" role="img">',
             f'<path d="M{left} {top}V{height - bottom}H{width - right}" fill="none" stroke="#444"/>']
    for y in _ticks(y0, y1):
        parts.append(f'<line x1="{left - 4}" x2="{left}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#444"/>'
                     f'<text x="{left - 6}" y="{py(y) + 3:.1f}" text-anchor="end">{y:g}</text>')
    for x in _ticks(x0, x1, 8):
        if float(x).is_integer() or x1 - x0 < 4:
            parts.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{height - bottom}" y2="{height - bottom + 4}" '
                         f'stroke="#444"/><text x="{px(x):.1f}" y="{height - bottom + 15}" text-anchor="middle">{x:g}</text>')
    points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
    parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.2" fill="{colour}"/>' for x, y in zip(xs, ys, strict=True)]
    parts.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 4}" text-anchor="middle">{escape(xlabel)}</text>')
    parts.append(f'<text transform="translate(12 {(top + height - bottom) / 2:.0f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(ylabel)}</text></svg>')
    return "".join(parts)
