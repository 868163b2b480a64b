"""Turning the CLI's INPUT arguments into (source, target) file jobs."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterable, Sequence

from gantx.errors import GantxError
from gantx.images import IMAGE_FORMATS, OUTPUT_SUFFIX, is_image_path

OUTPUT_FORMATS = ("same", *OUTPUT_SUFFIX)


@dataclass(frozen=True)
class FileJob:
    """One input file and the output it is translated into."""

    source: Path
    target: Path


def _walk(folder: Path, skip: Path, accept: Callable[[Path], bool]) -> Iterable[tuple[Path, Path]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and accept(path) and skip not in path.resolve().parents:
            yield path, path.relative_to(folder)


def collect_sources(
    inputs: Sequence[str], output_dir: Path, accept: Callable[[Path], bool] = is_image_path
) -> list[tuple[Path, Path]]:
    """(source, path relative to the output) for every image (every file `accept`s) INPUT names.

    Folders are walked recursively (minus the output folder, should it sit
    inside one), globs are expanded, and other files are passed over silently.
    """
    skip = output_dir.resolve()
    sources: list[tuple[Path, Path]] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            if path.resolve() == skip:
                raise GantxError(f"output {output_dir} is the input folder {text} and would overwrite the inputs; choose another --output")
            sources.extend(_walk(path, skip, accept))
        elif path.is_file():
            if accept(path):
                sources.append((path, Path(path.name)))
        elif glob.has_magic(text):
            for match in sorted(glob.glob(text, recursive=True)):
                match_path = Path(match)
                if match_path.is_file() and accept(match_path):
                    sources.append((match_path, Path(match_path.name)))
        else:
            raise GantxError(f"input not found: {text}")
    return sources


def plan_jobs(sources: Sequence[tuple[Path, Path]], output: Path, output_format: str, single_file: bool) -> list[FileJob]:
    """Targets for each source; refuses plans that would overwrite an input or write one file twice."""
    if output_format not in OUTPUT_FORMATS:
        raise GantxError(f"--format {output_format!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    jobs = []
    for source, relative in sources:
        if single_file:
            target = output
        else:
            suffix = source.suffix if output_format == "same" else OUTPUT_SUFFIX[output_format]
            target = output / relative.with_suffix(suffix)
        jobs.append(FileJob(source, target))
    inputs = {source.resolve() for source, _ in sources}
    seen: dict[Path, Path] = {}
    for job in jobs:
        resolved = job.target.resolve()
        if resolved in inputs:
            raise GantxError(f"output {job.target} would overwrite the input {job.source}; choose another --output")
        if resolved in seen:
            raise GantxError(f"{seen[resolved]} and {job.source} would both be written to {job.target}")
        seen[resolved] = job.source
    return jobs


def names_single_file(output: Path, inputs: Sequence[str], suffixes: Collection[str] = IMAGE_FORMATS) -> bool:
    """`-o` names a file when there is one input file and the output has an image (or one of `suffixes`) extension."""
    return len(inputs) == 1 and Path(inputs[0]).is_file() and output.suffix.lower() in suffixes
