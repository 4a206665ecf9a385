"""``aisinger live``: a file simulated in real time, or a microphone to a speaker.

:func:`live_file` reads a file, runs it block by block through a
:class:`~aisinger.live.stream.StreamingConverter` (timing every block) and writes the result
labelled as AI-generated (AIGC metadata + watermark, one atomic write, like every output).
:func:`live_devices` runs the converter between an input and an output device through the
optional ``sounddevice`` package (PortAudio); recorded output, when asked for, is labelled and
written the same way when the session ends.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aisinger.dsp.peak import TRUE_PEAK_CEILING_DBTP
from aisinger.errors import AisingerError
from aisinger.io import audio as audio_io
from aisinger.label import label_audio, policy_for, write_labelled
from aisinger.live.stream import (DEFAULT_BLOCK_MS, StreamStats, StreamingConverter,
                                  convert_stream)

__all__ = ["LiveResult", "live_file", "live_devices", "audio_backend"]

log = logging.getLogger("aisinger")


@dataclass
class LiveResult:
    """What a live run did: the labelled file it wrote (None when nothing was saved), the
    output rate, seconds of audio, the per-block timing and the AIGC label."""

    out_path: Path | None
    sample_rate: int
    seconds: float
    stats: StreamStats
    label: dict = field(default_factory=dict)


def _save(y: np.ndarray, rate: int, out_path: Path, voice_dir: Path, no_label: bool) -> dict:
    policy = policy_for("convert", no_label=no_label)
    y, label = label_audio(y, rate, voice_id=voice_dir.resolve().name, policy=policy)
    write_labelled(y, rate, out_path, label, ceiling_dbtp=TRUE_PEAK_CEILING_DBTP)
    return label


def live_file(input_path: str | Path, voice_dir: str | Path, out_path: str | Path, *,
              block_ms: float = DEFAULT_BLOCK_MS, transpose: float = 0.0, threads: int = 1,
              no_label: bool = False, progress: bool = True) -> LiveResult:
    """Convert ``input_path`` block by block as a live session would (see
    :func:`aisinger.live.stream.convert_stream`) and write ``out_path`` (labelled unless
    ``no_label``).  The input is never modified."""
    input_path, voice_dir, out_path = Path(input_path), Path(voice_dir), Path(out_path)
    audio_io.check_output_not_input(out_path, input_path)
    conv = StreamingConverter(voice_dir, block_ms=block_ms, transpose=transpose,
                              threads=threads)
    x, sr = audio_io.load(input_path, mono=True)
    y, stats = convert_stream(voice_dir, x, sr, converter=conv, progress=progress)
    label = _save(y, stats.sample_rate, out_path, voice_dir, no_label)
    return LiveResult(out_path, stats.sample_rate, round(y.shape[0] / stats.sample_rate, 3),
                      stats, label)


def audio_backend():
    """The ``sounddevice`` module, or an AisingerError saying why devices are unavailable."""
    try:
        import sounddevice
    except ImportError:
        raise AisingerError("live: no audio device backend: device-to-device mode needs the "
                            "'sounddevice' package (pip install sounddevice) and the PortAudio "
                            "library; use --input FILE --output FILE to simulate a session"
                            ) from None
    except OSError as exc:  # the package is there, PortAudio (a system library) is not
        raise AisingerError(f"live: no audio device backend: sounddevice cannot load PortAudio "
                            f"({str(exc).splitlines()[0][:80]}); install the PortAudio library "
                            f"or use --input FILE --output FILE") from None
    try:
        devices = sounddevice.query_devices()
    except Exception as exc:  # PortAudio errors are its own exception type
        raise AisingerError(f"live: cannot list audio devices ({str(exc)[:100]})") from None
    if not any(d.get("max_input_channels", 0) > 0 for d in devices) or \
            not any(d.get("max_output_channels", 0) > 0 for d in devices):
        raise AisingerError("live: this machine has no audio input or no audio output device; "
                            "use --input FILE --output FILE to simulate a session")
    return sounddevice


def live_devices(voice_dir: str | Path, *, block_ms: float = DEFAULT_BLOCK_MS,
                 transpose: float = 0.0, threads: int = 1, out_path: str | Path | None = None,
                 input_device=None, output_device=None, seconds: float | None = None,
                 no_label: bool = False, stop: threading.Event | None = None) -> LiveResult:
    """Microphone -> converter -> speaker until ``seconds`` have passed, ``stop`` is set or
    Ctrl-C.  With ``out_path`` the converted output is also recorded and written labelled at
    the end.  Needs :func:`audio_backend`."""
    sd = audio_backend()
    voice_dir = Path(voice_dir)
    conv = StreamingConverter(voice_dir, block_ms=block_ms, transpose=transpose,
                              threads=threads)
    stop = stop or threading.Event()
    times: list[float] = []
    cpu: list[float] = []
    recorded: list[np.ndarray] = []
    errors: list[str] = []

    def callback(indata, outdata, frames, _time, status):
        if status:
            log.warning("live: %s", status)
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            y = conv.process(indata[:, 0].astype(np.float32))
        except AisingerError as exc:
            errors.append(str(exc))
            stop.set()
            raise sd.CallbackStop from None
        times.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
        outdata[:, 0] = y
        if out_path is not None:
            recorded.append(y.copy())

    try:
        with sd.Stream(samplerate=conv.sample_rate, blocksize=conv.block_samples,
                       channels=1, dtype="float32", device=(input_device, output_device),
                       callback=callback):
            t_end = None if seconds is None else time.monotonic() + seconds
            while not stop.is_set() and (t_end is None or time.monotonic() < t_end):
                stop.wait(0.1)
    except KeyboardInterrupt:
        pass
    except sd.PortAudioError as exc:
        raise AisingerError(f"live: audio device error ({str(exc)[:120]})") from None
    if errors:
        raise AisingerError(errors[0])
    stats = StreamStats(sample_rate=conv.sample_rate, block_ms=conv.block_ms,
                        latency_ms=conv.latency_ms, blocks=len(times), compute_ms=times,
                        cpu_ms=cpu)
    label: dict = {}
    y = np.concatenate(recorded) if recorded else np.zeros(0, np.float32)
    if out_path is not None and y.size:
        label = _save(y, conv.sample_rate, Path(out_path), voice_dir, no_label)
    return LiveResult(Path(out_path) if out_path is not None and y.size else None,
                      conv.sample_rate, round(y.shape[0] / conv.sample_rate, 3), stats, label)
