"""Small numeric helpers (numpy, plus scipy inside functions): the 100 frames/s grid every
feature uses (``frames``) and the level meters (``loudness``: frame loudness, integrated LUFS,
frame RMS).  Imports nothing but ``aisinger.errors``."""
