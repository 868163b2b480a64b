"""`gantx models`: the bundled model zoo."""

from __future__ import annotations

from rich.table import Column, Table

from gantx.cli.options import print_table, table_console
from gantx.model import ModelInfo
from gantx.session import open_model
from gantx.settings import RunSettings
from gantx.zoo import bundled_models


def _what(info: ModelInfo) -> str:
    """The translation's direction, or what a noise model can be asked for."""
    if info.kind == "noise2image":
        return ", ".join(info.classes) if info.classes else f"unconditional, z of {info.latent_dim}"
    if len(info.domains) != 2:
        return ""
    source, target = info.domains if info.direction != "B->A" else info.domains[::-1]
    return f"{source} -> {target}"


def models() -> None:
    """List the bundled models: kind, size, domains or classes, file size. Use a name wherever --model goes."""
    table = Table(
        Column("name", no_wrap=True), "kind", "size", "domains / classes", "MB", "precision"
    )  # the names -m takes, never cut
    for name, path in bundled_models().items():
        _, info = open_model(path, RunSettings(provider="cpu"))
        what = _what(info)
        table.add_row(
            name,
            info.kind,
            "x".join(map(str, info.size)),
            what,
            f"{path.stat().st_size / 1e6:.2f}",
            info.metadata.get("gantx.precision", "fp32"),
        )
    print_table(table_console(), table)
