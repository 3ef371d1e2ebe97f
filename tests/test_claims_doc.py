"""docs/claims.md is generated from edgeconv/report/claims.py and must not drift from it."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_only_imagenet_keeps_a_claim_unmeasurable():
    # Issue 24: every claim ends measured, or with the one reason no machine here removes.
    from edgeconv.report.claims import CLAIMS

    unmeasurable = [c for c in CLAIMS if c.rule == "unmeasurable"]
    assert {c.id for c in unmeasurable} == {"C-resnet152", "C-xception-accuracy"}
    assert all("ImageNet" in c.args["reason"] and "offline" in c.args["reason"]
               for c in unmeasurable)


def _verdicts(ids):
    from edgeconv.report.arithmetic import Arithmetic
    from edgeconv.report.claims import CLAIMS
    from edgeconv.report.collect import Collection
    from edgeconv.report.verdicts import _RULES, Context

    ctx = Context(Collection(), Arithmetic())
    return {c.id: _RULES[c.rule](c, ctx) for c in CLAIMS if c.id in ids}


def test_issue24_arithmetic_claims_are_measured_from_the_built_networks():
    found = _verdicts({"D-bottleneck-params", "D-gap-head", "E-mlp-params", "C-inception-v2",
                       "C-mobilenetv2-block"})
    assert {k: v.verdict for k, v in found.items()} == {
        "D-bottleneck-params": "reproduced", "D-gap-head": "reproduced",
        "E-mlp-params": "reproduced", "C-inception-v2": "reproduced",
        "C-mobilenetv2-block": "reproduced"}
    assert "300 + 1,776 = 2,076" in found["D-bottleneck-params"].measured
    assert "200,960; mlp-mnist fc2: 65,792" in found["E-mlp-params"].measured
    assert "2.78x" in found["C-inception-v2"].measured


@pytest.mark.reference
def test_issue24_claims_on_the_deep_networks():
    found = _verdicts({"C-resnet-skip", "C-xception", "C-googlenet-params", "B-depth-kernel"})
    assert {k: v.verdict for k, v in found.items()} == {
        "C-resnet-skip": "reproduced", "C-xception": "reproduced",
        "C-googlenet-params": "partly", "B-depth-kernel": "reproduced"}
    assert found["C-resnet-skip"].measured.startswith("50 residual blocks")
    assert "8.7x fewer params" in found["C-googlenet-params"].measured
    assert "Table 1" in found["C-googlenet-params"].reason


def test_without_keras_the_new_rules_say_why():
    from edgeconv.report.arithmetic import Arithmetic
    from edgeconv.report.claims import CLAIMS
    from edgeconv.report.collect import Collection
    from edgeconv.report.verdicts import _RULES, Context

    ctx = Context(Collection(), Arithmetic(enabled=False))
    for claim in CLAIMS:
        if claim.rule in ("structure", "sweep_gains", "layer_sums", "factorisation"):
            verdict = _RULES[claim.rule](claim, ctx)
            assert verdict.verdict == "not measurable here"
            assert "--no-arithmetic" in verdict.reason
