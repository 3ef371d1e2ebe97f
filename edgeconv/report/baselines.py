"""Published reference points for Fashion-MNIST, read at report time (never copied into the
repository) from the dataset's own documentation, which Debian's `dataset-fashion-mnist`
package installs under /usr/share/doc/dataset-fashion-mnist/:

- `README.md.gz`: the dataset's README, whose "Benchmark" section holds the table of
  *submitted* results (classifier, preprocessing, Fashion-MNIST test accuracy, MNIST test
  accuracy, submitter). These are the published points the report puts next to ours: test
  accuracy on the same 10,000 test images. The dataset's authors say they have not
  verified them; recipes, augmentation and epochs differ, and none states an interval.
- `benchmark/baselines.json`: the configuration of the authors' own scikit-learn benchmark
  (each classifier and the parameter grid it was run with). It holds **no accuracy**; the
  results were published on the benchmark's web site. The report says what it holds and
  shows nothing from it as a figure. A results file of that benchmark (its runner logs one
  JSON object per run: name, parameter, mean_accuracy, ...) passed with `--baselines` is
  read too: scikit-learn classifiers on raw pixels, not CNNs, shown as such.

Standard library only; every file is read through edgeconv.files (a regular file of bounded
size). A file named with `--baselines` that cannot be read is one error line; the system
files, when missing or unreadable, just leave the section out (a note says why).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from edgeconv.errors import EdgeconvError
from edgeconv.files import read_regular

SYSTEM_DOCS = Path("/usr/share/doc/dataset-fashion-mnist")
# Read in this order when --baselines is not given; a missing one is skipped.
DEFAULT_FILES = (SYSTEM_DOCS / "README.md.gz", SYSTEM_DOCS / "benchmark" / "baselines.json")

MAX_BYTES = 4 << 20  # a README or a results log; a gzip is read up to this much unpacked
MAX_ENTRIES = 10_000

# Which published rows are comparable to a model of the zoo: a pattern on the "Classifier"
# cell. The zoo's small networks (article A's, LeNet, the CIFAR VGGs) compare with the
# submitted small CNNs of 2 to 5 conv layers; the ImageNet classics with their namesakes.
SMALL_CNN = r"^\s*\d+\s*conv\b"
COMPARABLE: dict[str, tuple[str, str]] = {
    "dense-mnist": (SMALL_CNN, "small CNNs (2-5 conv layers)"),
    "fcn-mnist": (SMALL_CNN, "small CNNs (2-5 conv layers)"),
    "gap-mnist": (SMALL_CNN, "small CNNs (2-5 conv layers)"),
    "lenet5": (SMALL_CNN, "small CNNs (2-5 conv layers)"),
    "vgg-cifar": (SMALL_CNN, "small CNNs (2-5 conv layers)"),
    "separable-vgg-cifar": (SMALL_CNN, "small CNNs (2-5 conv layers)"),
    "mobilenet": (r"\bmobilenet", "MobileNet"),
    "mobilenetv2": (r"\bmobilenet", "MobileNet"),
    "squeezenet": (r"\bsqueezenet", "SqueezeNet"),
    "alexnet": (r"\balexnet", "AlexNet"),
    "vgg16": (r"\bvgg", "VGG"),
}
HUMAN = r"human"  # the README's crowd-sourced human accuracy: context for every model


@dataclass(frozen=True)
class Published:
    """One row of the README's table of submitted results."""

    classifier: str
    preprocessing: str
    accuracy: float  # Fashion-MNIST test accuracy, as submitted
    submitter: str


@dataclass
class Baselines:
    sources: list[Path] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)  # README rows
    published_from: Path | None = None
    # scikit-learn benchmark: the classifiers its configuration lists, and the best mean
    # accuracy per classifier when a results log was given
    grid: list[str] = field(default_factory=list)
    grid_from: Path | None = None
    sklearn: dict[str, float] = field(default_factory=dict)
    sklearn_from: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.published or self.grid or self.sklearn)

    def comparable(self, model: str) -> tuple[str, list[Published]]:
        """The published rows comparable to `model` ('' and none when nothing is)."""
        pattern, family = COMPARABLE.get(model, ("", ""))
        if not pattern:
            return "", []
        return family, [p for p in self.published
                        if re.search(pattern, p.classifier, re.IGNORECASE)]

    def human(self) -> Published | None:
        return next((p for p in self.published
                     if re.search(HUMAN, p.classifier, re.IGNORECASE)), None)


def load(paths: list[Path] | None) -> Baselines:
    """The given files (each must be readable and recognised), or the system's files that
    exist (None)."""
    found = Baselines()
    explicit = paths is not None
    for path in (paths if explicit else [p for p in DEFAULT_FILES if p.exists()]):
        try:
            _read(Path(path), found)
        except EdgeconvError as exc:
            if explicit:
                raise
            found.notes.append(f"published reference points not read: {exc}")
    return found


def _read(path: Path, into: Baselines) -> None:
    text = _text(path)
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        _json(path, text, into)
    elif "fashion test accuracy" in text.lower():
        _readme(path, text, into)
    else:
        raise EdgeconvError(f"{path}: neither the Fashion-MNIST README (a table with a"
                            " 'Fashion test accuracy' column) nor its benchmark's"
                            " baselines.json or results")
    into.sources.append(path)


def _text(path: Path) -> str:
    """The file's text; a .gz is unpacked up to MAX_BYTES."""
    data = read_regular(path, MAX_BYTES, what="baselines file")
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacked:
                data = unpacked.read(MAX_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise EdgeconvError(f"{path}: not a readable gzip file ({exc})") from None
        if len(data) > MAX_BYTES:
            raise EdgeconvError(f"{path}: unpacks to more than {MAX_BYTES >> 20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise EdgeconvError(f"{path}: not UTF-8 text") from None


_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _cells(line: str) -> list[str]:
    return [" ".join(_LINK.sub(r"\1", c).split()) for c in line.strip().strip("|").split("|")]


def _readme(path: Path, text: str, into: Baselines) -> None:
    """The Markdown table whose header has 'Classifier' and 'Fashion test accuracy'."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("|")
                  and "fashion test accuracy" in line.lower()), None)
    if start is None:
        raise EdgeconvError(f"{path}: no table with a 'Fashion test accuracy' column")
    header = [c.lower() for c in _cells(lines[start])]
    try:
        at = {key: header.index(key) for key in ("classifier", "fashion test accuracy")}
    except ValueError:
        raise EdgeconvError(f"{path}: the results table has no 'Classifier' column") from None
    prep = header.index("preprocessing") if "preprocessing" in header else None
    who = header.index("submitter") if "submitter" in header else None
    rows: list[Published] = []
    for line in lines[start + 1:]:
        if not line.lstrip().startswith("|"):
            break
        cells = _cells(line)
        if len(cells) <= max(at.values()) or set(cells[0]) <= set("-: "):
            continue  # the |---| line, or a short row
        accuracy = _fraction(cells[at["fashion test accuracy"]])
        if accuracy is None:
            continue
        rows.append(Published(cells[at["classifier"]][:200],
                              cells[prep][:200] if prep is not None and prep < len(cells)
                              else "", accuracy,
                              cells[who][:200] if who is not None and who < len(cells) else ""))
        if len(rows) > MAX_ENTRIES:
            raise EdgeconvError(f"{path}: more than {MAX_ENTRIES:,} rows in its table")
    if not rows:
        raise EdgeconvError(f"{path}: its 'Fashion test accuracy' table has no figures")
    into.published, into.published_from = rows, path


def _fraction(cell: str) -> float | None:
    """0.876, or 87.6 / 87.6% as a percentage; None for '-' or anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", cell)
    if match is None:
        return None
    value = float(match.group(1))
    if match.group(2) or value > 1:
        value /= 100
    return value if 0 <= value <= 1 else None


def _json(path: Path, text: str, into: Baselines) -> None:
    """baselines.json (classifiers and their parameter grids: no accuracy), or the
    benchmark's results: objects with `name` and `mean_accuracy`, as a list or one a line."""
    try:
        data = json.loads(text)
        entries = None
    except RecursionError:
        raise EdgeconvError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError:
        data, entries = None, _json_lines(path, text)
    if isinstance(data, dict) and isinstance(data.get("classifiers"), dict):
        names = [str(k)[:200] for k in data["classifiers"]][:MAX_ENTRIES]
        if not names:
            raise EdgeconvError(f"{path}: its 'classifiers' table is empty")
        into.grid, into.grid_from = names, path
        return
    if isinstance(data, list):
        entries = data
    if isinstance(data, dict) and "mean_accuracy" in data:
        entries = [data]
    if not entries:
        raise EdgeconvError(f"{path}: neither a Fashion-MNIST benchmark baselines.json"
                            " ('classifiers') nor its results (objects with name and"
                            " mean_accuracy)")
    best: dict[str, float] = {}
    for entry in entries[:MAX_ENTRIES]:
        if not isinstance(entry, dict):
            continue
        name, value = entry.get("name"), entry.get("mean_accuracy")
        if not isinstance(name, str) or isinstance(value, bool) \
                or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            continue
        best[name[:200]] = max(best.get(name[:200], 0.0), float(value))
    if not best:
        raise EdgeconvError(f"{path}: no entry with a name and a mean_accuracy from 0 to 1")
    into.sklearn, into.sklearn_from = best, path


def _json_lines(path: Path, text: str) -> list[object]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except (ValueError, RecursionError):
            raise EdgeconvError(f"{path}: line {number} is not JSON") from None
    return entries


def summary(values: list[float]) -> str:
    """'best 95.0%, median 92.2% of 17'."""
    return (f"best {max(values):.1%}, median {statistics.median(values):.1%} of"
            f" {len(values)}")
