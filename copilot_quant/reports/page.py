"""The shell every report page shares: styles, heading, how times are shown, and writing the file.

Pages are single files that open offline (plotly.js is embedded by the page's figure); times are shown in
the exchange's zone (New York), where sessions are defined.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from copilot_quant.data.dates import EXCHANGE_TZ

__all__ = ["REPORT_CSS", "ny_day", "ny_time", "page_html", "paragraphs", "write_page"]

log = logging.getLogger(__name__)

REPORT_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
table.metrics th{text-align:left;background:#f6f6f6}
.pos{color:#1a7f37} .neg{color:#c62828}
.errors{color:#c62828}
.note{color:#555;font-size:13px;margin:4px 0}
table.symbols th{text-align:left} table.symbols tr.total{font-weight:bold;background:#f6f6f6}
tr.best{font-weight:bold;background:#eef6ee}
table.ranked th,table.folds th{background:#f6f6f6}
.warn{color:#8a5300;background:#fff6e0;padding:6px 10px;border-left:3px solid #e0a000;max-width:900px}
p.note{max-width:900px}
"""


def page_html(title: str, sub: str, body: str, extra_css: str = "") -> str:
    """A whole page: ``title`` as its heading, ``sub`` (plain text) under it with the time it was made,
    then ``body`` (HTML)."""
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{REPORT_CSS}{extra_css}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="sub">{html.escape(sub)} · generated {html.escape(generated)} by copilot-quant</p>
{body}
</body></html>
"""


def paragraphs(texts: Sequence[str], cls: str = "note") -> str:
    """Each non-empty text (plain) as a ``<p>`` of class ``cls``."""
    return "".join(f'<p class="{cls}">{html.escape(t)}</p>' for t in texts if t)


def write_page(page: str, path: str | Path, kind: str) -> Path:
    """Write ``page`` to ``path`` (parent folders are created); returns the resolved path."""
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    log.info("wrote %s report %s", kind, target)
    return target.resolve()


def ny_day(value: object) -> str:
    """A time as its New York day."""
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    return (ts.tz_convert(EXCHANGE_TZ) if ts.tzinfo is not None else ts).strftime("%Y-%m-%d")


def ny_time(value: object, date_only: bool = False) -> str:
    """A time in New York to the minute (or its day), empty for a missing one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    if ts.tzinfo is not None:
        ts = ts.tz_convert(EXCHANGE_TZ)
    return ts.strftime("%Y-%m-%d" if date_only else "%Y-%m-%d %H:%M")
