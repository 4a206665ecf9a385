"""Ground floor: reading and writing files.

``audio`` (decode/encode, channel rules, input checks, atomic writes, ffprobe), ``fileio``
(atomic file writes, JSON, hashing), ``safeload`` (allow-listed unpickling of weight files) and
``programs`` (running an external program that writes a WAV file).  Imports nothing above
``aisinger.errors``/``paths``/``progress``.
"""
