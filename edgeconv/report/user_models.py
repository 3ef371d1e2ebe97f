"""The report's "Your models" section: every export of a model of the user's own
(`edgeconv export my_model.keras` / `.onnx` / `.tflite` ...), next to the articles' zoo.

For each such export: where the model came from, the data it was measured on, and per file
its size, accuracy and agreement where the data had labels, its output parity with the float
model (the worst output; then every output in a second table) and its bench latencies where
results.json rows link to it. Nothing is re-measured: the figures are the manifest's
(measured at export, on the machine that exported, each file in its own runtime) and the
results' (measured by bench on the target each row names). Standard library only.

A user's export is one whose manifest records where the model came from (`model.source`,
written by `edgeconv export PATH`); a manifest without it counts when its model name is not a
zoo model's.
"""

from __future__ import annotations

import math
from typing import Any

from edgeconv import render
from edgeconv.manifest import Artifact
from edgeconv.quant.output_parity import figure, is_equal, worst
from edgeconv.report import figures
from edgeconv.report.collect import BenchRecord, Collection, ExportRecord, file_name
from edgeconv.report.document import Section, Table

TITLE = "Your models"


def is_user_export(export: ExportRecord) -> bool:
    """Made from the user's own model file rather than a zoo architecture."""
    if export.manifest.model_info.source is not None:
        return True
    from edgeconv.zoo import list_models  # light: the registry, no Keras

    return export.model not in {spec.name for spec in list_models()}


def user_models_section(data: Collection) -> Section | None:
    """The section, or None when the inputs hold no export of a user's model."""
    exports = [e for e in data.exports if is_user_export(e)]
    if not exports:
        return None
    s = Section(TITLE)
    s.blocks.append(
        f"{len(exports)} export(s) of your own model files (`edgeconv export PATH`). Size,"
        " accuracy, agreement and output parity were measured at export, each file in its"
        " own runtime on the machine that exported it, on the export's evaluation images."
        " Latencies come from `edgeconv bench` (p50 [95% interval], fewest threads), each"
        " saying how it was obtained: measured on the target, TFLite Micro timed on the bench"
        " machine (x86 host, reference kernels: not a board time), or an MCU firmware's"
        " estimate from emulated instructions; an emulated Linux board's time is left out."
        " **Output parity** compares each file's raw outputs with the float"
        " model's on the same images (int8 outputs dequantised): cosine similarity, SNR in"
        " dB (10 log10 of signal over noise power; inf when equal), RMSE and max |diff| in"
        " the output's own unit; the first table shows each file's worst output.")
    for export in exports:
        s.blocks.extend(_export_blocks(export, data))
    return s


def _export_blocks(export: ExportRecord, data: Collection) -> list[Any]:
    rows = _latencies(export, data)
    labelled = export.float_accuracy is not None or any(
        a.accuracy is not None for a in export.files)
    blocks: list[Any] = [_about(export, labelled, rows)]
    targets = sorted({r.row.target for r in rows.values()})
    columns = ["file", "format", "precision", "size", "measured in"]
    if labelled:
        columns += ["accuracy [95%] (data, images)", "agreement with float"]
    columns += ["cosine (worst)", "SNR dB (worst)", "RMSE (worst)", "max |diff| (worst)"]
    columns += [f"{t} latency ms" for t in targets]
    body = []
    for artifact in export.files:
        line = [f"`{file_name(artifact)}`", artifact.format, artifact.precision,
                render.nbytes(artifact.size_bytes), artifact.runtime or ""]
        if labelled:
            line += [figures.file_accuracy(export, artifact),
                     "" if artifact.agreement is None else f"{artifact.agreement:.1%}"]
        line += _worst(artifact, _is_reference(export, artifact))
        line += [_latency(rec) if (rec := rows.get((file_name(artifact), t))) else ""
                 for t in targets]
        body.append(line)
    blocks.append(Table(columns, body))
    per_output = [[f"`{file_name(a)}` {a.precision}", *_output_cells(entry)]
                  for a in export.files for entry in (a.output_parity or [])]
    if per_output:
        blocks.append(Table(["file", "output", "values", "cosine", "SNR dB", "RMSE", "L2r",
                             "max |diff|"], per_output))
    return blocks


def _about(export: ExportRecord, labelled: bool, rows: dict[tuple[str, str], Any]) -> str:
    source = export.manifest.model_info.source or {}
    where = []
    if source.get("file"):
        where.append(f"from `{source['file']}`"
                     + (f" ({source['kind']})" if source.get("kind") else ""))
    if source.get("sha256"):
        where.append(f"sha256 {source['sha256'][:12]}")
    given = export.manifest.input
    shape = "x".join("?" if d is None else str(d) for d in given.shape[1:]) if given.shape \
        else ""
    if shape:
        where.append(f"input {shape} {given.layout} {given.dtype}")
    samples = next((a.eval_samples for a in export.files if a.eval_samples), None)
    data = figures.dataset_name(export.dataset) + (f", {samples:,} images" if samples else "")
    where.append(f"data: {data}")
    if labelled:
        what = f"float accuracy {figures.float_accuracy(export) or 'not recorded'}"
    else:
        what = ("no labels: no accuracy; each file is judged on its outputs against the"
                " float model's (gate: min_cosine, min_snr_db, max_rmse, max_abs_diff)")
    if not any(a.output_parity for a in export.files):
        what += "; no output parity recorded (exported before edgeconv measured it)"
    if not rows:
        what += "; not benched (no results.json row links to its files)"
    return (f"**{export.model}** ({export.directory.name}/): {'; '.join(where)}."
            f" {what[0].upper()}{what[1:]}.")


def _latencies(export: ExportRecord, data: Collection) -> dict[tuple[str, str], BenchRecord]:
    """(file, target) -> the row with a latency and the fewest threads: timed on the target,
    TFLite Micro timed on the bench machine, or an MCU firmware's estimate; an emulated
    Linux board's qemu time is left out. A file none of whose rows on a target ran: the
    first row that did not, for its status and reason."""
    found: dict[tuple[str, str], BenchRecord] = {}
    failed: dict[tuple[str, str], BenchRecord] = {}
    for record in data.rows:
        key = (record.file, record.row.target)
        if record.export is not export:
            continue
        if not record.row.ok:  # shown only where no row of that file and target ran
            failed.setdefault(key, record)
            continue
        if not _latency(record):
            continue
        best = found.get(key)
        if best is None or (record.row.threads or 0) < (best.row.threads or 0):
            found[key] = record
    return {**{k: v for k, v in failed.items() if k not in found}, **found}


def _is_reference(export: ExportRecord, artifact: Artifact) -> bool:
    """The float model the other files were compared with (records no parity of its own):
    the Keras file, or the user's own file kept as is (the same sha256)."""
    if artifact.output_parity is not None:
        return False
    own = (export.manifest.model_info.source or {}).get("sha256")
    return artifact.format == "keras" or (own is not None and artifact.sha256 == own)


def _latency(record: BenchRecord) -> str:
    """A row's latency, said with how it was obtained ('' when it has none to show)."""
    if not record.row.ok:  # unsupported / failed: the runtime's reason, shortened
        error = " ".join((record.row.error or "").split())
        return f"**{record.row.status}**" + (f": {error[:80]}" + ("..." if len(error) > 80
                                                                  else "") if error else "")
    estimate = getattr(record.row, "estimate_ms", None)  # an MCU firmware row (edgeconv.mcu)
    if estimate:
        from edgeconv.mcu.calibration import band_text

        return f"{band_text(estimate, dash='-')} (emulated, estimate)"
    if record.p50_ms is None or record.row.timed_on == "emulated":
        return ""
    if record.row.timed_on == "host":  # TFLite Micro's interpreter on the bench machine
        return f"{figures.p50(record)} (x86 host, reference kernels)"
    return f"{figures.p50(record)} (measured)"


def _worst(artifact: Artifact, reference: bool) -> list[str]:
    """cosine, SNR, RMSE, max |diff| of the file's worst output for each ('' if none)."""
    entries = artifact.output_parity
    if not entries:
        return ["(the float reference)" if reference else "", "", "", ""]
    if all(is_equal(e) for e in entries):
        return ["1 (equal)", "inf (equal)", "0", "0"]
    cells = []
    for key in ("cosine", "snr_db", "rmse", "max_abs_diff"):
        entry, value, _ = worst(entries, key)
        tag = f" ({entry.get('output')})" if len(entries) > 1 else ""
        cells.append(_cell(entry, key, value) + tag)
    return cells


def _output_cells(entry: dict[str, Any]) -> list[str]:
    head = [str(entry.get("output")), f"{entry.get('values', 0):,}"]
    if entry.get("nonfinite") or entry.get("reference_nonfinite"):
        return head + [_nonfinite(entry)] + [""] * 4
    return head + [_cell(entry, key, figure(entry, key)[0])
                   for key in ("cosine", "snr_db", "rmse", "l2r", "max_abs_diff")]


_FORMS = {"cosine": "{:.6f}", "snr_db": "{:.1f}", "rmse": "{:.4g}", "l2r": "{:.4g}",
          "max_abs_diff": "{:.4g}"}


def _cell(entry: dict[str, Any], key: str, value: float | None) -> str:
    """A figure as the tables show it: NaN outputs and the infinities said in words."""
    if value is None:
        return _nonfinite(entry) if entry.get("nonfinite") or entry.get(
            "reference_nonfinite") else "n/a"
    if math.isinf(value):
        if is_equal(entry):
            return "inf (equal)"
        return f"{'-' if value < 0 else ''}inf (float output all zero)"
    return _FORMS[key].format(value)


def _nonfinite(entry: dict[str, Any]) -> str:
    bad, ref = entry.get("nonfinite") or 0, entry.get("reference_nonfinite") or 0
    where = f"'{entry.get('output')}'"
    if bad:
        return f"**NaN/inf** in {_values(bad)} of {where}"
    return f"**NaN/inf** in {_values(ref)} of the float reference's {where}"


def _values(count: int) -> str:
    return f"{count:,} value" + ("" if count == 1 else "s")
