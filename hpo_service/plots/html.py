"""Standalone HTML page for a figure dict, with plotly.js inlined (works offline, no CDN)."""

from __future__ import annotations

import html
import json
from functools import lru_cache
from typing import Any

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>html,body{{margin:0;height:100%;font-family:sans-serif}}#plot{{width:100%;height:100vh}}</style>
<script type="text/javascript">{plotly_js}</script>
</head>
<body>
<div id="plot"></div>
<script type="text/javascript">
const figure = {figure_json};
Plotly.newPlot("plot", figure.data, figure.layout, {{responsive: true, displaylogo: false}});
</script>
</body>
</html>
"""


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _script_safe_json(figure: dict[str, Any]) -> str:
    """JSON that cannot close the <script> element or open a comment inside it."""
    text = json.dumps(figure, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figure_html(figure: dict[str, Any], title: str) -> str:
    """A complete HTML page showing ``figure``; ``title`` goes into <title> (escaped)."""
    return _PAGE.format(
        title=html.escape(title), plotly_js=_plotly_js(), figure_json=_script_safe_json(figure)
    )
