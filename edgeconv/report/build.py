"""`build_report`: collect -> arithmetic -> verdicts -> plots -> report.md + report.html."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.report import baselines
from edgeconv.report import document as d
from edgeconv.report import plots
from edgeconv.report.arithmetic import Arithmetic
from edgeconv.report.collect import collect
from edgeconv.report.render_html import to_html
from edgeconv.report.render_md import to_markdown
from edgeconv.report.summary import model_rows, pair_tables, targets_of
from edgeconv.report.user_models import user_models_section
from edgeconv.report.verdicts import Context, Verdict, judge_all

TITLE = "edgeconv: the articles' deployment argument, measured"
STUDY_TITLE = "edgeconv fit: which model fits the board"


@dataclass(frozen=True)
class ReportConfig:
    paths: tuple[Path, ...]
    out: Path
    arithmetic: bool = True  # params / MACs from the Keras models (needs the train extra)
    plots: bool = True
    summary: Path | None = None  # also write the report's tables, no plots, as Markdown here
    # published Fashion-MNIST reference points: these files, or None for the ones the
    # dataset-fashion-mnist package installs (edgeconv.report.baselines)
    baselines: tuple[Path, ...] | None = None


@dataclass
class ReportResult:
    out: Path
    files: list[Path]
    verdicts: list[Verdict]
    notes: list[str] = field(default_factory=list)
    # `edgeconv fit` study folders given: name, folder, recommended point id, verdict line
    studies: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "files": [str(f) for f in self.files],
                "claims": [{"id": v.claim.id, "source": v.claim.source, "claim": v.claim.claim,
                            "stated": v.claim.stated, "measured": v.measured,
                            "verdict": v.verdict, "evidence": v.evidence, "reason": v.reason,
                            "rule": v.claim.rule_text} for v in self.verdicts],
                "notes": self.notes, "studies": self.studies}


def build_report(config: ReportConfig, progress: Callable[[str], None] = lambda _: None
                 ) -> ReportResult:
    # Both outputs are checked before anything is read or written: a bad --summary must not
    # leave a half-written report behind.
    _atomic.check_output_dir(config.out, "--out")
    if config.summary is not None:
        _atomic.check_output_file(config.summary, "--summary")
    # Study folders (`edgeconv fit --out`) get their own sections; alone, only those.
    from edgeconv.report.study import (
        load_studies, split_studies, study_sections, without_studies,
    )

    study_paths, paths = split_studies(list(config.paths))
    studies = load_studies(study_paths)
    if studies and not paths:
        return _studies_report(config, studies, progress)
    progress("reading manifests and results")
    data = without_studies(collect(paths), studies)
    published = baselines.load(None if config.baselines is None else list(config.baselines))
    config.out.mkdir(parents=True, exist_ok=True)
    arithmetic = Arithmetic(config.arithmetic)
    progress("params and MACs from the models' arithmetic")
    rows = model_rows(data, arithmetic)
    progress("judging the claims")
    verdicts = judge_all(Context(data, arithmetic))
    notes = list(data.notes)
    if any(r.export.dataset == "fashion_mnist" and r.export.trained for r in rows):
        notes += published.notes
    if arithmetic.unavailable:
        notes.append(f"params and MACs not computed: {arithmetic.unavailable}")
    no_plots = plots.available() if config.plots else "plots skipped (--no-plots)"
    if no_plots:
        notes.append(no_plots)
    files: list[Path] = []
    draw = _plot_runner(config.out, no_plots, files, progress)

    targets = targets_of(rows)
    host = next((t for t in targets if any(lat.row.target == t and lat.row.timed_on != "host"
                                           for r in rows for lat in r.latencies)), "cpu")
    sections = [d.header(data, rows, [str(p) for p in config.paths]),
                d.claims_section(verdicts)]
    sweep = _sweep_section(verdicts, draw)  # B-depth-kernel's figure, when it was measured
    if sweep is not None:
        sections.append(sweep)
    mine = user_models_section(data)  # exports of the user's own models, if any
    if mine is not None:
        sections.append(mine)
    for table in pair_tables(rows):
        sections.append(d.pair_section(
            table, targets, lambda name, t=table: draw(plots.pair_figure)(name, t, targets)))
    sections.append(d.pareto_section(rows, draw(plots.pareto_figure)))
    grid = [r for r in rows if r.export.model == "mobilenet"]
    sections.append(d.grid_section(rows, lambda name: draw(plots.grid_figure)(name, grid, host)))
    gap = [r for r in rows if r.export.model == "gap-mnist"]
    sections.append(d.gap_section(rows, lambda name: draw(plots.gap_figure)(name, gap, host)))
    from edgeconv.report.mcu import mcu_section  # MCU targets: estimates, RAM, flash
    sections.append(mcu_section(data, draw))
    from edgeconv.report.tiers import tiers_section  # int8 / int16x8 / mixed per model
    tiers = tiers_section(data, draw)
    if tiers is not None:
        sections.append(tiers)
    from edgeconv.report.npu import npu_section  # Ethos-U targets: Vela's estimates
    npu = npu_section(data, draw)
    if npu is not None:
        sections.append(npu)
    reference = d.baselines_section(rows, published)
    if reference is not None:
        sections.append(reference)
    for study in studies:
        sections.extend(study_sections(study, draw))
    if notes:
        sections.append(d.Section("Notes", [f"{n}" for n in notes]))
    _write(d.Document(TITLE, sections), config, files, progress)
    return ReportResult(config.out, files, verdicts, notes,
                        [study.summary() for study in studies])


def _studies_report(config: ReportConfig, studies, progress) -> ReportResult:
    """Study folders alone: what each study asked and found, without the claims (which
    need exports and bench results, not a study)."""
    from edgeconv.report.study import studies_header, study_sections

    config.out.mkdir(parents=True, exist_ok=True)
    no_plots = plots.available() if config.plots else "plots skipped (--no-plots)"
    notes = [no_plots] if no_plots else []
    files: list[Path] = []
    draw = _plot_runner(config.out, no_plots, files, progress)

    sections = [studies_header(studies, [str(p) for p in config.paths])]
    for study in studies:
        sections.extend(study_sections(study, draw))
    if notes:
        sections.append(d.Section("Notes", notes))
    _write(d.Document(STUDY_TITLE, sections), config, files, progress)
    return ReportResult(config.out, files, [], notes, [study.summary() for study in studies])


def _plot_runner(out: Path, no_plots: str | None, files: list[Path],
                 progress: Callable[[str], None]):
    """`draw(figure_function)(name, *args)`: draws into out/name and lists the file, or does
    nothing (None) when plots are off or matplotlib is missing."""

    def draw(fn: Callable[..., Path]) -> Callable[..., Path | None]:
        def run(name: str, *args: Any) -> Path | None:
            if no_plots:
                return None
            progress(f"plotting {name}")
            path = fn(*args, out / name)
            files.append(path)
            return path
        return run
    return draw


def _write(doc: d.Document, config: ReportConfig, files: list[Path],
           progress: Callable[[str], None]) -> None:
    """report.md, report.html and, with --summary, the body alone (scripts/reproduce makes
    docs/RESULTS.md from it); each file written is added to `files`."""
    progress("writing report.md and report.html")
    _atomic.write_bytes(config.out / "report.md", to_markdown(doc).encode())
    _atomic.write_bytes(config.out / "report.html", to_html(doc, config.out).encode())
    files += [config.out / "report.md", config.out / "report.html"]
    if config.summary is not None:
        _atomic.write_bytes(config.summary, to_markdown(doc, images=False, title=False).encode())
        files.append(config.summary)


def _sweep_section(verdicts, draw) -> d.Section | None:
    """Article B's separable gains against depth and kernel size, as a figure."""
    measured = any(v.claim.rule == "sweep_gains" and v.measured != "-" for v in verdicts)
    if not measured:
        return None
    from edgeconv.zoo.sweep import separable_sweep

    s = d.Section("[B-depth-kernel] separable gains vs depth and kernel size")
    s.blocks.append("Params and MACs of the conv layers of article B's VGG pair built at 2 to 8"
                    " convs and 3x3 to 7x7 kernels (edgeconv/zoo/sweep.py), regular divided by"
                    " separable: computed from the built Keras models, not measured on a"
                    " runtime.")
    png = draw(plots.sweep_figure)("separable-sweep.png", separable_sweep())
    if png:
        s.blocks.append(d.Image(png.name, "separable gains vs depth and kernel size"))
    return s
