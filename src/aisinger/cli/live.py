"""``aisinger live``: real-time conversion, from a microphone to a speaker or a file simulated
block by block (:mod:`aisinger.live`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aisinger.cli.options import NoLabel, Transpose, VoiceDir, library_default, num
from aisinger.errors import AisingerError
from aisinger.live import DEFAULT_BLOCK_MS, LOOKAHEAD_MS, StreamingConverter
from aisinger.live.session import live_devices, live_file

app = typer.Typer()

LIVE_HELP = f"""Live voice changer on the CPU: convert your singing into the voice block by block.

With --input FILE --output FILE the file is fed through the converter block by block as a
live session would (the path tests and benchmarks use); without them the default microphone
goes to the default speaker (needs the optional 'sounddevice' package and PortAudio) until
Ctrl-C or --seconds.  Prints the algorithmic latency (block + {num(LOOKAHEAD_MS)} ms
lookahead) and the compute time per block (p50/p99).  Saved output is labelled as
AI-generated (AIGC metadata + watermark) unless --no-label.  The voice must be an nsf voice
(the default model) whose consent record permits conversion.
"""


@app.command(help=LIVE_HELP)
def live(
    voice: VoiceDir = ...,
    input: Optional[Path] = typer.Option(
        None, "--input", help="Read this file instead of the microphone (simulated real time)."),
    output: Optional[Path] = typer.Option(
        None, "--output", help="Write the converted audio here (.wav, .flac, .mp3 or .ogg); "
                               "with devices: a recording of the session."),
    block_ms: float = typer.Option(
        DEFAULT_BLOCK_MS, "--block-ms",
        help=f"Block length in ms, a multiple of 10 (default {num(DEFAULT_BLOCK_MS)}); "
             f"latency = block + {num(LOOKAHEAD_MS)} ms."),
    transpose: Transpose = library_default(StreamingConverter.__init__, "transpose"),
    threads: int = typer.Option(
        library_default(StreamingConverter.__init__, "threads"), "--threads",
        help=f"CPU threads for the models (default "
             f"{library_default(StreamingConverter.__init__, 'threads')})."),
    seconds: Optional[float] = typer.Option(
        None, "--seconds", help="Device mode: stop after this many seconds (default: Ctrl-C)."),
    no_label: NoLabel = False,
) -> None:
    if input is not None and output is None:
        raise AisingerError("live: --input needs --output (where the converted file goes)")
    if input is not None:
        r = live_file(input, voice, output, block_ms=block_ms, transpose=transpose,
                      threads=threads, no_label=no_label)
    else:
        r = live_devices(voice, block_ms=block_ms, transpose=transpose, threads=threads,
                         out_path=output, seconds=seconds, no_label=no_label)
    s = r.stats
    typer.echo(f"latency: {num(s.latency_ms)} ms algorithmic (block {num(s.block_ms)} ms + "
               f"lookahead {num(s.latency_ms - s.block_ms)} ms), plus compute")
    typer.echo(f"compute per block: p50 {s.p50_ms:.1f} ms, p99 {s.p99_ms:.1f} ms "
               f"({100 * s.p99_ms / s.block_ms:.0f}% of the block); {s.underruns} of "
               f"{s.blocks} blocks over their duration")
    if s.cpu_ms:
        typer.echo(f"CPU per block: p50 {s.cpu_p50_ms:.1f} ms, p99 {s.cpu_p99_ms:.1f} ms "
                   f"(the converting thread alone; wall time above also counts other "
                   f"processes on a busy machine)")
    if r.out_path is not None:
        typer.echo(f"live: {r.out_path}{'' if r.label else ' (NOT labelled)'}")
