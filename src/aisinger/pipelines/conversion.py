"""``aisinger convert``: a dry vocal file -> the voice -> a labelled file.

Consent gate (the voice's record must permit ``convert``) -> the voice loaded once -> the
source read -> :func:`aisinger.convert.convert` -> AIGC label (watermark + metadata) -> one
labelled write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aisinger.consent import check_voice
from aisinger.convert import DEFAULT_PROTECT, DEFAULT_RETRIEVAL, convert
from aisinger.dsp.peak import TRUE_PEAK_CEILING_DBTP
from aisinger.errors import AisingerError
from aisinger.features.pitch import DEFAULT_METHOD
from aisinger.io import audio as audio_io
from aisinger.label import label_audio, policy_for, write_labelled
from aisinger.voice.folder import load_voice

__all__ = ["ConvertOptions", "ConvertResult", "convert_file"]


@dataclass(frozen=True)
class ConvertOptions:
    """Options of :func:`convert_file`; see :func:`aisinger.convert.convert`.  ``sr``: output
    rate (None: the voice's); ``no_label``: explicit opt-out of labelling (warns and logs)."""

    transpose: float = 0.0
    f0_method: str = DEFAULT_METHOD
    retrieval: float = DEFAULT_RETRIEVAL
    protect: float = DEFAULT_PROTECT
    sr: int | None = None
    no_label: bool = False
    content_encoder: str | Path | None = None


@dataclass
class ConvertResult:
    """What :func:`convert_file` wrote: the file, its rate and length, and its AIGC label
    (empty when labelling was turned off)."""

    out_path: Path
    sample_rate: int
    seconds: float
    label: dict = field(default_factory=dict)


def convert_file(vocals: str | Path, voice_dir: str | Path, out_path: str | Path,
                 options: ConvertOptions = ConvertOptions()) -> ConvertResult:
    """Convert the dry vocal ``vocals`` into the voice ``voice_dir`` and write ``out_path``
    (labelled as AI-generated unless ``options.no_label``).  The input is never modified."""
    vocals, voice_dir, out_path = Path(vocals), Path(voice_dir), Path(out_path)
    audio_io.check_output_not_input(out_path, vocals)
    if options.sr is not None and not audio_io.MIN_SR <= options.sr <= audio_io.MAX_SR:
        raise AisingerError(f"--sr {options.sr}: the output sample rate must be "
                            f"{audio_io.MIN_SR}-{audio_io.MAX_SR} Hz")
    check_voice(voice_dir, "convert")
    policy = policy_for("convert", no_label=options.no_label)
    voice = load_voice(voice_dir)
    x, x_sr = audio_io.load(vocals, mono=True)
    y, rate = convert(voice, x, x_sr, transpose=options.transpose, f0_method=options.f0_method,
                      retrieval=options.retrieval, protect=options.protect, out_sr=options.sr,
                      content_encoder=options.content_encoder)
    y, label = label_audio(y, rate, voice_id=voice_dir.resolve().name, policy=policy)
    write_labelled(y, rate, out_path, label, ceiling_dbtp=TRUE_PEAK_CEILING_DBTP)
    return ConvertResult(out_path, rate, round(y.shape[-1] / rate, 3), label)
