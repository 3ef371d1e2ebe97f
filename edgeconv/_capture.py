"""Capture what converters print, from Python and from C++ alike.

The TFLite converter, tf2onnx and onnxruntime.quantization write progress chatter to
stdout and stderr (some of it from C++, below Python's sys.stdout). A CLI user should see
our progress and table, not that; but when a conversion fails, its last words are often
the only reason given, so they are kept for the error message.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Captured:
    text: str = ""

    def reason(self, limit: int = 300) -> str:
        """The most telling captured line (an error line if any, else the last), or ''."""
        # Colour codes (onnxruntime's logger ends lines with ESC[m) are not part of a reason,
        # and a line that held only them must not be chosen as the last line.
        plain = _ANSI.sub("", self.text)
        lines = [" ".join(line.split()) for line in plain.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        chosen = (errors or lines or [""])[-1]
        return chosen[:limit]


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@contextlib.contextmanager
def captured_output() -> Iterator[Captured]:
    """Send fds 1 and 2, Python warnings and library loggers to a buffer for the block."""
    captured = Captured()
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings(), \
            _quiet_loggers("tensorflow", "tf2onnx", "absl", "onnxruntime"):
        warnings.simplefilter("ignore")
        saved = []
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        try:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
        except OSError:  # no real fds (embedded interpreters): capture Python output only
            pass
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                yield captured
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.text = sink.read().decode(errors="replace") + buffer.getvalue()


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
