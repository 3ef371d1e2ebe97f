"""Converted files kept by content (edgeconv.export.conversion_cache): a hit is the file the
converter makes, and anything its bytes depend on changes the key."""

from __future__ import annotations

import numpy as np
import pytest

from edgeconv.export import conversion_cache as cc
from edgeconv.formats import FLOAT, INT8


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "conversions"
    monkeypatch.setenv(cc.CACHE_ENV, str(folder))
    monkeypatch.setattr(cc, "SLOW_S", 0.0)  # store every conversion, however fast
    return folder


def small_model(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1), name="input")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="small")


def request(precision=FLOAT, **extra):
    return {"format": "tflite", "precision": precision, "keep_float": [], "wide": [], **extra}


def test_the_key_holds_weights_request_and_calibration():
    model = small_model()
    images = np.zeros((4, 8, 8, 1), np.float32)
    key = cc.conversion_key(model, request(), images)
    assert cc.conversion_key(small_model(), request(), images) == key  # same seed, same key
    assert cc.conversion_key(small_model(seed=1), request(), images) != key
    assert cc.conversion_key(model, request(INT8), images) != key
    assert cc.conversion_key(model, request(), images + 1) != key
    assert cc.conversion_key(model, request(keep_float=["conv"]), images) != key


def test_a_second_conversion_is_the_stored_file_and_record(cache):
    model, calls = small_model(), []

    def convert():
        calls.append(1)
        return b"converted bytes", {"options": {"opset": 17}, "quantization": None}

    first = cc.cached(model, request(), None, convert)
    second = cc.cached(model, request(), None, convert)
    assert first == second == (b"converted bytes", {"options": {"opset": 17},
                                                    "quantization": None})
    assert calls == [1]
    assert len(list(cache.glob("*.bin"))) == 1


def test_a_damaged_entry_is_converted_again(cache):
    model, calls = small_model(), []

    def convert():
        calls.append(1)
        return b"good", {}

    cc.cached(model, request(), None, convert)
    (stored,) = cache.glob("*.bin")
    stored.write_bytes(b"bad")
    assert cc.cached(model, request(), None, convert) == (b"good", {})
    assert calls == [1, 1]


def test_off_and_fast_conversions_store_nothing(cache, monkeypatch):
    model = small_model()
    monkeypatch.setattr(cc, "SLOW_S", 60.0)
    cc.cached(model, request(), None, lambda: (b"x", {}))
    assert not cache.exists() or not list(cache.iterdir())
    monkeypatch.setattr(cc, "SLOW_S", 0.0)
    monkeypatch.setenv(cc.CACHE_ENV, "off")
    cc.cached(model, request(), None, lambda: (b"x", {}))
    assert not cache.exists()


def test_the_least_recently_used_entries_go_first(tmp_path):
    import os

    for age, name in enumerate(("old", "mid", "new")):
        cc.store(tmp_path, name, b"x" * 100, {})
        os.utime(tmp_path / f"{name}.json", (1000 + age, 1000 + age))
    cc._evict(tmp_path, limit=2 * 100 + 200)
    assert sorted(p.stem for p in tmp_path.glob("*.bin")) == ["mid", "new"]
    assert not (tmp_path / "old.json").exists()


def test_a_real_conversion_reused_is_byte_identical_to_a_fresh_one(cache, conversion_session,
                                                                  monkeypatch):
    """Through ConversionSession.make: the cached int8 file equals a conversion made with
    the cache off (the TFLite converter is deterministic for the same inputs)."""
    _, session = conversion_session
    made = session.make("tflite", INT8)
    assert len(list(cache.glob("*.bin"))) == 1
    again = session.make("tflite", INT8)
    assert again.content == made.content and again.options == made.options
    monkeypatch.setenv(cc.CACHE_ENV, "off")
    assert session.make("tflite", INT8).content == made.content
