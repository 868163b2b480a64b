"""Tiled translation: a fully convolutional model run on overlapping tiles, the seams blended, so memory stays bounded.

A model's working memory grows with the pixels it sees at once; a 24-megapixel
photo through a ResNet-9 needs tens of GB. Cut into tiles of N x N, it needs
what one tile needs (times the batch), and the output canvas. Tiles start on
multiples of the model's `size_multiple`, so each sees the image exactly as the
untiled model would around it; they overlap by `overlap` pixels, and across the
overlap the output moves from one tile to the next (`_ramps`), never using a
tile's pixels within a quarter of the overlap from its edge. A model whose
output depends only on pixels within that quarter gives the untiled result
exactly; a wider reach differs a little at the seams, and instance-normalised
generators, which normalise per tile, differ more (README, "Large images").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """Tiles on a grid: row and column starts, and one tile's height and width (the image's, where it is smaller)."""

    rows: tuple[int, ...]
    columns: tuple[int, ...]
    height: int
    width: int

    def boxes(self) -> list[tuple[int, int]]:
        """(top, left) of every tile, row by row."""
        return [(top, left) for top in self.rows for left in self.columns]


def overlap_for(tile: int, multiple: int) -> int:
    """The overlap `--tile N` uses: an eighth of the tile, on the model's multiple, at least two multiples."""
    return max(2 * multiple, tile // 8 // multiple * multiple)


def _starts(length: int, tile: int, overlap: int, multiple: int) -> tuple[int, ...]:
    """Tile starts on one axis: as few tiles as cover `length` sharing at least `overlap`, each start on `multiple`."""
    if length <= tile:
        return (0,)
    count = -(-(length - overlap) // (tile - overlap))
    last = length - tile  # a multiple, as length and tile are
    return tuple(sorted({index * last // (count - 1) // multiple * multiple for index in range(count - 1)} | {last}))


def plan_grid(height: int, width: int, tile: int, overlap: int, multiple: int) -> Grid:
    """The tiles covering a height x width input (both multiples of `multiple`, as `tile` and `overlap` are)."""
    return Grid(
        _starts(height, tile, overlap, multiple),
        _starts(width, tile, overlap, multiple),
        min(tile, height),
        min(tile, width),
    )


def _ramps(starts: tuple[int, ...], size: int, scale: int) -> list[np.ndarray]:
    """Each tile's weights along one axis, in output pixels.

    Across an overlap of width O with the next tile, a tile keeps weight 1 for
    the first quarter, falls linearly to 0 over the middle half, and has 0 in the
    last quarter, next to its own edge (where its zero padding corrupts it); the
    next tile mirrors that, so the weights always sum to 1, and each pixel comes
    from tiles that saw at least O/4 pixels of context on that side.
    """
    ramps = []
    for index, start in enumerate(starts):
        weights = np.ones(size * scale, np.float32)
        if index:
            weights = np.minimum(weights, _rise((starts[index - 1] + size - start) * scale, size * scale))
        if index + 1 < len(starts):
            weights = np.minimum(weights, _rise((start + size - starts[index + 1]) * scale, size * scale)[::-1])
        ramps.append(weights)
    return ramps


def _rise(overlap: int, length: int) -> np.ndarray:
    """0 over the first quarter of `overlap`, rising to 1 over its middle half, 1 from there on `length` pixels."""
    positions = np.arange(length, dtype=np.float32) + 0.5
    return np.clip((positions - overlap / 4) / (overlap / 2), 0.0, 1.0)


def blend(grid: Grid, outputs: list[np.ndarray], height: int, width: int, scale: int = 1) -> np.ndarray:
    """The C x (scale*height) x (scale*width) output assembled from every tile's output, seams blended.

    The tile outputs come in `boxes` order.
    """
    total = np.zeros((outputs[0].shape[0], height * scale, width * scale), np.float32)
    weight = np.zeros((height * scale, width * scale), np.float32)
    row_ramps, column_ramps = _ramps(grid.rows, grid.height, scale), _ramps(grid.columns, grid.width, scale)
    tiles = [
        (top, left, rows, columns)
        for top, rows in zip(grid.rows, row_ramps)
        for left, columns in zip(grid.columns, column_ramps)
    ]
    for (top, left, rows, columns), output in zip(tiles, outputs):
        mask = rows[:, None] * columns[None, :]
        box = (slice(top * scale, (top + grid.height) * scale), slice(left * scale, (left + grid.width) * scale))
        total[(slice(None), *box)] += output * mask
        weight[box] += mask
    return total / weight
