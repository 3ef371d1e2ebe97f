"""The images an export was measured and calibrated on, read again from its manifest.

Two kinds of data reach an export: a named dataset split for training
(edgeconv.data.splits.PreparedDataset) and a user's images (edgeconv.data.user.UserData).
Both satisfy one protocol, so export, bench and quant-report never ask which one they hold:

- `test` (x, y) the measured images, `train` the calibration pool, `class_names`,
  `num_classes`, `preprocessing`, `calibration_from_test`, `summary()`;
- `subset(n, seed)`: the stratified, seeded evaluation subset (--eval-samples);
- `draw_calibration(samples, seed)`: the int8 calibration images (a CalibrationSet);
- `recorded()`: what the manifest's dataset block needs besides `summary()` to read them
  again.

`load_measured` is the one place that tells the two apart, by what the manifest recorded.
"""

from __future__ import annotations

from typing import Any, Protocol

from edgeconv.errors import EdgeconvError


class MeasuredData(Protocol):
    class_names: tuple[str, ...]
    calibration_from_test: bool

    @property
    def num_classes(self) -> int: ...

    def subset(self, n: int, seed: int = 0) -> MeasuredData: ...

    def draw_calibration(self, samples: int, seed: int): ...

    def recorded(self) -> dict[str, Any]: ...

    def summary(self) -> dict[str, Any]: ...


def load_measured(dataset: dict[str, Any], preprocessing: dict[str, Any], *,
                  data_dir: str | None = None, made: str = "the export was made"
                  ) -> MeasuredData:
    """The data a manifest's `dataset` block names (`name`, `seed`, and `user` where the
    images were a user's), prepared exactly as recorded; the whole measured split (cut it
    with `subset`)."""
    if not preprocessing:
        raise EdgeconvError("the manifest records no preprocessing for its images")
    if dataset.get("user"):
        from edgeconv.data.user import load_recorded_user

        return load_recorded_user(dataset["user"], preprocessing)
    if not dataset.get("name"):
        raise EdgeconvError("the manifest names no dataset")
    from edgeconv.data.splits import load_recorded

    return load_recorded(dataset["name"], preprocessing, data_dir=data_dir,
                         seed=dataset.get("seed") or 0, made=made)
