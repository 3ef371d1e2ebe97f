"""docs/claims.md, generated from the claims as data (edgeconv/report/claims.py).

The page is a rendering of CLAIMS, so it cannot say something the report does not check;
tests/test_claims_doc.py fails when the committed page and this rendering differ.
Regenerate: python -m edgeconv.report.claims_doc > docs/claims.md
"""

from __future__ import annotations

import sys
import textwrap

from edgeconv.report.claims import ARTICLES, CLAIMS, VERDICTS, Claim

REGENERATE = "python -m edgeconv.report.claims_doc > docs/claims.md"

_INTRO = """\
edgeconv exists to make the deployment argument of five tutorial articles on compact
convolutional networks reproducible on real runtimes and hardware: dropping fully-connected
heads, depthwise separable convolutions, 1x1 bottlenecks, Fire modules, MobileNet v1/v2.
Architecture arithmetic (parameters, MACs, feature maps) is computed from the zoo's Keras
models, as `edgeconv inspect` prints it; speed, size, memory and accuracy are measured by
`edgeconv export` and `edgeconv bench`. The articles assert most of the speed and memory
claims; edgeconv measures them.

`edgeconv report` (see [report.md](report.md)) gives every claim below a verdict, with the
figure it measured and the evidence or the command that would produce it. Every accuracy is
shown with its 95% interval, its number of images and its dataset; a claim about the
articles' data (MNIST, CIFAR-10, ImageNet) measured on other data (digits, Fashion-MNIST)
says so in its verdict, and is at most partly reproduced:"""

_VERDICT_MEANING = {
    "reproduced": "the measurement meets the claim's rule (last column)",
    "partly": "it meets a weaker form of the rule, or on other data than the article's",
    "within noise": "the comparison was measured, but the difference is smaller than the"
                    " measurement's own noise: the 95% interval of the ratio of the two"
                    " medians (p50 latencies, epoch times) includes 1, so the data neither"
                    " shows the claimed difference nor the opposite. More timed runs, or a"
                    " quieter machine, narrow the interval; without intervals (older files,"
                    " fewer than 6 runs) a rule compares the points and its evidence says so",
    "not reproduced": "a measurement contradicts the claim",
    "not measurable here": "edgeconv has no model, data or figure for it; the report says"
                           " which, and the command that would produce it when one would",
}

_COLUMNS = ["id", "the article's claim", "stated", "what edgeconv measures", "verdict rule"]


def render_claims_page() -> str:
    """The whole of docs/claims.md."""
    lines = ["# The articles' claims, and how edgeconv checks them", "",
             "Generated from `edgeconv/report/claims.py`: edit that file, not this page, then:",
             "", f"    {REGENERATE}", "",
             "(tests/test_claims_doc.py fails while the two differ.)", "", _INTRO, ""]
    lines += [_wrap(f"- **{v}**: {_VERDICT_MEANING[v]}.", "  ") for v in VERDICTS]
    per_article = ", ".join(f"{sum(c.source == a for c in CLAIMS)} from {a}" for a in ARTICLES)
    unmeasurable = sum(c.rule == "unmeasurable" for c in CLAIMS)
    lines += ["", _wrap(f"{len(CLAIMS)} claims ({per_article}). {unmeasurable} of them cannot"
                        " be measured with edgeconv's zoo and data at all; the last column says"
                        " why. The other rules are functions of `edgeconv/report/verdicts.py`,"
                        " named in the last column."), ""]
    for letter, title in ARTICLES.items():
        claims = [c for c in CLAIMS if c.source == letter]
        lines += [f"## {letter}. {title}", "",
                  "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
        lines += ["| " + " | ".join(_cell(v) for v in _row(c)) + " |" for c in claims]
        lines.append("")
    return "\n".join(lines)


def _row(claim: Claim) -> list[str]:
    rule = f"`{claim.rule}`: {claim.rule_text}"
    if claim.rule == "unmeasurable":
        rule = f"not measurable here: {claim.args['reason']}"
    return [f"`{claim.id}`", claim.claim, claim.stated, claim.measures, rule]


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(text, width=92, subsequent_indent=indent, break_on_hyphens=False,
                         break_long_words=False)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    sys.stdout.write(render_claims_page())
