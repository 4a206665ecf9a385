"""aisinger — an open-source studio for AI singing voices that runs on an ordinary CPU.

Data flow (one module per stage, dependencies point downward):
audio I/O → separation → dataset → features (content, pitch, loudness) → voice model
→ conversion → mix → label → service/UI.  See ``docs/architecture.md``.
"""

__version__ = "0.1.0"
