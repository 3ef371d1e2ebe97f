"""The document as one self-contained HTML file: styles inline, every image a base64 data:
URI, no script and no external resource, so it opens offline and can be mailed as is."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from edgeconv.report.document import Document, Image, Table

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; }
th { background: #f0f0f0; }
code { background: #f4f4f4; padding: 0 2px; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def _inline(text: str) -> str:
    """Escape, then the two Markdown inline forms the document uses: `code` and **bold**."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def to_html(doc: Document, directory: Path) -> str:
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{html.escape(doc.title)}</title><style>{_STYLE}</style></head><body>",
           f"<h1>{html.escape(doc.title)}</h1>"]
    for section in doc.sections:
        out.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Table):
                out.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in block.columns)
                           + "</tr>")
                out += ["<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in row) + "</tr>"
                        for row in block.rows]
                out.append("</table>")
            elif isinstance(block, Image):
                data = base64.b64encode((directory / block.file).read_bytes()).decode("ascii")
                out.append(f"<figure><img alt=\"{html.escape(block.alt)}\""
                           f" src=\"data:image/png;base64,{data}\"></figure>")
            else:
                out.append(f"<p>{_inline(block)}</p>")
    out.append("</body></html>")
    return "\n".join(out)
