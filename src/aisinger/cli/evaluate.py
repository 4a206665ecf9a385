"""``aisinger eval``: measure a conversion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from aisinger import eval as ev
from aisinger.cli.options import F0Method, choices, library_default
from aisinger.errors import EXIT_USER_ERROR
from aisinger.eval.intelligibility import LANGUAGES
from aisinger.features.pitch import DEFAULT_METHOD

app = typer.Typer()


@app.command("eval")
def eval_cmd(
    output: Path = typer.Argument(..., help="Converted audio to judge, or (with --batch) a "
                                            "folder / manifest of cases."),
    source: Optional[Path] = typer.Option(None, "--source", help="The source vocal the output "
                                                                 "was converted from."),
    target_ref: Optional[Path] = typer.Option(None, "--target-ref", help="Reference clip(s) of "
                                              "the target voice: a file or a folder."),
    transpose: float = typer.Option(library_default(ev.evaluate, "transpose"), "--transpose",
                                    help="Semitones applied in conversion "
                                                             "(F0 error is measured against "
                                                             "source + transpose)."),
    lyrics: Optional[str] = typer.Option(None, "--lyrics", help="Sung text; without it CER is "
                                         "measured against Whisper's transcription of the "
                                         "source."),
    lang: str = typer.Option(library_default(ev.evaluate, "lang"), "--lang",
                             help=f"Language for transcription: {choices(LANGUAGES)}."),
    f0_method: F0Method = DEFAULT_METHOD,
    processing_seconds: Optional[float] = typer.Option(None, "--processing-seconds",
                                                       help="Time the conversion took; gives "
                                                            "the real-time factor."),
    metrics: Optional[list[str]] = typer.Option(None, "--metric", help="Only these metrics "
                                                f"(repeatable): {', '.join(ev.METRICS)}."),
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
