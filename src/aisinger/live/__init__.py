"""Live (streaming) voice conversion: ``aisinger live`` and the service's live page.

A stage above :mod:`aisinger.convert` (whose pieces it reuses block by block) and below the
CLI and the service.  :class:`StreamingConverter` takes fixed-size blocks of mono audio and
returns blocks of converted audio of the same size, carrying every stage's state (content,
F0, loudness, retrieval/protect, decoder phase, crossfade tail) from block to block;
:func:`convert_stream` runs a whole signal through it block by block (the file path the CLI,
the tests and ``bench/live.py`` use).  Design and measurements: docs/live.md.
"""

from __future__ import annotations

from aisinger.live.stream import (DEFAULT_BLOCK_MS, LOOKAHEAD_MS, StreamStats, convert_whole,
                                  StreamingConverter, convert_stream)

__all__ = ["StreamingConverter", "convert_stream", "convert_whole", "StreamStats", "DEFAULT_BLOCK_MS",
           "LOOKAHEAD_MS"]
