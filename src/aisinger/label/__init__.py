"""Responsible-by-default labelling of AI-generated audio.

Every output carries two *implicit* labels — the GB 45438-2025 Annex E ``AIGC`` metadata tag
(:mod:`~aisinger.label.metadata`) and an inaudible watermark with the voice-model hash and a
content ID (:mod:`~aisinger.label.watermark`) — and optionally an *explicit* audible cue
(:mod:`~aisinger.label.cue`).  :mod:`~aisinger.label.detect` checks files for them.

Entry points for the CLI and the stages::

    label_file(input, output, voice_id=..., explicit="none") -> Path       # aisinger label
    label_audio(audio, sr, voice_id=..., policy=...) -> (audio, label)      # stages
    write_labelled(audio, sr, out_path, label, ceiling_dbtp=...)            # the one writer
    tag_file(path, label)                                                   # re-tag a file
    detect_file(path, known_voices=None) -> DetectResult                    # aisinger detect
    policy_for(stage, no_label=False, service=False) -> LabelPolicy         # defaults / opt-out
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from aisinger.errors import AisingerError
from aisinger.dsp.peak import limit_true_peak, true_peak_dbtp
from aisinger.io.audio import WRITE_EXTENSIONS, check_output_not_input, encode, load, save
from aisinger.io.fileio import atomic_path, clean_stale
from aisinger.label import metadata as md
from aisinger.label import watermark as wm
from aisinger.label.cue import (CUE_KINDS, DEFAULT_CUE, DEFAULT_CUE_LANG, SERVICE_CUE, add_cue,
                                explicit_cue)
from aisinger.label.detect import DetectResult, detect_file
from aisinger.label.metadata import DEFAULT_PRODUCER, AigcLabel

log = logging.getLogger("aisinger.label")

M4A_BITRATE = "192k"
"""AAC bitrate of labelled .m4a outputs."""
LOSSLESS_OR_NATIVE = (".wav", ".flac", ".mp3", ".ogg")
"""Output formats written by :func:`aisinger.io.audio.save`; .m4a goes through ffmpeg."""

__all__ = ["LabelPolicy", "policy_for", "label_audio", "label_file", "tag_file", "detect_file",
           "write_labelled", "Written",
           "DetectResult", "AigcLabel", "content_id_for", "explicit_cue", "add_cue"]


@dataclass(frozen=True)
class LabelPolicy:
    """How a stage labels its outputs.

    Attributes:
        enabled: False only after an explicit opt-out (see :func:`policy_for`).
        explicit: audible cue: ``"none"``, ``"voice"`` or ``"rhythm"``.
        lang: language of the spoken cue (``"en"`` / ``"zh"``).
        producer: ``ContentProducer`` of the metadata label.
        key: watermark key.
    """

    enabled: bool = True
    explicit: str = DEFAULT_CUE
    lang: str = DEFAULT_CUE_LANG
    producer: str = DEFAULT_PRODUCER
    key: str = wm.DEFAULT_KEY

    def __post_init__(self) -> None:
        if self.explicit not in CUE_KINDS:
            raise AisingerError(f"unknown cue {self.explicit!r}; use one of "
                                f"{', '.join(CUE_KINDS)}")


def policy_for(stage: str, *, no_label: bool = False, service: bool = False,
               explicit: str | None = None, lang: str = DEFAULT_CUE_LANG,
               producer: str = DEFAULT_PRODUCER) -> LabelPolicy:
    """The labelling policy a stage (convert, cover, speak, serve, label) must apply.

    Defaults: metadata + watermark always; the audible cue is on (``"voice"``) in the request
    service and off in the local CLI.  ``no_label=True`` (only from an explicit user flag such
    as ``--no-label``) turns labelling off with a warning and a log line.
    """
    if no_label:
        msg = (f"{stage}: labelling turned OFF by explicit request (--no-label): the output "
               "carries no AIGC metadata and no watermark; you are responsible for "
               "disclosing that it is AI-generated")
        log.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
        return LabelPolicy(enabled=False, explicit="none", lang=lang, producer=producer)
    cue = explicit if explicit is not None else (SERVICE_CUE if service else DEFAULT_CUE)
    return LabelPolicy(True, cue, lang, producer)


def content_id_for(produce_id: str) -> int:
    """The watermark content ID derived from a ``ProduceID`` (first 16 bits of its SHA-256)."""
    digest = hashlib.sha256(produce_id.encode("utf-8")).digest()
    return int.from_bytes(digest, "big") >> (256 - wm.CONTENT_BITS)


def label_audio(audio: np.ndarray, sr: int, *, voice_id: str | None = None,
                content_id: int | None = None, explicit: str = DEFAULT_CUE,
                lang: str = DEFAULT_CUE_LANG,
                producer: str = DEFAULT_PRODUCER, policy: LabelPolicy | None = None,
                produce_id: str | None = None) -> tuple[np.ndarray, dict]:
    """Label audio in memory (for stages that write their own files).

    Adds the optional cue, embeds the watermark (unless the audio already carries a readable
    one, which is kept rather than overlaid) and builds the metadata label bound to it.
    Write the audio, then call :func:`tag_file` with the returned label.

    Args:
        audio: ``(samples,)`` or ``(channels, samples)`` float.
        voice_id: ID of the voice model that made the audio (its hash goes in the mark).
        content_id: 16-bit content ID; default: derived from the new ``ProduceID``.
        explicit, lang, producer: cue and producer (ignored when ``policy`` is given).
        policy: a :class:`LabelPolicy` (from :func:`policy_for`); disabled → no labels.
    Returns:
        ``(audio, label)``: label is the ``{"AIGC": {...}}`` dict, ``{}`` when disabled.
    """
    pol = policy or LabelPolicy(True, explicit, lang, producer)
    if not pol.enabled:
        log.warning("labelling disabled: returning the audio unlabelled")
        return np.asarray(audio, dtype=np.float32), {}
    x = np.asarray(audio, dtype=np.float32)
    if pol.explicit != "none":
        x = add_cue(x, sr, explicit_cue(pol.explicit, pol.lang, sr))
    if x.shape[-1] < wm.MIN_DETECT_S * sr:  # say so rather than report "labelled" silently
        log.warning("warning: %.3f s of audio is shorter than the %g s a watermark needs: "
                    "only the metadata label marks it", x.shape[-1] / sr, wm.MIN_DETECT_S)
    produce_id = produce_id or md.new_produce_id()
    existing = wm.detect(x, sr, key=pol.key, search=False)  # an unedited earlier mark
    if existing.present and existing.payload is not None:
        log.info("audio already carries a watermark (voice hash %04x, content %04x); kept",
                 existing.voice_hash, existing.content_id)
        payload = existing.payload
    else:
        cid = content_id_for(produce_id) if content_id is None else int(content_id)
        payload = wm.payload_for(voice_id, cid)
        x = wm.embed(x, sr, payload, key=pol.key)
    label = md.make_label(payload, producer=pol.producer, produce_id=produce_id)
    return x, label.to_dict()


def _as_label(label: dict | AigcLabel) -> AigcLabel:
    if isinstance(label, AigcLabel):
        return label
    import json

    return AigcLabel.from_json(json.dumps(label))


def tag_file(path: str | Path, label: dict | AigcLabel) -> Path:
    """Write the metadata ``label`` (from :func:`label_audio`) into ``path`` atomically."""
    if not label:
        return Path(path)
    return md.write_label(path, _as_label(label))


def _save_m4a(path: Path, audio: np.ndarray, sr: int) -> None:
    if shutil.which("ffmpeg") is None:
        raise AisingerError(f"{path}: writing .m4a needs ffmpeg, which is not installed")
    with tempfile.TemporaryDirectory(prefix="aisinger-label-") as tmp:
        wav = save(Path(tmp) / "in.wav", audio, sr)
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-c:a", "aac",
               "-b:a", M4A_BITRATE, "-f", "mp4", str(path)]
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            raise AisingerError(f"{path}: ffmpeg could not write AAC ({last[:160]})")


@dataclass(frozen=True)
class Written:
    """What :func:`write_labelled` wrote: ``path``; ``true_peak_dbtp`` measured on the file as
    written (decoded again for lossy formats; None when no ceiling was asked for);
    ``gain_db`` (<= 0) applied to meet the ceiling after the encoder's overshoot."""

    path: Path
    true_peak_dbtp: float | None = None
    gain_db: float = 0.0


LOSSY_EXTENSIONS = (".mp3", ".ogg", ".m4a")
"""Formats whose encoder can overshoot the true peak of its input (measured after writing)."""
LOSSY_MARGIN_DB = 0.1
"""Extra headroom (dB) when re-encoding a lossy file that overshot the ceiling; it doubles at
every further try (the encoder's overshoot moves with the level, so a fixed margin could keep
missing by a few hundredths of a dB: a demo cover did, at -0.93 dBTP after 4 tries)."""
LOSSY_TRIES = 6
"""Encodes tried before a lossy file that still overshoots the ceiling is an error."""


def _encode(path: Path, audio: np.ndarray, sr: int, subtype: str | None) -> None:
    if path.suffix.lower() == ".m4a":
        _save_m4a(path, audio, sr)
    else:
        encode(path, audio, sr, subtype)


def write_labelled(audio: np.ndarray, sr: int, out_path: str | Path, label: dict | AigcLabel,
                   *, subtype: str | None = None, ceiling_dbtp: float | None = None) -> Written:
    """THE writer of AI audio: encode ``audio``, tag the AIGC ``label`` and publish with one
    :func:`os.replace`, so ``out_path`` appears labelled or not at all.

    The file is encoded to a temp file in ``out_path``'s folder (name
    :func:`aisinger.io.fileio.temp_prefix`...), tagged there, checked and renamed into place;
    temp files left in that folder by killed runs are removed first
    (:func:`aisinger.io.fileio.clean_stale`).

    Args:
        audio: ``(samples,)`` or ``(channels, samples)`` float (already watermarked by
            :func:`label_audio`); a ``(1, samples)`` array is written as mono.
        label: the ``{"AIGC": {...}}`` dict from :func:`label_audio` (``{}``: written
            unlabelled, only after an explicit opt-out or for non-AI material such as the
            separated accompaniment).
        subtype: sample format override (see :func:`aisinger.io.audio.save`).
        ceiling_dbtp: true-peak ceiling: the audio is limited to it
            (:func:`aisinger.dsp.peak.limit_true_peak`, only when above it) and a lossy file
            (.mp3 .ogg .m4a) is decoded again and re-encoded quieter until the *written* file
            meets it (encoders overshoot by a few tenths of a dB).
    Raises:
        AisingerError: bad extension/rate/samples, or a lossy file that cannot meet the ceiling.
    """
    out_path = Path(out_path)
    ext = out_path.suffix.lower()
    if ext not in tuple(WRITE_EXTENSIONS) + (".m4a",):
        raise AisingerError(f"{out_path}: cannot write '{ext or 'no extension'}'; use one of "
                            f"{', '.join(tuple(WRITE_EXTENSIONS) + ('.m4a',))}")
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    peak, gain_db = None, 0.0
    if ceiling_dbtp is not None:
        if true_peak_dbtp(x) > ceiling_dbtp:
            x, _ = limit_true_peak(x, sr, ceiling_dbtp)
    if out_path.parent.is_dir():
        clean_stale(out_path.parent)
    with atomic_path(out_path) as tmp:
        _encode(tmp, x, sr, subtype)
        if ceiling_dbtp is not None:
            peak = _written_peak(tmp)
            tries = 1
            while ext in LOSSY_EXTENSIONS and peak > ceiling_dbtp:
                if tries >= LOSSY_TRIES:
                    raise AisingerError(f"{out_path}: the encoder keeps the true peak at "
                                        f"{peak:+.2f} dBTP, above the {ceiling_dbtp:+.1f} dBTP "
                                        "ceiling")
                step = ceiling_dbtp - peak - LOSSY_MARGIN_DB * 2 ** (tries - 1)
                gain_db += step
                x = x * np.float32(10 ** (step / 20))
                _encode(tmp, x, sr, subtype)
                peak, tries = _written_peak(tmp), tries + 1
            if gain_db:
                log.info("%s: encoder overshoot: written %.2f dB quieter to stay at or below "
                         "%+.1f dBTP", out_path, -gain_db, ceiling_dbtp)
        if label:
            md.tag_in_place(tmp, _as_label(label))
    return Written(out_path, None if peak is None else round(peak, 3), round(gain_db, 3))


def _written_peak(path: Path) -> float:
    y, _ = load(path)
    return true_peak_dbtp(y)


def label_file(input_path: str | Path, output_path: str | Path, *, voice_id: str | None = None,
               content_id: int | None = None, explicit: str = DEFAULT_CUE,
               lang: str = DEFAULT_CUE_LANG,
               producer: str = DEFAULT_PRODUCER, key: str = wm.DEFAULT_KEY) -> Path:
    """``aisinger label FILE -o OUT``: write a labelled copy of ``input_path``.

    Metadata + watermark (+ the optional audible cue); the output format follows the
    extension of ``output_path`` (.wav .flac .mp3 .ogg .m4a).  The input is never modified;
    the output appears atomically (written and tagged under a temporary name, then renamed).

    Returns:
        ``output_path``.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    check_output_not_input(output_path, input_path)
    ext = output_path.suffix.lower()
    if ext not in LOSSLESS_OR_NATIVE + (".m4a",):
        raise AisingerError(f"{output_path}: cannot write '{ext or 'no extension'}'; use one of "
                            f"{', '.join(LOSSLESS_OR_NATIVE + ('.m4a',))}")
    audio, sr = load(input_path)
    policy = replace(LabelPolicy(), explicit=explicit, lang=lang, producer=producer, key=key)
    marked, label = label_audio(audio, sr, voice_id=voice_id, content_id=content_id,
                                policy=policy)
    write_labelled(marked, sr, output_path, label)
    log.info("labelled %s -> %s (%s)", input_path, output_path,
             label["AIGC"]["ProduceID"])
    return output_path
