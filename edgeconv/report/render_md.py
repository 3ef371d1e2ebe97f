"""The document as Markdown (report.md, and the summary without plots); images are linked PNG
files beside it."""

from __future__ import annotations

from edgeconv.report.document import Document, Image, Table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document, images: bool = True, title: bool = True) -> str:
    """report.md; without images or title it is a summary to paste under another heading."""
    out = [f"# {doc.title}", ""] if title else []
    for section in doc.sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Image) and not images:
                continue
            if isinstance(block, Table):
                out.append("| " + " | ".join(map(_cell, block.columns)) + " |")
                out.append("|" + "---|" * len(block.columns))
                out += ["| " + " | ".join(_cell(str(c)) for c in row) + " |" for row in block.rows]
            elif isinstance(block, Image):
                out.append(f"![{block.alt}]({block.file})")
            else:
                out.append(block)
            out.append("")
    return "\n".join(out)
