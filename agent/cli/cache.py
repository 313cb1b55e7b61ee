"""`edas-agent cache`: the encoded-data cache's entries, and clearing them."""

from __future__ import annotations

import typer
from rich.table import Table

from edas_agent.cli.shared import console

cache = typer.Typer(
    no_args_is_help=True,
    help="The encoded-data cache: large tables read and encoded once, then memory-mapped.",
)


@cache.command("list")
def list_entries() -> None:
    """Each entry (table, seed, key) and its size; where the cache lives."""
    from edas_agent.evaluators.tabular.cache import cache_root, entries

    found = list(entries())
    table = Table("entry", "size", title=f"encoded-data cache: {cache_root()}")
    for folder, size in found:
        table.add_row(folder.name, _gigabytes(size))
    console.print(table if found else f"the encoded-data cache at {cache_root()} is empty")


@cache.command("clear")
def clear_entries() -> None:
    """Remove every entry (a later load reads and encodes its table again)."""
    from edas_agent.evaluators.tabular.cache import cache_root, clear

    count, size = clear()
    console.print(f"removed {count} entries ({_gigabytes(size)}) from {cache_root()}")


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.2f} GB"
