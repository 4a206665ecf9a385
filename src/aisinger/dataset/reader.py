"""Reading input files piece by piece, so that hour-long recordings stay within bounded memory.

:func:`open_source` checks a file's header (:func:`aisinger.io.audio.info`) and returns a
:class:`BlockReader` whose :meth:`~BlockReader.read` returns any stretch of the file as float32
``(channels, samples)`` at the file's own sample rate, without decoding the rest:

* WAV/FLAC/OGG/MP3/AIFF are read with libsndfile (seek + read);
* everything else (M4A/AAC, …), and files libsndfile cannot seek, is decoded by ffmpeg with
  input seeking (``-ss START -t DURATION``).

Unlike :func:`aisinger.io.audio.load` there is no duration limit: the dataset builder reads long
files a block at a time.  The same checks apply to every block (zero length, NaN/inf samples).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from aisinger.errors import AudioError
from aisinger.io.audio import (MAX_CHANNELS, MAX_SR, MIN_SR, SOUNDFILE_READ_EXTENSIONS, AudioInfo,
                               info)


@dataclass
class BlockReader:
    """Random access to the samples of one audio file (see the module docstring)."""

    path: Path
    info: AudioInfo
    use_soundfile: bool

    @property
    def sr(self) -> int:
        """The file's sample rate in Hz."""
        return self.info.sr

    @property
    def frames(self) -> int:
        """Samples per channel, from the header (compressed formats: an estimate)."""
        return self.info.frames

    @property
    def channels(self) -> int:
        """Number of channels."""
        return self.info.channels

    def read(self, start: int, n: int) -> np.ndarray:
        """Samples ``[start, start + n)`` as float32 ``(channels, samples)``.

        The result is shorter than ``n`` at the end of the file (empty past it).
        Raises AudioError for undecodable data or NaN/inf samples.
        """
        if n <= 0 or start >= self.frames:
            return np.zeros((self.channels, 0), dtype=np.float32)
        if self.use_soundfile:
            try:
                block = self._read_soundfile(start, n)
            except AudioError:
                if self.path.suffix.lower() not in (".mp3", ".ogg", ".oga"):
                    raise
                self.use_soundfile = False  # libsndfile's mp3/ogg support is partial
                block = self._read_ffmpeg(start, n)
        else:
            block = self._read_ffmpeg(start, n)
        if not np.isfinite(block).all():
            raise AudioError(f"{self.path}: contains NaN or infinite sample values")
        return block

    def _read_soundfile(self, start: int, n: int) -> np.ndarray:
        try:
            with sf.SoundFile(os.fsencode(self.path)) as f:
                f.seek(start)
                data = f.read(n, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(f"{self.path}: cannot decode audio ({err})") from None
        return np.ascontiguousarray(data.T)

    def _read_ffmpeg(self, start: int, n: int) -> np.ndarray:
        sr, c = self.sr, self.channels
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{start / sr:.6f}", "-t",
               f"{n / sr:.6f}", "-i", str(self.path), "-map", "0:a:0", "-f", "f32le",
               "-acodec", "pcm_f32le", "-ac", str(c), "-ar", str(sr), "-"]
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            raise AudioError(f"{self.path}: cannot decode audio ({last[:200]})")
        data = np.frombuffer(proc.stdout, dtype="<f4")
        usable = min(len(data) - len(data) % c, n * c)
        return data[:usable].reshape(-1, c).T.copy()


def open_source(path: str | Path) -> BlockReader:
    """Check ``path``'s header and return a :class:`BlockReader` for it.

    Raises AudioError (one line naming the file) for a missing, empty, non-audio or truncated
    file, a sample rate outside [8 kHz, 384 kHz], too many channels or zero length.
    """
    path = Path(path)
    i = info(path)
    if i.sr < MIN_SR or i.sr > MAX_SR:
        raise AudioError(f"{path}: sample rate {i.sr} Hz is outside the supported range "
                         f"{MIN_SR}–{MAX_SR} Hz")
    if not 1 <= i.channels <= MAX_CHANNELS:
        raise AudioError(f"{path}: {i.channels} channels; 1 to {MAX_CHANNELS} are supported")
    if i.frames <= 0:
        raise AudioError(f"{path}: zero-length audio (no samples)")
    use_sf = path.suffix.lower() in SOUNDFILE_READ_EXTENSIONS or path.suffix == ""
    if use_sf:
        try:
            sf.info(os.fsencode(path))
        except sf.LibsndfileError:
            use_sf = False  # ffprobe recognised it (info() above), libsndfile does not
    return BlockReader(path, i, use_sf)
