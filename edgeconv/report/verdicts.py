"""One rule per kind of claim: each turns the collected data into a verdict with the figure
it measured and where that figure comes from. The rules are named by `Claim.rule` and
described in words by `Claim.rule_text` (edgeconv/report/claims.py).

A rule never guesses: a figure it needs and does not have gives "not measurable here" with
the command that would produce it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from edgeconv import records, stats
from edgeconv.formats import FLOAT
from edgeconv.report import figures
from edgeconv.report.arithmetic import Arithmetic, Figures, inspect_command
from edgeconv.report.claims import CLAIMS, VERDICTS, Claim
from edgeconv.report.collect import BenchRecord, Collection, ExportRecord, output_shape
from edgeconv.zoo.pairs import Entry

_NAMES = {"params": "params", "macs": "MACs"}
REPRODUCED, PARTLY, WITHIN_NOISE, NOT_REPRODUCED, UNMEASURABLE = VERDICTS


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verdict: str
    measured: str  # the figure edgeconv measured ("-" when none)
    evidence: str  # artifacts / targets / the command that produced or would produce it
    reason: str = ""


@dataclass(frozen=True)
class Context:
    data: Collection
    arithmetic: Arithmetic

    def exports(self, model: str) -> list[ExportRecord]:
        return [e for e in self.data.exports if e.model == model]

    def host_rows(self, export: ExportRecord, fmt: str, precision: str) -> list[BenchRecord]:
        """ok rows of one file on targets that time themselves (not TFLite Micro on the host,
        not an emulated board: neither is a board time), the fewest threads per target."""
        rows = [r for r in self.data.rows if r.export is export and r.ok
                and r.row.format == fmt and r.precision == precision
                and r.row.timed_on == "target"]
        best: dict[str, BenchRecord] = {}
        for r in sorted(rows, key=lambda r: r.row.threads or 0):
            best.setdefault(r.row.target, r)
        return list(best.values())


Rule = Callable[[Claim, Context], Verdict]
_RULES: dict[str, Rule] = {}


def rule(fn: Rule) -> Rule:
    _RULES[fn.__name__] = fn
    return fn


def judge_all(ctx: Context) -> list[Verdict]:
    return [_RULES[c.rule](c, ctx) for c in CLAIMS]


def _inspect(*entries: Entry) -> str:
    """The `edgeconv inspect` lines that print an arithmetic claim's figures (evidence)."""
    return "; ".join(f"`{inspect_command(e.model, e.options)}`" for e in entries)


def _arith(claim: Claim, ctx: Context, *entries: Entry) -> list[Figures] | Verdict:
    """Params and MACs of each entry, or `not measurable` naming the first that has none."""
    found = [ctx.arithmetic.of(e.model, e.options) for e in entries]
    for entry, figures_of in zip(entries, found):
        if figures_of is None:
            return Verdict(claim, UNMEASURABLE, "-", _inspect(entry),
                           ctx.arithmetic.unavailable or f"cannot build {entry.label}")
    return found


def _figure(f: Figures, quantity: str) -> int:
    return f.params if quantity == "params" else f.macs


def _rounds_to(measured: float, value: float, digits: int | None) -> bool:
    if digits is None:
        return measured == value
    return float(f"{measured:.{digits}g}") == float(f"{value:.{digits}g}")


def _export_command(models: tuple[str, ...] | list[str], untrained: bool = False) -> str:
    flag = " --untrained" if untrained else ""
    return "; ".join(f"`edgeconv export {m}{flag} --int8`" for m in models)


@rule
def count(claim: Claim, ctx: Context) -> Verdict:
    entry, quantity = claim.args["entry"], claim.args["quantity"]
    found = _arith(claim, ctx, entry)
    if isinstance(found, Verdict):
        return found
    measured = _figure(found[0], quantity)
    ok = _rounds_to(measured, claim.args["value"], claim.args.get("digits"))
    return Verdict(claim, REPRODUCED if ok else NOT_REPRODUCED, f"{measured:,} {_NAMES[quantity]}",
                   _inspect(entry))


@rule
def pair_count(claim: Claim, ctx: Context) -> Verdict:
    entries, quantity = claim.args["entries"], claim.args["quantity"]
    found = _arith(claim, ctx, *entries)
    if isinstance(found, Verdict):
        return found
    measured = [_figure(f, quantity) for f in found]
    digits = claim.args.get("digits", (None,) * len(entries))
    ok = all(_rounds_to(m, v, n) for m, v, n in zip(measured, claim.args["values"], digits))
    return Verdict(claim, REPRODUCED if ok else NOT_REPRODUCED,
                   " vs ".join(f"{m:,}" for m in measured) + f" {_NAMES[quantity]}"
                   f" ({measured[0] / measured[1]:.2f}x)", _inspect(*entries))


@rule
def ratio(claim: Claim, ctx: Context) -> Verdict:
    base, compact, quantity = claim.args["base"], claim.args["compact"], claim.args["quantity"]
    found = _arith(claim, ctx, base, compact)
    if isinstance(found, Verdict):
        return found
    fb, fc = found
    value = claim.args["value"]
    measured = _figure(fb, quantity) / _figure(fc, quantity)
    figure = (f"{measured:.1f}x fewer {_NAMES[quantity]}"
              f" ({_figure(fb, quantity):,} vs {_figure(fc, quantity):,})")
    evidence = _inspect(base, compact)
    if claim.args.get("analogue"):
        verdict = PARTLY if measured >= value else NOT_REPRODUCED
        return Verdict(claim, verdict, figure, evidence,
                       "measured on the image analogue (article A's models), not the text CNN")
    if abs(measured - value) <= 0.1 * value:
        verdict = REPRODUCED
    else:
        verdict = PARTLY if measured >= claim.args.get("partly", 10) else NOT_REPRODUCED
    return Verdict(claim, verdict, figure, evidence, claim.args.get("note", ""))


@rule
def layer_sums(claim: Claim, ctx: Context) -> Verdict:
    """Params of named layers of each entry: equal to `values`, or the first at least
    `factor` times the second."""
    entries, groups = claim.args["entries"], claim.args["layers"]
    found = _arith(claim, ctx, *entries)
    if isinstance(found, Verdict):
        return found
    sums, parts = [], []
    for entry, figures_of, names in zip(entries, found, groups):
        params = {l.name: l.params for l in figures_of.layers}
        missing = [n for n in names if n not in params]
        if missing:
            return Verdict(claim, NOT_REPRODUCED, "-", _inspect(entry),
                           f"the built model has no layer {', '.join(missing)}")
        sums.append(sum(params[n] for n in names))
        terms = " + ".join(f"{params[n]:,}" for n in names)
        parts.append(f"{entry.model} {' + '.join(names)}: "
                     + (f"{terms} = {sums[-1]:,}" if len(names) > 1 else f"{sums[-1]:,}"))
    shown = "; ".join(parts)
    evidence = _inspect(*{e.label: e for e in entries}.values())
    if "values" in claim.args:
        ok = list(sums) == list(claim.args["values"])
        return Verdict(claim, REPRODUCED if ok else NOT_REPRODUCED, shown + " params",
                       evidence + " (per-layer params)")
    factor = sums[0] / sums[1]
    ok = factor >= claim.args["factor"]
    return Verdict(claim, REPRODUCED if ok else NOT_REPRODUCED,
                   f"{shown} params ({factor:,.0f}x)", evidence + " (per-layer params)")


@rule
def factorisation(claim: Claim, ctx: Context) -> Verdict:
    a = claim.args
    found = _arith(claim, ctx, a["five"], a["three"], a["asymmetric"], a["two_three"])
    if isinstance(found, Verdict):
        return found
    five, three, asymmetric, two_three = (f.macs for f in found)
    cost, saving = five / three, 1 - asymmetric / three
    ok = round(cost, 2) == a["values"][0] and round(saving, 2) == a["values"][1]
    return Verdict(claim, REPRODUCED if ok else NOT_REPRODUCED,
                   f"5x5 / 3x3 = {five:,} / {three:,} MACs = {cost:.2f}x; 1x3 + 3x1 ="
                   f" {asymmetric:,} MACs, {saving:.0%} cheaper than the 3x3; two 3x3 ="
                   f" {two_three:,} MACs, {1 - two_three / five:.0%} cheaper than the 5x5",
                   _inspect(a["five"], a["three"], a["asymmetric"], a["two_three"]))


@rule
def structure(claim: Claim, ctx: Context) -> Verdict:
    check = claim.args["check"]
    if ctx.arithmetic.unavailable is not None:
        return Verdict(claim, UNMEASURABLE, "-", "-", ctx.arithmetic.unavailable)
    from edgeconv.zoo import structure as structures

    found = getattr(structures, check)()
    return Verdict(claim, REPRODUCED if found.holds else NOT_REPRODUCED, found.summary,
                   f"the Keras graph of `{found.model}` (edgeconv/zoo/structure.py:"
                   f" {check})", "; ".join(found.broken))


@rule
def sweep_gains(claim: Claim, ctx: Context) -> Verdict:
    if ctx.arithmetic.unavailable is not None:
        return Verdict(claim, UNMEASURABLE, "-", "-", ctx.arithmetic.unavailable)
    from edgeconv.zoo.sweep import grows, separable_sweep

    points = separable_sweep()
    params_grow, macs_grow = grows(points, "param_ratio"), grows(points, "mac_ratio")
    verdict = REPRODUCED if params_grow and macs_grow else (
        PARTLY if params_grow else NOT_REPRODUCED)
    table = "; ".join(f"{p.depth} convs k{p.kernel}: {p.param_ratio:.1f}x params,"
                      f" {p.mac_ratio:.1f}x MACs" for p in points)
    return Verdict(claim, verdict, table,
                   "conv layers of the pair built at each point (edgeconv/zoo/sweep.py);"
                   " the report's figure separable-sweep.png plots them",
                   "" if macs_grow else "the MAC ratio does not grow at every step")


@rule
def dense_share(claim: Claim, ctx: Context) -> Verdict:
    entry = claim.args["entry"]
    found = _arith(claim, ctx, entry)
    if isinstance(found, Verdict):
        return found
    figures = found[0]
    dense = sum(l.params for l in figures.layers if l.type == "Dense")
    share = dense / figures.params
    return Verdict(claim, REPRODUCED if share > 0.5 else NOT_REPRODUCED,
                   f"{share:.2%} ({dense:,} of {figures.params:,} params in Dense layers)",
                   _inspect(entry))


@rule
def alexnet_maps(claim: Claim, ctx: Context) -> Verdict:
    entry = claim.args["entry"]
    found = _arith(claim, ctx, entry)
    if isinstance(found, Verdict):
        return found
    figures = found[0]
    shapes = [l.output_shape for l in figures.layers
              if "Conv" in l.type or "Pool" in l.type]
    wanted = list(claim.args["maps"])
    it = iter(shapes)
    ok = all(any(s == w for s in it) for w in wanted)  # the stated maps, in order
    return Verdict(claim, REPRODUCED if ok else NOT_REPRODUCED,
                   ", ".join("x".join(map(str, s)) for s in shapes),
                   _inspect(entry))


@rule
def separable_cost(claim: Claim, ctx: Context) -> Verdict:
    regular, separable = claim.args["entries"]
    found = _arith(claim, ctx, regular, separable)
    if isinstance(found, Verdict):
        return found
    fr, fs = found
    n, k = claim.args["n"], claim.args["k"]
    expected = 1 / (1 / n + 1 / k**2)
    measured = fr.macs / fs.macs
    ok = abs(measured - expected) <= 0.01 * expected
    return Verdict(claim, REPRODUCED if ok else NOT_REPRODUCED,
                   f"{measured:.2f}x fewer MACs (formula at N={n}: {expected:.2f}x; tends to"
                   f" {k * k}x as N grows)",
                   _inspect(regular, separable))


@rule
def scaling(claim: Claim, ctx: Context) -> Verdict:
    entries, values = claim.args["entries"], claim.args["values"]
    found = _arith(claim, ctx, *entries)
    if isinstance(found, Verdict):
        return found
    macs = [f.macs for f in found]
    exact = [round(m / 1e6) == round(v / 1e6) for m, v in zip(macs, values)]
    close = all(abs(m - v) <= 0.02 * v for m, v in zip(macs, values))
    verdict = REPRODUCED if all(exact) else (PARTLY if close else NOT_REPRODUCED)
    off = [f"{m / 1e6:.1f}M vs the printed {v / 1e6:.0f}M"
           for m, v, ok in zip(macs, values, exact) if not ok]
    return Verdict(claim, verdict,
                   " / ".join(f"{m / 1e6:.1f}M" for m in macs) + " MACs"
                   f" (relative: {' / '.join(f'{m / macs[0]:.3f}' for m in macs)})",
                   _inspect(*entries),
                   ("the article's own figure differs: " + "; ".join(off)) if off else "")


@rule
def faster(claim: Claim, ctx: Context) -> Verdict:
    base, compact, precision = claim.args["base"], claim.args["compact"], claim.args["precision"]
    outcomes: list[str] = []
    lines: list[str] = []
    points = 0  # comparisons without a p50 interval on both sides
    for b in ctx.exports(base):
        for brow in ctx.host_rows(b, "tflite", precision):
            for name in compact:
                for c in ctx.exports(name):
                    if c.trained != b.trained:
                        continue
                    for crow in ctx.host_rows(c, "tflite", precision):
                        if crow.row.target != brow.row.target:
                            continue
                        speed = figures.speedup(brow, crow)
                        if speed is None:
                            continue
                        outcomes.append(speed.outcome)
                        points += speed.interval is None
                        lines.append(f"{name} {figures.p50(crow)} ms vs {base}"
                                     f" {figures.p50(brow)} ms p50 on {brow.row.target}:"
                                     f" {speed.text()}")
    if not outcomes:
        return Verdict(claim, UNMEASURABLE, "-",
                       f"{_export_command([base, *compact])}; then"
                       " `edgeconv bench runs/... --target cpu`",
                       f"no {precision} TFLite latency of {base} and a compact model on the same"
                       " target in the inputs")
    verdict = _speed_verdict(outcomes)
    evidence = (f"{precision} TFLite files, LiteRT, fewest threads, `edgeconv bench`; ratio of"
                " p50s (x = times faster than " + base + ") with its 95% interval")
    if points:
        evidence += (f"; no interval: point comparison for {points} of {len(outcomes)}"
                     " (files without a p50 interval, or fewer than 6 timed runs)")
    return Verdict(claim, verdict, "; ".join(lines), evidence)


def _speed_verdict(outcomes: list[str]) -> str:
    """Every comparison faster: reproduced; some: partly; none faster and none slower:
    within noise; none faster and one slower: not reproduced."""
    faster_ = outcomes.count(figures.FASTER)
    if faster_ == len(outcomes):
        return REPRODUCED
    if faster_:
        return PARTLY
    return NOT_REPRODUCED if figures.SLOWER in outcomes else WITHIN_NOISE


@rule
def smaller(claim: Claim, ctx: Context) -> Verdict:
    base, compact, factor = claim.args["base"], claim.args["compact"], claim.args["factor"]
    def float_file(model: str):
        return next((f for e in ctx.exports(model) if (f := e.file("tflite", FLOAT))), None)

    base_file = float_file(base)
    pairs = [(name, f) for name in compact if (f := float_file(name))]
    if base_file is None or not pairs:
        return Verdict(claim, UNMEASURABLE, "-", _export_command([base, *compact]),
                       f"needs fp32 TFLite exports of {base} and of a compact model")
    ratios = [base_file.size_bytes / f.size_bytes for _, f in pairs]
    verdict = REPRODUCED if all(r >= factor for r in ratios) else (
        PARTLY if all(r > 1 for r in ratios) else NOT_REPRODUCED)
    return Verdict(claim, verdict,
                   f"{base} {base_file.size_bytes:,} B vs "
                   + ", ".join(f"{n} {f.size_bytes:,} B ({r:.0f}x smaller)"
                               for (n, f), r in zip(pairs, ratios)),
                   "fp32 TFLite file sizes in manifest.json (`edgeconv export`)")


@rule
def any_size(claim: Claim, ctx: Context) -> Verdict:
    exports = ctx.exports(claim.args["model"])
    free = [e for e in exports if None in e.input_hw]
    sizes = {e.input_hw: e for e in exports if None not in e.input_hw}
    outputs = {e.label: (output_shape(f) if (f := e.file("tflite", FLOAT)) else None)
               for e in exports}
    if not free and len(sizes) < 2:
        return Verdict(claim, UNMEASURABLE, "-",
                       "`edgeconv export gap-mnist --untrained --input-shape 56,56,1`"
                       " (and 28,28,1, 112,112,1); `edgeconv bench ... --target cpu`",
                       "needs gap-mnist exported at two or more input sizes (or free size)")
    ten_way = all(o is not None and o[-1] == 10 for o in outputs.values())
    latency = []
    for hw, e in sorted(sizes.items()):
        rows = ctx.host_rows(e, "tflite", FLOAT)
        if rows:
            latency.append(f"{hw[0]}x{hw[1]}: {rows[0].p50_ms:.3f} ms on {rows[0].row.target}")
    measured = "; ".join(f"{label} -> output {o}" for label, o in outputs.items())
    if latency:
        measured += "; p50 " + ", ".join(latency)
    return Verdict(claim, REPRODUCED if ten_way else NOT_REPRODUCED, measured,
                   "manifest.json outputs of each gap-mnist export; `edgeconv bench` latency")


def _trained(ctx: Context, model: str) -> ExportRecord | None:
    return next((e for e in ctx.exports(model) if e.trained and e.float_accuracy is not None),
                None)


@rule
def similar_accuracy(claim: Claim, ctx: Context) -> Verdict:
    models = claim.args["models"]
    found = [_trained(ctx, m) for m in models]
    if any(f is None for f in found):
        missing = [m for m, f in zip(models, found) if f is None]
        return Verdict(claim, UNMEASURABLE, "-", _export_command(missing),
                       f"no trained export of {', '.join(missing)} in the inputs"
                       " (untrained weights have no meaningful accuracy)")
    a, b = found
    diff = abs(a.float_accuracy - b.float_accuracy) * 100
    verdict = REPRODUCED if diff <= 2 else (PARTLY if diff <= 5 else NOT_REPRODUCED)
    reason = _other_data(claim, a, b)
    if reason and verdict == REPRODUCED:
        verdict = PARTLY
    if reason and claim.args.get("setting"):
        reason += f". Here: {_setting(a, b)}; the claim: {claim.args['setting']}"
    paired = _paired_interval(a, b)
    between = paired or _difference_interval(a, b)
    evidence = f"manifest.json float_accuracy of {a.directory.name}, {b.directory.name}"
    if paired:
        evidence += f"; {records.TEST_WRONG} (per-image test results) of their train.json"
    return Verdict(claim, verdict,
                   f"{models[0]} {figures.float_accuracy(a)} vs {models[1]}"
                   f" {figures.float_accuracy(b)} float test accuracy, {diff:.1f} points"
                   " apart (95% Wilson intervals in brackets)"
                   + (f"; {models[0]} - {models[1]}: {between}" if between else ""),
                   evidence, reason)


def _setting(*exports: ExportRecord) -> str:
    """'alexnet at 64x64x1, 8 epochs on 2,000 training images (--train-samples), 10,000 test
    images; squeezenet ...': the input size and how much of the dataset each run saw, from
    its manifest and train.json."""
    parts = []
    for e in exports:
        shape = (e.manifest.input.preprocessing or {}).get("input_shape") or e.options.get(
            "input_shape")
        text = f"{e.model} at {'x'.join(str(n) for n in shape)}" if shape else e.model
        if e.train is not None:
            runs = e.train.epochs_run
            text += f", {runs} epoch{'' if runs == 1 else 's'}"
            if e.train.train_samples is not None:
                text += f" on {e.train.train_samples:,} training images (--train-samples)"
        if e.train is not None and e.train.test_images is not None:
            text += f", {e.train.test_images:,} test images"
        parts.append(text)
    return "; ".join(parts)


def _paired_interval(a: ExportRecord, b: ExportRecord) -> str:
    """The paired 95% interval of accuracy(a) - accuracy(b) (Newcombe's hybrid score, with an
    exact McNemar test), from the per-image test results train.json keeps; '' unless both
    runs were tested on the same split (same dataset, seed and number of test images)."""
    ta, tb = a.train, b.train
    if ta is None or tb is None or ta.test_wrong is None or tb.test_wrong is None:
        return ""
    n = ta.test_images
    if not n or n != tb.test_images or (ta.dataset, ta.seed) != (tb.dataset, tb.seed):
        return ""
    wrong_a, wrong_b = set(ta.test_wrong), set(tb.test_wrong)
    if max(wrong_a | wrong_b, default=-1) >= n:
        return ""  # indices beyond the split: not the split its size says
    # the 2x2 table from the misses alone (no list of n images): b right only for a, ...
    only_a, only_b = len(wrong_b - wrong_a), len(wrong_a - wrong_b)
    both_wrong = len(wrong_a & wrong_b)
    comparison = stats.paired_counts(n - only_a - only_b - both_wrong, only_a, only_b,
                                     both_wrong)
    low, high = comparison.drop_interval.low, comparison.drop_interval.high
    where = ("no difference inside it" if low <= 0 <= high
             else "a difference: 0 is outside it")
    # two decimals: a paired interval on 10,000 images is narrower than a point
    return (f"{comparison.drop * 100:+.2f} points, 95% interval [{low * 100:+.2f},"
            f" {high * 100:+.2f}] (Newcombe, paired on the same {n:,} test images:"
            f" {comparison.reference_only:,} right only for {a.model},"
            f" {comparison.candidate_only:,} only for {b.model}, exact McNemar p"
            f" {comparison.mcnemar_p:.3g}; {where})")


def _difference_interval(a: ExportRecord, b: ExportRecord) -> str:
    """95% interval of accuracy(a) - accuracy(b) in points, Newcombe's hybrid score method for
    two proportions from the Wilson intervals, the two treated as independent samples: wider
    (more cautious) than the paired test on the same images. What is left when the runs'
    train.json lack per-image results (`_paired_interval`); '' when an interval is missing."""
    pa, ia, na = figures.float_figures(a)
    pb, ib, nb = figures.float_figures(b)
    if None in (pa, pb) or ia is None or ib is None:
        return ""
    d = pa - pb
    low = d - ((pa - ia[0]) ** 2 + (ib[1] - pb) ** 2) ** 0.5
    high = d + ((ia[1] - pa) ** 2 + (pb - ib[0]) ** 2) ** 0.5
    where = ("no difference inside it" if low <= 0 <= high
             else "a difference: 0 is outside it")
    return (f"{d * 100:+.1f} points, 95% interval [{low * 100:+.1f}, {high * 100:+.1f}]"
            f" (Newcombe, unpaired, {na} and {nb} test images; {where})")


def _other_data(claim: Claim, *exports: ExportRecord) -> str:
    """'measured on Fashion-MNIST (...), not CIFAR-10': the claim's data is not what the
    exports were trained and measured on ('' when it is)."""
    wanted = claim.args["dataset"]
    other = list(dict.fromkeys(figures.described(e.dataset, e.manifest.input.preprocessing)
                               for e in exports if e.dataset != wanted))
    if not other:
        return ""
    return (f"measured on {'; '.join(other)}, not {figures.DESCRIBED.get(wanted, wanted)}:"
            " the claim is about the article's data")


def _train_pair(claim: Claim, ctx: Context) -> tuple[ExportRecord, ExportRecord] | Verdict:
    base, compact = (_trained(ctx, claim.args["base"]), _trained(ctx, claim.args["compact"]))
    if base is None or compact is None or base.train is None or compact.train is None:
        return Verdict(claim, UNMEASURABLE, "-",
                       f"`edgeconv train {claim.args['base']}`; `edgeconv train"
                       f" {claim.args['compact']}` (train.json beside the export)",
                       "needs both trained runs with their train.json")
    return base, compact


@rule
def overfit_less(claim: Claim, ctx: Context) -> Verdict:
    pair = _train_pair(claim, ctx)
    if isinstance(pair, Verdict):
        return pair

    def gap(e: ExportRecord) -> float:
        best = e.train.history[e.train.best_epoch - 1]
        return (best.accuracy - best.val_accuracy) * 100

    base, compact = pair
    gb, gc = gap(base), gap(compact)
    verdict = REPRODUCED if gc < gb else NOT_REPRODUCED
    reason = _other_data(claim, base, compact)  # said whatever the verdict
    if verdict == REPRODUCED and reason:
        verdict = PARTLY
    return Verdict(claim, verdict,
                   f"train - val accuracy at the best epoch: {claim.args['base']} {gb:+.1f}"
                   f" points, {claim.args['compact']} {gc:+.1f} points"
                   f" ({base.train.epochs_run} / {compact.train.epochs_run} epochs)",
                   f"train.json of {base.directory.name}, {compact.directory.name}", reason)


@rule
def epoch_faster(claim: Claim, ctx: Context) -> Verdict:
    pair = _train_pair(claim, ctx)
    if isinstance(pair, Verdict):
        return pair
    base, compact = pair
    # epoch 1 includes graph tracing: left out
    sb, sc = base.train.epoch_seconds[1:], compact.train.epoch_seconds[1:]
    ib, ic = stats.median_interval(sb), stats.median_interval(sc)  # None below 6 epochs
    if ib is not None and ic is not None and (mc := statistics.median(sc)) > 0:
        mb = statistics.median(sb)
        speed, how = figures.ratio(mb, ib, mc, ic), "median"
        shown = (f"{claim.args['base']} {mb:.2f} s [{ib.low:.2f}, {ib.high:.2f}] vs"
                 f" {claim.args['compact']} {mc:.2f} s [{ic.low:.2f}, {ic.high:.2f}]")
    else:
        mb = statistics.mean(sb or base.train.epoch_seconds)
        mc = statistics.mean(sc or compact.train.epoch_seconds)
        if not (mb > 0 and mc > 0):
            return Verdict(claim, UNMEASURABLE, "-", f"train.json of {base.directory.name},"
                           f" {compact.directory.name}", "an epoch time of 0 s is recorded")
        speed, how = figures.ratio(mb, None, mc, None), "mean"
        shown = f"{claim.args['base']} {mb:.2f} s vs {claim.args['compact']} {mc:.2f} s"
    verdict = {figures.FASTER: REPRODUCED, figures.SLOWER: NOT_REPRODUCED,
               figures.NOISE: WITHIN_NOISE}[speed.outcome]
    data = ", ".join(dict.fromkeys(figures.dataset_name(e.dataset) for e in pair))
    return Verdict(claim, verdict,
                   f"{shown} per epoch ({how}, first epoch excluded; on {data}):"
                   f" {speed.text()}",
                   f"train.json of {base.directory.name}, {compact.directory.name}",
                   "timed on this machine's CPU, which was shared with other work")


@rule
def squeezenet_size(claim: Claim, ctx: Context) -> Verdict:
    def file_of(model: str, precision: str):
        return next(((e, f) for e in ctx.exports(model) if e.input_hw == (224, 224)
                     and (f := e.file("tflite", precision))), (None, None))

    sq_export, sq = file_of("squeezenet", "int8")
    _, alex = file_of("alexnet", FLOAT)
    if sq is None:
        return Verdict(claim, UNMEASURABLE, "-",
                       "`edgeconv export squeezenet --untrained --int8`; `edgeconv export"
                       " alexnet --untrained`", "no 224x224 squeezenet int8 TFLite export")
    classes = sq_export.options.get("classes")
    measured = f"squeezenet int8 {sq.size_bytes / 1e6:.2f} MB ({classes}-class head)"
    if alex is not None:
        ratio_ = alex.size_bytes / sq.size_bytes
        measured += f"; alexnet fp32 {alex.size_bytes / 1e6:.1f} MB, {ratio_:.0f}x larger"
    if sq.size_bytes < claim.args["limit"]:
        verdict = REPRODUCED
    elif alex is not None and alex.size_bytes / sq.size_bytes >= 50:
        verdict = PARTLY
    else:
        verdict = NOT_REPRODUCED
    return Verdict(claim, verdict, measured, "TFLite file sizes in manifest.json",
                   "int8 quantisation alone; the paper's 0.5 MB needs Deep Compression"
                   " (pruning, 6-bit weight sharing, Huffman coding), which edgeconv does not do")


@rule
def unmeasurable(claim: Claim, ctx: Context) -> Verdict:
    return Verdict(claim, UNMEASURABLE, "-", "-", claim.args["reason"])
