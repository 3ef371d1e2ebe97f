"""The report's pictures, as PNG files. matplotlib (Agg, no display) is imported on first
use: `edgeconv report` without the `plot` extra still writes its tables."""

from __future__ import annotations

from pathlib import Path

from edgeconv.formats import FLOAT, FORMATS, PRECISIONS
from edgeconv.report.summary import SHOWN_FORMAT, TIMED, ModelRow, PairTable

_DPI = 110


def available() -> str | None:
    """None when plots can be drawn, else why not."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed: pip install 'edgeconv[plot]'"
    return None


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "figure.autolayout": True})
    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=_DPI)
    _plt().close(fig)
    return path


def _short(row: ModelRow) -> str:
    tag = "" if row.export.trained else " (untr.)"
    return row.export.label + tag


def _scale(ax, values: list[float], label: str) -> None:
    """Log scale only when the values span more than 20x: bars on a short log axis start
    at an arbitrary floor and mislead."""
    shown = [v for v in values if v]
    log = bool(shown) and max(shown) / min(shown) > 20
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(f"{label} (log scale)" if log else label)


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in the inputs", ha="center", va="center",
            transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def pair_figure(table: PairTable, targets: list[str], path: Path) -> Path:
    """Params, MACs, TFLite size per precision, latency p50 (p90 whisker) per target."""
    plt = _plt()
    rows = table.rows
    names = [_short(r) for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    fig.suptitle(f"[{table.comparison.id}] {table.comparison.title}")
    for ax, attr, title in ((axes[0][0], "params", "parameters"), (axes[0][1], "macs", "MACs")):
        values = [getattr(r, attr) for r in rows]
        if any(values):
            ax.barh(names, [v or 0 for v in values], color="tab:blue")
            _scale(ax, values, title)
            for y, v in enumerate(values):
                ax.text(v or 1, y, f" {v:,}" if v else " n/a", va="center", fontsize=7)
        else:
            _empty(ax, title)
        ax.set_title(title)
    _grouped(axes[1][0], rows, names, "file size", "TFLite file size (KiB)",
             [(p, lambda r, p=p: (r.sizes.get(p, 0) / 1024, None))
              for p in FORMATS[SHOWN_FORMAT].precisions])
    series = [(f"{t} {p}", lambda r, t=t, p=p: _lat(r, t, p)) for t in targets for p in TIMED]
    _grouped(axes[1][1], rows, names, "latency", "latency p50, ms (whisker: p90)",
             series)
    return _save(fig, path)


def _lat(row: ModelRow, target: str, precision: str) -> tuple[float, float | None]:
    lat = row.latency(target, precision)
    return (lat.p50_ms, lat.p90_ms) if lat else (0.0, None)


def _grouped(ax, rows, names, what, xlabel, series) -> None:
    data = [(label, [fn(r) for r in rows]) for label, fn in series]
    data = [(label, vals) for label, vals in data if any(v for v, _ in vals)]
    if not data:
        _empty(ax, what)
        return
    height = 0.8 / len(data)
    for i, (label, vals) in enumerate(data):
        ys = [y + i * height for y in range(len(rows))]
        p50 = [v for v, _ in vals]
        # whiskers only where there is a p90 (latency), none for sizes
        err = ([[0] * len(vals), [max(hi - v, 0) if hi else 0 for v, hi in vals]]
               if any(hi for _, hi in vals) else None)
        ax.barh(ys, p50, height=height, xerr=err, label=label, capsize=2)
    ax.set_yticks([y + 0.4 - height / 2 for y in range(len(rows))], names)
    _scale(ax, [v for _, vals in data for v, _ in vals], xlabel)
    ax.set_title(what)
    ax.legend(fontsize=7)


def pareto_figure(points: list[tuple[str, float, float]], target: str, dataset: str,
                  path: Path) -> Path:
    """Accuracy (%) on `dataset` against latency p50 (ms); the Pareto front (nothing both
    faster and more accurate) is joined by a line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    # colour = model, marker = precision: labels on every point would overlap
    models = list(dict.fromkeys(label.rsplit(" ", 1)[0] for label, _, _ in points))
    markers = dict(zip(PRECISIONS, "o^DsP"))  # fp32 o, fp16 ^, dynamic D, int8 s, int16x8 P
    colours = plt.get_cmap("tab10")
    for label, ms, acc in points:
        model, precision = label.rsplit(" ", 1)
        ax.scatter(ms, acc * 100, color=colours(models.index(model) % 10),
                   marker=markers.get(precision, "x"), s=40)
    for i, model in enumerate(models):
        ax.scatter([], [], color=colours(i % 10), marker="o", label=model)
    for precision, marker in markers.items():
        ax.scatter([], [], color="grey", marker=marker, label=precision)
    front = pareto_front(points)
    ax.plot([p[1] for p in front], [p[2] * 100 for p in front], "r--", label="Pareto front")
    for label, ms, acc in front:
        ax.annotate(label, (ms, acc * 100), fontsize=7, xytext=(4, -10),
                    textcoords="offset points", color="red")
    ax.set_xscale("log")
    ax.set_xlabel(f"latency p50 on {target}, ms (log scale)")
    ax.set_ylabel(f"test accuracy on {dataset}, %")
    ax.set_title(f"accuracy on {dataset} vs latency on {target} (trained exports, TFLite"
                 " files)")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def pareto_front(points: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    front: list[tuple[str, float, float]] = []
    for p in sorted(points, key=lambda p: (p[1], -p[2])):
        if not front or p[2] > front[-1][2]:
            front.append(p)
    return front


def grid_figure(rows: list[ModelRow], target: str, path: Path) -> Path:
    """MobileNet v1 across alpha and resolution: MACs against latency (a line per alpha, on
    log axes so the small models do not pile up), and latency as the alpha x size table."""
    plt = _plt()
    points = {}  # (alpha, side) -> (MACs, p50 ms)
    for r in rows:
        lat = r.latency(target, FLOAT) or r.latency(target, "int8")
        side = r.export.input_hw[0]
        if r.macs and lat and side:
            points[(float(r.export.options.get("alpha") or 1.0), side)] = (r.macs, lat.p50_ms)
    alphas = sorted({a for a, _ in points}, reverse=True)
    sides = sorted({s for _, s in points}, reverse=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for alpha in alphas:
        line = sorted((m, ms, side) for (a, side), (m, ms) in points.items() if a == alpha)
        left.plot([m / 1e6 for m, _, _ in line], [ms for _, ms, _ in line], "o-",
                  label=f"alpha {alpha:g}")
    left.set_xscale("log")
    left.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for axis in (left.xaxis, left.yaxis):  # plain numbers, no crowded minor-tick labels
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())
    left.set_xlabel("MACs (millions, log scale)")
    left.set_ylabel(f"latency p50 on {target}, ms (log scale)")
    left.set_title("cost vs measured latency (a line per alpha, across input sizes)")
    left.legend()
    table = [[points[(a, s)][1] if (a, s) in points else float("nan") for s in sides]
             for a in alphas]
    image = right.imshow(table, cmap="viridis_r", aspect="auto")
    slowest = max(ms for _, ms in points.values())
    for i, alpha in enumerate(alphas):
        for j, side in enumerate(sides):
            if (alpha, side) in points:  # a grid point not measured stays blank
                ms = points[(alpha, side)][1]
                right.text(j, i, f"{ms:.2f}", ha="center", va="center", fontsize=8,
                           color="white" if ms > slowest / 2 else "black")
    right.set_xticks(range(len(sides)), [f"{s}x{s}" for s in sides])
    right.set_yticks(range(len(alphas)), [f"alpha {a:g}" for a in alphas])
    right.set_title(f"latency p50 on {target}, ms")
    fig.colorbar(image, ax=right, label="ms")
    return _save(fig, path)


def gap_figure(rows: list[ModelRow], target: str, path: Path) -> Path:
    """gap-mnist: one model, several input sizes: latency against input side."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for precision, marker in zip(TIMED, ("o-", "s--")):
        pts = sorted((r.export.input_hw[0], lat.p50_ms) for r in rows
                     if (lat := r.latency(target, precision)) and r.export.input_hw[0])
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker, label=f"{precision} TFLite")
    ax.set_xlabel("input side, pixels (H = W)")
    ax.set_ylabel(f"latency p50 on {target}, ms")
    ax.set_title("gap-mnist: the same 5,130 params at every input size, output 10 classes")
    ax.legend()
    return _save(fig, path)


def sweep_figure(points, path: Path) -> Path:
    """Article B's separable gains against depth, one line per kernel size: the regular /
    separable ratio of the conv layers' params and MACs (edgeconv.zoo.sweep)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    fig.suptitle("[B-depth-kernel] regular / separable conv layers, VGG pair on 32x32x3"
                 " (from the built models)")
    kernels = sorted({p.kernel for p in points})
    for ax, attr, title in ((axes[0], "param_ratio", "params ratio"),
                            (axes[1], "mac_ratio", "MACs ratio")):
        for k in kernels:
            line = sorted((p for p in points if p.kernel == k), key=lambda p: p.depth)
            ax.plot([p.depth for p in line], [getattr(p, attr) for p in line], marker="o",
                    label=f"{k}x{k} kernels")
        ax.set_xlabel("conv layers (depth)")
        ax.set_ylabel(f"{title} (x fewer when separable)")
        ax.set_xticks(sorted({p.depth for p in points}))
        ax.set_title(title)
        ax.legend()
    return _save(fig, path)
