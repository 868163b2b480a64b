"""Turning the CLI's INPUT arguments into (source, target) file jobs."""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gantx.errors import GantxError
from gantx.images import IMAGE_FORMATS, OUTPUT_SUFFIX, is_image_path
from gantx.settings import one_of

OUTPUT_FORMATS = ("same", *OUTPUT_SUFFIX)
OutputFormat = Literal[OUTPUT_FORMATS]  # type: ignore[valid-type]


@dataclass(frozen=True)
class FileJob:
    """One input file and the output it is translated into."""

    source: Path
    target: Path


@dataclass(frozen=True)
class VideoJob:
    """One input video, the video it becomes (None: frames only) and the folder its frames also go to (None: none)."""

    source: Path
    target: Path | None
    frames_dir: Path | None = None


def _walk(folder: Path, accept: Callable[[Path], bool]) -> Iterable[tuple[Path, Path]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and accept(path):
            yield path, path.relative_to(folder)


# scheme:// (pathlib folds the // of a URI given as a Path into one /); two letters at least, so not C:/
URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/")


def refuse_uri(path: str | Path) -> None:
    """Object-store URIs would otherwise name a local folder `s3:`: refused, with what to do instead."""
    uri = URI.match(str(path))
    if uri:
        raise GantxError(
            f"{uri.group(1)}:// is not read or written yet: mount the storage and give a path in it (not {path})"
        )


def collect_sources(
    inputs: Sequence[str], output_dir: Path, accept: Callable[[Path], bool] = is_image_path
) -> list[tuple[Path, Path]]:
    """(source, path relative to the output) for every image (every file `accept`s) INPUT names.

    Folders are walked recursively and globs expanded; other files are passed
    over silently, and a file named twice (`a.png a.png`, or a glob and its
    folder) is taken once. An output inside an input folder (it would be read
    as input next time), a missing input and a glob that matches nothing are
    refused.
    """
    refuse_uri(output_dir)
    output = output_dir.resolve()
    sources: list[tuple[Path, Path]] = []
    for text in inputs:
        refuse_uri(text)
        path = Path(text)
        if path.is_dir():
            folder = path.resolve()
            if output == folder or folder in output.parents:
                raise GantxError(
                    f"output {output_dir} is inside the input folder {text}; choose an --output outside it"
                )
            sources.extend(_walk(path, accept))
        elif path.is_file():
            if accept(path):
                sources.append((path, Path(path.name)))
        elif glob.has_magic(text):
            matches = [Path(match) for match in sorted(glob.glob(text, recursive=True))]
            found = [(match, Path(match.name)) for match in matches if match.is_file() and accept(match)]
            if not found:
                raise GantxError(f"no file to translate matches {text!r}")
            sources.extend(found)
        else:
            raise GantxError(f"input not found: {text}")
    unique: dict[Path, tuple[Path, Path]] = {}
    for source, relative in sources:
        unique.setdefault(source.resolve(), (source, relative))
    return list(unique.values())


def plan_jobs(
    sources: Sequence[tuple[Path, Path]], output: Path, output_format: str, single_file: bool
) -> list[FileJob]:
    """Targets for each source; refuses plans that would overwrite an input or write one file twice."""
    one_of(output_format, OutputFormat, "--format")
    wanted = IMAGE_FORMATS[OUTPUT_SUFFIX[output_format]] if output_format != "same" else None
    if single_file and wanted and IMAGE_FORMATS.get(output.suffix.lower()) != wanted:
        raise GantxError(
            f"-o {output} names a {output.suffix} file but --format is {output_format}: give one or the other"
        )
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
    """Whether `-o` names one output file (one input file, and an extension in `suffixes`) rather than a folder.

    Everything else is a folder, refused where it cannot be one or where the
    user plainly meant a file: an existing file, a file name for several
    inputs, or, for one input file, an extension gantx does not write.
    Otherwise the model would run on every input only for each write to
    fail, or a folder named like a file would appear.
    """
    if output.is_dir():
        return False
    one_file = len(inputs) == 1 and Path(inputs[0]).is_file()
    suffix = output.suffix.lower()
    if one_file and suffix in suffixes:
        return True
    if one_file and suffix:
        raise GantxError(
            f"-o {output}: gantx writes {', '.join(suffixes)} files; name one of those, or an existing folder"
        )
    if output.exists():
        raise GantxError(f"-o {output} is a file, not a folder: give an output folder")
    if suffix in suffixes:
        what = f"{len(inputs)} inputs" if len(inputs) != 1 else f"the input {inputs[0]} is not one file"
        raise GantxError(f"-o {output} names a file, but {what}: give an output folder")
    return False
