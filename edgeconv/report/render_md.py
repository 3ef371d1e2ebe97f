"""The document as Markdown (report.md); images are linked PNG files beside it."""

from __future__ import annotations

from edgeconv.report.document import Document, Image, Table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", ""]
    for section in doc.sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
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
