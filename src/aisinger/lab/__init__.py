"""The lab: synthetic singing, accompaniment and a parallel multi-voice corpus with ground truth.

Public API::

    from aisinger.lab import VOICES, speak, Note, make_melody, sing, sing_with_f0, render,
                              accompany, mix, make_corpus, load_manifest, parallel_clips
"""

from aisinger.lab.accompaniment import accompany
from aisinger.lab.corpus import CorpusConfig, load_manifest, make_corpus, parallel_clips
from aisinger.lab.melody import Note, make_melody, melody_end, transpose
from aisinger.lab.mixture import mix
from aisinger.lab.sing import Rendition, render, sing, sing_with_f0
from aisinger.tts.classic import VOICES, VoiceSpec, speak

__all__ = [
    "VOICES", "VoiceSpec", "speak", "Note", "make_melody", "melody_end", "transpose",
    "sing", "sing_with_f0", "render", "Rendition", "accompany", "mix",
    "make_corpus", "CorpusConfig", "load_manifest", "parallel_clips",
]
