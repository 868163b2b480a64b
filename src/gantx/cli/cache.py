"""`gantx cache`: what gantx keeps in the user cache folder (TensorRT engines, auto's engine choices); clearing it."""

from __future__ import annotations

import shutil
from typing import Annotated

import typer
from rich.table import Table

from gantx.cli.options import print_table, table_console
from gantx.engine_cache import cache_dir, cache_files, cache_limit_bytes


def cache(
    clear: Annotated[bool, typer.Option("--clear", help="Delete everything in the cache folder.")] = False,
) -> None:
    """Show the cache folder's contents by sub-folder, or clear it.

    GANTX_CACHE_DIR moves the cache folder, GANTX_CACHE_MAX_MB bounds it.
    """
    folder = cache_dir()
    groups: dict[str, list[int]] = {}
    for path in cache_files(folder):
        parts = path.relative_to(folder).parts
        groups.setdefault(parts[0] if len(parts) > 1 else ".", []).append(path.stat().st_size)
    count, megabytes = sum(map(len, groups.values())), sum(map(sum, groups.values())) / 1e6
    if clear:
        shutil.rmtree(folder, ignore_errors=True)
        typer.echo(f"cleared {folder}: {count} files, {megabytes:.1f} MB")
        return
    table = Table(
        "folder",
        "files",
        "MB",
        title=str(folder),
        title_justify="left",
        caption=f"kept under {cache_limit_bytes() / 1e6:,.0f} MB (GANTX_CACHE_MAX_MB)",
    )
    for group, sizes in sorted(groups.items()):
        table.add_row(group, str(len(sizes)), f"{sum(sizes) / 1e6:.1f}")
    table.add_row("total", str(count), f"{megabytes:.1f}")
    print_table(table_console(), table)
