"""Offline speech engines, used by ``speak``, the audible label cue and the lab corpus.

``classic``: flite and espeak-ng voices (``VOICES``, ``speak``).
"""
