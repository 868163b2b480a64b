"""Fuzzing the two readers of untrusted input: images (any bytes a user's folder holds) and model metadata.

Whatever the bytes, the image reader ends in an image or `InputError`, and the
contract reader in a `ModelInfo` or `ModelError`: never another exception, which
would become a traceback or stop a run. Hypothesis runs derandomised (a fixed
seed) with bounded examples, so CI stays fast and repeatable.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from real_images import real_photo
from tiny_models import contract_metadata

from gantx.errors import InputError, ModelError
from gantx.images import open_image, split_alpha
from gantx.model import ModelInfo

FUZZ = settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMATS = {"PNG": {}, "JPEG": {"quality": 90}, "WEBP": {}, "TIFF": {}, "BMP": {}, "GIF": {}}


def encoded_photos() -> dict[str, bytes]:
    """A real photo (alpha added where the format keeps it) in every format a folder may hold."""
    photo = real_photo("chelsea.png", 40)
    files = {}
    for name, options in FORMATS.items():
        buffer = io.BytesIO()
        image = photo.convert("RGBA") if name in ("PNG", "WEBP", "TIFF") else photo
        image.save(buffer, format=name, **options)
        files[name] = buffer.getvalue()
    return files


PHOTOS = encoded_photos()


def read(data: bytes) -> None:
    """The runtime's whole reading path for one file: decode, then bring it to grey and to colour."""
    try:
        image = open_image(data, "fuzzed")
    except InputError:
        return
    for channels in (1, 3):
        try:
            split_alpha(image, channels)
        except InputError:
            pass


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_are_an_input_error_or_an_image(data):
    read(data)


@FUZZ
@given(st.sampled_from(sorted(PHOTOS)), st.floats(0.0, 1.0))
def test_truncated_real_images_are_an_input_error_or_an_image(name, fraction):
    data = PHOTOS[name]
    read(data[: int(len(data) * fraction)])


@FUZZ
@given(
    st.sampled_from(sorted(PHOTOS)),
    st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8),
)
def test_bit_flipped_real_images_are_an_input_error_or_an_image(name, flips):
    data = bytearray(PHOTOS[name])
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    read(bytes(data))


def test_the_unfuzzed_photos_do_decode():
    for name, data in PHOTOS.items():
        assert open_image(data, name).size == real_photo("chelsea.png", 40).size


KEYS = sorted(
    {
        *contract_metadata(),
        "gantx.latent_dim",
        "gantx.classes",
        "gantx.fit",
        "gantx.pad_value",
        "gantx.profile",
        "gantx.precision",
        "gantx.scale",
    }
)
VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "1",
            "0",
            "-1",
            "3",
            "64,64",
            "nan",
            "inf",
            "1e309",
            "noise2image",
            "image2image",
            "pad",
            "A->B",
            "1x3x8x8;1x3x8x8;1x3x8x8",
        ]
    ),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=len(KEYS)), st.booleans())
def test_random_metadata_is_a_model_error_or_a_valid_contract(changes, start_valid):
    meta = {**(contract_metadata() if start_valid else {}), **changes}
    try:
        info = ModelInfo.from_metadata(meta, "fuzzed.onnx")
    except ModelError as error:
        assert str(error).startswith("fuzzed.onnx: ") and "\n" not in str(error)
        return
    assert ModelInfo.from_metadata(info.to_metadata()) == info  # what it accepted, it writes back the same


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("gantx.pad_value", "abc", "'gantx.pad_value'='abc' is not a number"),
        ("gantx.pad_value", "nan", "is not a finite number"),
        ("gantx.size", "0,64", "is not two positive sides"),
        ("gantx.size_multiple", "-4", "must be 0 or more"),
        ("gantx.precision", "fp8", "is not one of fp32, fp16, int8"),
        ("gantx.direction", "sideways", "is not one of A->B, B->A"),
    ],
)
def test_values_the_fuzzer_found_are_named(key, value, message):
    with pytest.raises(ModelError, match=message.replace("(", r"\(")):
        ModelInfo.from_metadata({**contract_metadata(), key: value}, "m.onnx")
