"""Static HTML leaderboards from run records (``mmbench leaderboard build``).

Jinja2 templates (autoescape on) in ``templates/``, aggregation in pandas
(:mod:`mmbench.results`, :mod:`mmbench.leaderboard.tables`), plots as inline SVG
(:mod:`mmbench.leaderboard.plots`). The site needs no server and loads nothing from the network.
"""

from mmbench.leaderboard.site import BuildSummary, build_site

__all__ = ["BuildSummary", "build_site"]
