"""`edgeconv report`: the articles' deployment argument from measured data.

collect (manifests, results.json) -> summary (per-export figures) and verdicts (claims.py's
rules) -> plots -> document -> report.md / report.html. Never measures anything itself.
"""

from __future__ import annotations

from edgeconv.report.build import ReportConfig, ReportResult, build_report

__all__ = ["ReportConfig", "ReportResult", "build_report"]
