"""Numbers reported in papers (``leaderboards/reported/*.csv``), shown next to reproduced rows.

One row per (paper table cell): ``task, subset, metric, method, paper_method, config, scenario,
teacher, value, paper, table, section, url, note``. ``value`` is in percent as printed in the paper;
``method`` is the mmbench method the cell reproduces (empty for methods mmbench does not ship);
``config`` (``key=value;...``) and ``scenario`` / ``teacher`` pick the reproduced variant it is
compared with.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmbench.errors import MMBenchError

REPORTED_COLUMNS = ["task", "subset", "metric", "method", "paper_method", "config", "scenario", "teacher", "value",
                    "paper", "table", "section", "url", "note"]


def load_reported(directory: Path | None) -> pd.DataFrame:
    """Every ``*.csv`` under ``directory`` (sorted by file name), validated; an empty frame when
    ``directory`` is ``None`` or holds no CSV."""
    frames = []
    for path in sorted(Path(directory).glob("*.csv")) if directory is not None else []:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise MMBenchError(f"{path} is not a readable CSV: {exc}") from None
        missing = [c for c in REPORTED_COLUMNS if c not in frame.columns]
        if missing:
            raise MMBenchError(f"{path} lacks the column(s) {', '.join(missing)}; expected {','.join(REPORTED_COLUMNS)}.")
        values = pd.to_numeric(frame["value"], errors="coerce")
        if values.isna().any():
            line = int(values.isna().to_numpy().argmax()) + 2
            raise MMBenchError(f"{path}, line {line}: value '{frame['value'].iloc[line - 2]}' is not a number.")
        bad_url = frame.index[~frame["url"].str.match(r"^(https?://\S+)?$")]
        if len(bad_url):
            line = int(bad_url[0]) + 2
            raise MMBenchError(f"{path}, line {line}: url '{frame['url'].iloc[line - 2]}' is not an http(s) address.")
        frame = frame[REPORTED_COLUMNS].copy()
        frame["value"] = values
        frame["source"] = path.name
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*REPORTED_COLUMNS, "source"])
    return pd.concat(frames, ignore_index=True)


def parse_config(text: str) -> dict[str, str]:
    """``"a=1;b=x"`` → ``{"a": "1", "b": "x"}``."""
    pairs = [p.strip() for p in text.split(";") if p.strip()]
    return dict(p.split("=", 1) for p in pairs if "=" in p)
