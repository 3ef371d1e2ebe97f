"""The report's section for a study folder (`edgeconv fit --out`): what was asked, what the
pruning ruled out and why, the rungs of successive halving, the finalists' Pareto table and
plot, the recommended model's one-line verdict, and, when the study searched MobileNet's
width and resolution, the articles' trade as measured here next to the paper's MAC figures.

Everything comes from study.json (edgeconv.fit.record); nothing is re-measured. A study's
trial folders are ordinary runs, but they are read through the study, not collected again
as runs: this section is the one that says what they are.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv import render
from edgeconv.errors import EdgeconvError
from edgeconv.files import walk_files
from edgeconv.fit import front as fr
from edgeconv.fit.record import KIND, MEASURED, STUDY, is_study, load_study, options_of
from edgeconv.manifest import MANIFEST
from edgeconv.records import read_json
from edgeconv.report.collect import Collection
from edgeconv.report.document import Image, Section, Table

PlotRunner = Callable[[Callable[..., Path]], Callable[..., Path | None]]


@dataclass(frozen=True)
class LoadedStudy:
    directory: Path
    doc: dict[str, Any]

    @property
    def name(self) -> str:
        return self.doc["name"]

    @property
    def target(self) -> str:
        return self.doc["request"]["target"]

    @property
    def winner(self) -> dict[str, Any] | None:
        return next((p for p in self.doc["finalists"] if p["id"] == self.doc["winner"]),
                    None)

    def verdict(self) -> str:
        """The recorded verdict; else the one the winner gives, or why there is none."""
        return fr.study_answer(self.doc)

    def summary(self) -> dict[str, Any]:
        """What `edgeconv report --json` and its console lines say of the study."""
        return {"name": self.name, "directory": str(self.directory),
                "status": self.doc["status"], "target": self.target,
                "winner": self.doc["winner"], "verdict": self.verdict()}


def split_studies(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(the studies: study folders or study.json files given, and those found under a folder
    given, e.g. studies/; the paths to collect as runs). A folder that holds studies stays
    an input only when it also holds runs outside them."""
    studies: list[Path] = []
    others: list[Path] = []
    for path in map(Path, paths):
        if is_study(path):
            studies.append(path)
            continue
        if path.is_dir():
            files = walk_files(path, what="folder")
            found = sorted({f.parent for f in files if f.name == STUDY and _ours(f)})
            studies.extend(found)
            runs = [f for f in files if f.name == MANIFEST or fnmatch.fnmatchcase(
                f.name, "results*.json")]
            if found and all(any(s in f.parents for s in found) for f in runs):
                continue
        others.append(path)
    return studies, others


def _ours(file: Path) -> bool:
    """A study.json `edgeconv fit` wrote (a file of that name from elsewhere is not one)."""
    try:
        data = read_json(file)
    except EdgeconvError:
        return False
    return isinstance(data, dict) and data.get("kind") == KIND


def without_studies(data: Collection, studies: list[LoadedStudy]) -> Collection:
    """`data` less the exports and results found inside the studies' folders (a folder of
    studies given with runs): their section says what they are, once."""
    roots = [s.directory for s in studies]

    def outside(path: Path) -> bool:
        path = path.resolve()
        return not any(root == path or root in path.parents for root in roots)

    data.exports = [e for e in data.exports if outside(e.directory)]
    data.rows = [r for r in data.rows if outside(r.source)]
    data.results_files = [f for f in data.results_files if outside(f)]
    targets = {r.row.target for r in data.rows}
    data.environments = {t: e for t, e in data.environments.items() if t in targets}
    return data


def load_studies(paths: list[Path]) -> list[LoadedStudy]:
    """Each study once however often it is named."""
    seen: dict[Path, LoadedStudy] = {}
    for path in paths:
        folder = (path if path.is_dir() else path.parent).resolve()
        if folder not in seen:
            seen[folder] = LoadedStudy(folder, load_study(path))
    return list(seen.values())


def studies_header(studies: list[LoadedStudy], inputs: list[str]) -> Section:
    """The opening of a report built from study folders alone."""
    from datetime import datetime, timezone

    s = Section("What this report is built from")
    s.blocks.append(
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `edgeconv report"
        f" {' '.join(inputs)}` from {len(studies)} `edgeconv fit` study folder(s). Nothing"
        " here was re-measured: every figure comes from the study's study.json, which"
        " records its trials' train.json, manifest.json and results.json figures. The"
        " articles' claims need exports and bench results: give run folders too"
        " (`edgeconv report studies/NAME runs/`) for those.")
    return s


def study_sections(study: LoadedStudy, draw: PlotRunner) -> list[Section]:
    return [s for s in (_request(study), _pruning(study), _rungs(study),
                        _answer(study, draw), _mobilenet_trade(study)) if s is not None]


# --- what was asked ------------------------------------------------------------------------


def _request(study: LoadedStudy) -> Section:
    doc, req = study.doc, study.doc["request"]
    s = Section(f"Study {study.name}: which model fits {study.target}")
    data = doc["data"] or {}
    split = ", ".join(f"{data[k]:,} {k}" for k in ("train", "val", "test")
                      if data.get(k) is not None)
    s.blocks.append(
        f"`edgeconv fit` study in `{study.directory.name}/` ({doc['status']}):"
        f" {len(doc['space']['candidates'])} candidate(s) from"
        f" {', '.join(doc['space']['entries']) or 'no entry'}, on {req['data']}"
        + (f" ({data['classes']} classes, {data['channels']} channel(s); {split} images)"
           if data else "") + ". Its trials are run folders under `trials/`, read here through"
        " study.json and not listed again as separate exports.")
    rows = [["target", study.target],
            ["latency ceiling", _or_none(req.get("max_latency_ms"), "{:g} ms")],
            ["accuracy floor", _or_none(req.get("min_accuracy"), "{:.1%}")],
            ["precisions", ", ".join(req["precisions"])],
            ["epochs (successive halving)", _rung_plan(req)],
            ["time budget", _or_none(req.get("time_budget_s"), "{:g} s")],
            ["train / eval samples", (f"{_or_none(req.get('train_samples'), '{:,}', 'all')}"
                                      f" / {_or_none(req.get('eval_samples'), '{:,}', 'all')}")],
            ["seed", _or_none(req.get("seed"), "{}")],
            ["executor", (req.get("executor") or "local")
             + (f" ({req['ray_address']})" if req.get("ray_address") else "")
             + (f", {req['workers']} worker(s)" if req.get("workers") else "")]]
    seconds = doc["seconds"]
    if seconds:
        rows.append(["wall time (s)", ", ".join(f"{k} {v:.1f}" for k, v in seconds.items())])
    versions = {k: v for k, v in doc["versions"].items() if v}
    if versions:
        rows.append(["versions", ", ".join(f"{k} {v}" for k, v in versions.items())])
    s.blocks.append(Table(["request", "value"], rows))
    return s


def _rung_plan(req: dict[str, Any]) -> str:
    low, high, eta = req.get("min_epochs"), req.get("max_epochs"), req.get("reduction_factor")
    if not (low and high and eta):
        return "not recorded"
    return f"{low} to {high}, the best 1/{eta} promoted at each rung"


def _or_none(value: Any, fmt: str, none: str = "none") -> str:
    return none if value is None else fmt.format(value)


# --- pruning ------------------------------------------------------------------------------

KINDS = ("RAM", "flash", "latency", "does not run", "other")
_RECORDED = {"ram": "RAM", "flash": "flash", "latency": "latency", "runs": "does not run"}


def reason_kinds(verdict: dict[str, Any]) -> list[str]:
    """What each pruning reason is about: the kinds the verdict records (prune.KINDS), else
    read from the clause prune.judge writes ("arena 310 KiB > 256 KiB RAM", "model 2.1 MiB
    + 90 KiB runtime > 2 MiB flash", "~140 ms [110-170] > 100 ms")."""
    recorded = verdict.get("kinds") or []
    if len(recorded) == len(verdict["reasons"]):
        return [_RECORDED.get(k, "other") for k in recorded]
    return [reason_kind(r) for r in verdict["reasons"]]


def reason_kind(reason: str) -> str:
    text = reason.lower()
    if "flash" in text:
        return "flash"
    if "ram" in text.split() or "arena" in text or "sram" in text:
        return "RAM"
    if " ms" in text or "latency" in text:
        return "latency"
    return "other"


def _pruning(study: LoadedStudy) -> Section:
    verdicts = study.doc["pruning"]
    s = Section(f"Study {study.name}: pruned before training")
    if not verdicts:
        s.blocks.append("No pruning recorded (the study stopped before it, or wrote none).")
        return s
    pruned = [v for v in verdicts if not v["kept"]]
    counts = {k: sum(k in reason_kinds(v) for v in pruned) for k in KINDS}
    s.blocks.append(
        f"{len(verdicts)} point(s) (candidate x precision) judged from their footprint"
        " before a single epoch (params and MACs from the model, the arena from TFLite"
        " Micro's planner on an untrained export, latency estimated with a band);"
        f" **{len(pruned)} pruned**, {len(verdicts) - len(pruned)} kept. Pruned by "
        + ", ".join(f"{k} {n}" for k, n in counts.items() if n or k in KINDS[:3])
        + " (a point pruned for two reasons counts under both). Only what certainly cannot"
        " fit is pruned: a latency band whose low end is over the ceiling, an arena over the"
        " RAM, a model over the flash.")
    labels = _labels(study)
    if pruned:
        s.blocks.append(Table(
            ["candidate", "precision", "MACs", "arena (planner)", "latency (estimated)",
             "why pruned"],
            [[labels.get(v["candidate"], v["candidate"]), v["precision"],
              render.macs((v.get("footprint") or {}).get("macs")),
              render.nbytes((v.get("footprint") or {}).get("arena_bytes")),
              _band((v.get("footprint") or {}).get("latency")), "; ".join(v["reasons"])]
             for v in pruned]))
    return s


def _band(latency: dict[str, Any] | None) -> str:
    return fr.latency_text({"latency": latency, "latency_kind": "estimated"}) if latency else ""


def _labels(study: LoadedStudy) -> dict[str, str]:
    """Candidate key -> its label ("mobilenet alpha 0.25 at 32x32"), from the finalists
    (where recorded) or built from the candidate's model, options and size."""
    out = {}
    for c in study.doc["space"]["candidates"]:
        opts = " ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in sorted(options_of(c).items()))
        name = c["builder"] if c.get("builder") else c["model"]
        out[c["key"]] = f"{name}{' ' + opts if opts else ''} at {c['size']}x{c['size']}"
    for v in study.doc["pruning"]:
        if v.get("label"):
            out[v["candidate"]] = v["label"]
    for p in study.doc["finalists"]:
        out[p["candidate"]] = p["label"]
    return out


# --- rungs --------------------------------------------------------------------------------


def _rungs(study: LoadedStudy) -> Section:
    s = Section(f"Study {study.name}: successive halving")
    rungs, labels = study.doc["rungs"], _labels(study)
    if not rungs:
        s.blocks.append("No rung finished yet.")
        return s
    s.blocks.append("Each rung trains its trials to its epoch budget; the score is the best"
                    " **validation** accuracy so far (never the test split), and the best"
                    " continue to the next rung.")
    rows = []
    for i, rung in enumerate(rungs):
        scored = [(k, v["val_accuracy"]) for k, v in rung["scores"].items()
                  if v.get("val_accuracy") is not None]
        best = max(scored, key=lambda kv: kv[1], default=None)
        rows.append([str(i + 1), str(rung["epochs"]), str(len(rung["scores"])),
                     str(len(rung["promoted"])),
                     f"{labels.get(best[0], best[0])}: {best[1]:.1%}" if best else ""])
    s.blocks.append(Table(["rung", "epochs", "trials", "promoted", "best (validation)"], rows))
    # a failed trial, or a finished one whose export and bench failed
    failed = {k: t for k, t in study.doc["trials"].items()
              if t["state"] == "failed" or t.get("error")}
    if failed:
        s.blocks.append("Trials with an error: " + "; ".join(
            f"{labels.get(k, k)}: {' '.join((t.get('error') or 'no reason recorded').split())}"
            for k, t in failed.items()))
    return s


# --- the answer: Pareto table, plot, verdict -----------------------------------------------


def _answer(study: LoadedStudy, draw: PlotRunner) -> Section:
    doc = study.doc
    s = Section(f"Study {study.name}: the answer")
    finalists = doc["finalists"]
    winner = study.winner
    lead = "**Recommended**: " if winner else "**No recommendation**: "
    s.blocks.append(lead + study.verdict())
    if winner and winner.get("file"):
        s.blocks.append(f"Its export: `{study.directory.name}/{winner['file']}` (a run folder:"
                        f" `edgeconv gate {study.directory.name} --policy P` gates it).")
    if not finalists:
        s.blocks.append("No finalist: no candidate was trained to its last rung, exported"
                        " and benched" + (" (the trials' errors are above)." if any(
                            t.get("error") for t in doc["trials"].values()) else "."))
        return s
    on_front = set(doc["front"]) if doc["front"] else set(fr.pareto_front(finalists))
    s.blocks.append(
        "The finalists, exported and benched on the target like any single export. On the"
        " front (**F**): no other finalist is at least as good on accuracy, latency, RAM and"
        " flash and better on one. Accuracy: test split, 95% Wilson interval. Latency: an"
        " estimate shows `~centre [band]`; a time measured on this host says so. Arena:"
        " predicted by the pruning (TFLite Micro's planner, untrained export) vs measured by"
        " the bench.")
    rows = []
    for p in sorted(finalists, key=fr._order):
        rows.append([p["label"], p["precision"], _accuracy(p), _latency_cell(p),
                     render.nbytes(p.get("ram_bytes")), render.nbytes(p.get("flash_bytes")),
                     _arena(p), "" if p.get("fits") is None else
                     ("yes" if p["fits"] else "**NO**"),
                     "**F**" if p["id"] in on_front else "",
                     "**recommended**" if p["id"] == doc["winner"] else "",
                     "; ".join(p.get("why_not") or [])])
    s.blocks.append(Table(["finalist", "precision", "accuracy", "latency", "RAM", "flash",
                           "arena measured (predicted)", "fits", "front", "recommended",
                           "why not"],
                          rows))
    worst = _worst_arena(finalists)
    if worst:
        s.blocks.append(worst)
    png = draw(study_figure)(f"study-{_slug(study.directory.name)}.png", finalists, on_front,
                             doc["winner"], study.target, doc["request"]["data"],
                             doc["request"].get("max_latency_ms"))
    if png:
        s.blocks.append(Image(png.name, f"study {study.name}: accuracy vs latency"))
    return s


def _accuracy(p: dict[str, Any]) -> str:
    text = fr.accuracy_text(p)
    return text + (f" ({p['test_images']:,} images)" if p.get("test_images") else "")


def _latency_cell(p: dict[str, Any]) -> str:
    if not p.get("latency"):
        return "unknown"
    kind = p.get("latency_kind") or "estimate"
    text = fr.latency_text(p)
    return text if kind in MEASURED else f"{text} ({kind})"


def _arena(p: dict[str, Any]) -> str:
    measured, predicted = p.get("arena_bytes"), p.get("predicted_arena_bytes")
    if measured is None and predicted is None:
        return ""
    text = render.nbytes(measured) or "?"
    if predicted is not None:
        text += f" ({render.nbytes(predicted)}"
        if measured:
            text += f", {(predicted - measured) / measured:+.1%}"
        text += ")"
    return text


def _worst_arena(finalists: list[dict[str, Any]]) -> str | None:
    """The issue's check on the pruning: the predicted arena against the measured one."""
    pairs = [(abs(p["predicted_arena_bytes"] - p["arena_bytes"]) / p["arena_bytes"], p)
             for p in finalists if p.get("arena_bytes") and
             p.get("predicted_arena_bytes") is not None]
    if not pairs:
        return None
    err, p = max(pairs, key=lambda x: x[0])
    return (f"Arena predicted before training vs measured by the bench: worst"
            f" {err:.1%} off ({p['label']}, {p['precision']}: predicted"
            f" {render.nbytes(p['predicted_arena_bytes'])}, measured"
            f" {render.nbytes(p['arena_bytes'])}) over {len(pairs)} finalist(s).")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:80] or "study"


def study_figure(finalists: list[dict[str, Any]], on_front: set[str], winner: str | None,
                 target: str, dataset: str, ceiling: float | None, path: Path) -> Path:
    """Test accuracy (95% interval bars) against latency (band bars for an estimate); the
    front joined in latency order; the recommended point starred; the latency ceiling as a
    line. Points without a latency or an accuracy cannot be placed and are named under the
    axes."""
    from edgeconv.report.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    placed = [p for p in finalists if p.get("latency") and p.get("accuracy") is not None]
    kinds = {p.get("latency_kind") or "estimated" for p in placed}
    for i, kind in enumerate(sorted(kinds)):
        pts = [p for p in placed if (p.get("latency_kind") or "estimated") == kind]
        measured = kind in MEASURED  # a median: no band to draw
        xs = [p["latency"]["mid"] for p in pts]
        ys = [p["accuracy"] * 100 for p in pts]
        xerr = [[p["latency"]["mid"] - p["latency"]["low"] for p in pts],
                [p["latency"]["high"] - p["latency"]["mid"] for p in pts]]
        yerr = [[100 * (p["accuracy"] - _or(p.get("accuracy_low"), p["accuracy"]))
                 for p in pts],
                [100 * (_or(p.get("accuracy_high"), p["accuracy"]) - p["accuracy"])
                 for p in pts]]
        ax.errorbar(xs, ys, xerr=None if measured else xerr, yerr=yerr,
                    fmt="s" if measured else "o", capsize=2, color=f"C{i}",
                    label=f"finalist (latency {kind})")
        for p, x, y in zip(pts, xs, ys):
            ax.annotate(f"{p['label']} {p['precision']}", (x, y), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    line = sorted((p for p in placed if p["id"] in on_front),
                  key=lambda p: p["latency"]["mid"])
    if line:
        ax.plot([p["latency"]["mid"] for p in line], [p["accuracy"] * 100 for p in line],
                "r--", label="Pareto front (accuracy, latency, RAM, flash)")
    best = next((p for p in placed if p["id"] == winner), None)
    if best:
        ax.scatter([best["latency"]["mid"]], [best["accuracy"] * 100], marker="*", s=260,
                   color="gold", edgecolors="black", zorder=5, label="recommended")
    if ceiling is not None:
        ax.axvline(ceiling, color="grey", linestyle=":", label=f"latency ceiling {ceiling:g} ms")
    xs = [v for p in placed for v in (p["latency"]["low"], p["latency"]["high"]) if v > 0]
    log = bool(xs) and max(xs) / min(xs) > 20  # as report.plots: log only over a wide span
    if log:
        ax.set_xscale("log")
    if len(kinds) == 1 and kinds <= set(MEASURED):
        xlabel = f"latency on {target}, ms, {next(iter(kinds))} (median)"
    elif kinds & set(MEASURED):
        xlabel = (f"latency on {target}, ms: estimated (bars: band) or measured (squares:"
                  " median)")
    else:
        xlabel = f"estimated latency on {target}, ms (bars: the estimate's band)"
    ax.set_xlabel(xlabel + (" (log scale)" if log else ""))
    ax.set_ylabel(f"test accuracy on {dataset}, % (bars: 95% interval)")
    ax.set_title(f"which model fits {target}: finalists, accuracy vs latency")
    left_out = [f"{p['label']} {p['precision']}" for p in finalists if p not in placed]
    if left_out:
        fig.text(0.01, 0.01, "not placed (latency or accuracy unknown): "
                 + ", ".join(left_out)[:200], fontsize=7, color="grey")
    if not placed:
        ax.text(0.5, 0.5, "no finalist with both a latency and an accuracy", ha="center",
                va="center", transform=ax.transAxes, color="grey")
    else:
        ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


# --- the articles' trade: MobileNet width and resolution ---------------------------------


def _paper(claim_id: str) -> list[tuple[float, float]]:
    """(alpha or input side, MACs) the MobileNet v1 paper prints, as article C quotes them
    (the claims behind `edgeconv report`'s C-mobilenet-alpha and C-mobilenet-resolution)."""
    from edgeconv.report.claims import CLAIMS

    claim = next(c for c in CLAIMS if c.id == claim_id)
    entries, values = claim.args["entries"], claim.args["values"]
    if claim_id == "C-mobilenet-alpha":
        keys = [float(e.options["alpha"]) for e in entries]
    else:
        keys = [float(e.options["input_shape"][0]) for e in entries]
    return list(zip(keys, values))


def _mobilenet_trade(study: LoadedStudy) -> Section | None:
    doc = study.doc
    points = {}  # (alpha, side) -> candidate key
    for c in doc["space"]["candidates"]:
        if c["model"] == "mobilenet" and not c.get("builder"):
            points[(float(options_of(c).get("alpha", 1.0)), c["size"])] = c["key"]
    alphas = {a for a, _ in points}
    sides = {s for _, s in points}
    if len(alphas) < 2 and len(sides) < 2:
        return None
    facts = _facts(doc)
    # the fixed size (and alpha) of each table: where the most candidates were trained
    s = Section(f"Study {study.name}: MobileNet width and resolution, measured")
    s.blocks.append(
        "Article C (the MobileNet v1 paper): the width multiplier alpha and the resolution"
        " multiplier cut the cost by about alpha^2 and rho^2. Here, MACs and params are"
        " computed from the models built at the study's sizes (not measured on a runtime);"
        f" accuracy is measured on {doc['request']['data']}: the best **validation**"
        " accuracy a candidate reached in training (with the epochs it had), and a"
        " finalist's **test** accuracy with its 95% interval. The paper's figures are"
        " ImageNet models at 224x224x3: compare the ratios, not the counts.")
    columns = ["MACs (computed)", "MACs vs largest", "params (computed)",
               "best val. accuracy (epochs)", "finalist test accuracy"]
    trained = {point for point, key in points.items() if "val" in facts.get(key, {})}

    def weight(match) -> tuple[int, int]:
        """How much a row set says: trained candidates (accuracy to compare) first, then
        candidates at all."""
        return (sum(1 for p in trained if match(p)), sum(1 for p in points if match(p)))

    if len(alphas) >= 2:
        side = max(sides, key=lambda x: (*weight(lambda p: p[1] == x), x))
        paper = dict(_paper("C-mobilenet-alpha"))
        rows_alpha = sorted((a for a, t in points if t == side), reverse=True)
        base = facts.get(points[(rows_alpha[0], side)], {}).get("macs")
        paper_base = paper.get(rows_alpha[0])
        rows = []
        for a in rows_alpha:
            f = facts.get(points[(a, side)], {})
            rows.append([f"{a:g}", *_trade_cells(f, base),
                         _paper_cell(paper.get(a), paper_base),
                         f"{(a / rows_alpha[0]) ** 2:.2f}"])
        s.blocks.append(f"**Width** at {side}x{side}:")
        s.blocks.append(Table(["alpha", *columns, "[C] paper MACs at 224x224 (vs largest)",
                               "alpha^2 rule"], rows))
    if len(sides) >= 2:
        alpha = max(alphas, key=lambda x: (*weight(lambda p: p[0] == x), x))
        rows_side = sorted((t for a, t in points if a == alpha), reverse=True)
        base = facts.get(points[(alpha, rows_side[0])], {}).get("macs")
        rows = [[f"{t}x{t}", *_trade_cells(facts.get(points[(alpha, t)], {}), base),
                 f"{(t / rows_side[0]) ** 2:.2f}"] for t in rows_side]
        s.blocks.append(f"**Resolution** at alpha {alpha:g}:")
        s.blocks.append(Table(["input", *columns, "rho^2 rule"], rows))
        paper = _paper("C-mobilenet-resolution")
        top = paper[0][1]
        s.blocks.append(
            "[C] the paper's MACs at alpha 1 (ImageNet, 1000 classes): " + ", ".join(
                f"{v / 1e6:.0f}M at {k:g}x{k:g} ({v / top:.2f})" for k, v in paper)
            + "; rho^2 gives " + ", ".join(f"{(k / paper[0][0]) ** 2:.2f}" for k, _ in paper)
            + ".")
    return s


def _facts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per candidate key: macs and params (pruning footprint, else a finalist), the best
    validation accuracy over the rungs with its epochs, and the finalists' test accuracy."""
    out: dict[str, dict[str, Any]] = {}
    for v in doc["pruning"]:
        fp = v.get("footprint") or {}
        f = out.setdefault(v["candidate"], {})
        f["pruned"] = f.get("pruned", True) and not v["kept"]  # at every precision
        for k in ("macs", "params"):
            if f.get(k) is None and fp.get(k) is not None:
                f[k] = fp[k]
    for p in doc["finalists"]:
        f = out.setdefault(p["candidate"], {})
        for k in ("macs", "params"):
            if f.get(k) is None and p.get(k) is not None:
                f[k] = p[k]
        f.setdefault("tests", []).append(p)
    for rung in doc["rungs"]:
        for key, score in rung["scores"].items():
            acc = score.get("val_accuracy")
            f = out.setdefault(key, {})
            if acc is not None and acc > f.get("val", (-1, None))[0]:
                f["val"] = (acc, score.get("epochs") or rung["epochs"])
    return out


def _trade_cells(f: dict[str, Any], base: int | None) -> list[str]:
    macs = f.get("macs")
    val = f.get("val")
    return [render.macs(macs) or "?",
            f"{macs / base:.2f}" if macs and base else "",
            f"{f['params']:,}" if f.get("params") is not None else "?",
            f"{val[0]:.1%} ({val[1]} epoch(s))" if val else
            ("pruned" if f.get("pruned") else "not trained"),
            "; ".join(f"{p['precision']} {fr.accuracy_text(p)}" for p in f.get("tests", []))
            or "not a finalist"]


def _paper_cell(value: float | None, base: float | None) -> str:
    if value is None:
        return "not in the paper"
    return f"{value / 1e6:.0f}M" + (f" ({value / base:.2f})" if base else "")
