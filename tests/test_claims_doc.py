"""docs/claims.md is generated from edgeconv/report/claims.py and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from edgeconv.report.claims import ARTICLES, CLAIMS
from edgeconv.report.claims_doc import REGENERATE, render_claims_page

ROOT = Path(__file__).resolve().parents[1]


def test_the_claims_page_is_the_generated_one():
    page = (ROOT / "docs" / "claims.md").read_text()
    assert page == render_claims_page(), f"docs/claims.md is stale: run `{REGENERATE}`"


def test_the_page_lists_every_claim_under_its_article():
    page = render_claims_page()
    assert REGENERATE in "\n".join(page.splitlines()[:8])  # said where a reader starts
    for claim in CLAIMS:
        assert claim.source in ARTICLES, claim.id
        section = page.split(f"## {claim.source}. ")[1].split("\n## ")[0]
        assert f"| `{claim.id}` |" in section


def test_no_doc_sends_readers_outside_the_repository():
    """A user's clone has no ../shared: the claims live in docs/claims.md."""
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        assert "shared/" not in doc.read_text(), doc
