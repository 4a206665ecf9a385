"""Small numeric helpers (numpy, plus scipy inside functions): the 100 frames/s grid every
feature uses (``frames``), the level meters (``loudness``: frame loudness, integrated LUFS,
frame RMS) and true peak with its limiter (``peak``).  Imports nothing but ``aisinger.errors``."""
