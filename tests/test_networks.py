"""The network registry: every architecture trains, and matches its published reference."""

from __future__ import annotations

import pytest
from torch_helpers import SMALL_OPTIONS, registered_names, small_model

torch = pytest.importorskip("torch")

from gantx.errors import GantxError  # noqa: E402
from gantx.trainers.networks import UnetSkipBlock, create_model  # noqa: E402


def test_every_registered_name_has_small_options():
    assert sorted(SMALL_OPTIONS) == registered_names()


@pytest.mark.parametrize("name", registered_names())
def test_forward_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = small_model(name).train()
    inputs = model.example_inputs(2)
    output = model(*inputs)
    assert torch.isfinite(output).all()
    if (
        getattr(model, "channels_out", None) in (1, 3)
        and output.dim() == 4
        and name.split("_")[0] not in ("patchgan", "pixel")
    ):
        assert output.abs().max() <= 1  # generators end on tanh
    output.square().mean().backward()
    without_grad = [key for key, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert without_grad == []
    # Rebuilding from the recorded arch and options gives the same layout.
    again = create_model(model.arch, **model.options)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def _count(model, with_running_stats=False):
    total = sum(p.numel() for p in model.parameters())
    if with_running_stats:  # Keras counts BN moving mean/var as (non-trainable) parameters
        total += sum(b.numel() for key, b in model.named_buffers() if not key.endswith("num_batches_tracked"))
    return total


def test_parameter_counts_match_the_published_implementations():
    # The canonical CycleGAN/pix2pix code prints 11.378 M (resnet_9blocks), 54.414 M (unet_256),
    # 2.765 M (basic PatchGAN); the TensorFlow DCGAN tutorial's summaries list 2,330,944 and 212,865.
    assert _count(create_model("resnet_9blocks")) == 11_378_179
    assert _count(create_model("unet_256")) == 54_413_955
    assert _count(create_model("patchgan")) == 2_765_633
    assert _count(create_model("dcgan_generator"), with_running_stats=True) == 2_330_944
    assert _count(create_model("dcgan_discriminator")) == 212_865


def test_resnet_keys_follow_the_canonical_layout():
    keys = list(create_model("resnet_9blocks", ngf=8).state_dict())
    assert keys[:2] == ["model.1.weight", "model.1.bias"]
    assert "model.10.conv_block.5.weight" in keys and keys[-2:] == ["model.26.weight", "model.26.bias"]
    # Dropout sits between the two convolutions and shifts the second one's index.
    dropout_keys = create_model("resnet_9blocks", ngf=8, dropout=True).state_dict()
    assert "model.10.conv_block.6.weight" in dropout_keys and "model.10.conv_block.5.weight" not in dropout_keys


def _receptive_field(model, size, channels):
    """Width of the input region that moves the centre output pixel, measured by its gradient."""
    model.eval()
    image = torch.zeros(1, channels, size, size, requires_grad=True)
    output = model(image)
    output[0, 0, output.shape[2] // 2, output.shape[3] // 2].backward()
    columns = image.grad.abs().sum(dim=(0, 1, 2)).nonzero()
    return int(columns.max() - columns.min() + 1)


def test_patchgan_sees_70x70_patches_and_pixel_discriminator_one_pixel():
    torch.manual_seed(0)
    patchgan = create_model("patchgan", ndf=4, norm="none")
    assert _receptive_field(patchgan, 160, 3) == 70
    assert _receptive_field(create_model("pixel", ndf=4, norm="none"), 16, 3) == 1


def test_unet_depth_reaches_a_1x1_bottleneck():
    for name, size in (("unet_32", 32), ("unet_128", 128), ("unet_256", 256)):
        model = create_model(name, ngf=2).eval()
        assert model.size_multiple == size
        shapes = []
        innermost = [block for block in model.modules() if isinstance(block, UnetSkipBlock)][-1]
        innermost.model[1].register_forward_hook(lambda module, args, out: shapes.append(tuple(out.shape[2:])))
        assert model(torch.zeros(1, 3, size, size)).shape == (1, 3, size, size)
        assert shapes == [(1, 1)]


def test_unet_skips_concatenate_encoder_features_into_the_decoder():
    # The outermost decoder step reads [first encoder layer (after the inner level's in-place
    # LeakyReLU, as in the canonical code), output of the inner levels].
    torch.manual_seed(0)
    model = create_model("unet_32", ngf=4, norm="none").eval()
    outer = model.model
    seen = []
    outer.model[1].register_forward_hook(lambda module, args, out: seen.append(out.clone()))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        model(x)
        first_layer = torch.nn.functional.leaky_relu(outer.model[0](x), 0.2)
    assert seen[0].shape == (1, 8, 16, 16)
    assert torch.allclose(seen[0][:, :4], first_layer)


def test_resnet_runs_at_any_multiple_of_four():
    model = create_model("resnet", n_blocks=1, ngf=4).eval()
    assert model(torch.zeros(2, 3, 36, 44)).shape == (2, 3, 36, 44)


def test_dtn_translator_is_g_of_f():
    torch.manual_seed(0)
    translator = create_model("dtn_translator", conv_dim=8, code_dim=16).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    code = translator.f(x)
    assert code.shape == (2, 16, 1, 1) and code.abs().max() <= 1
    assert torch.equal(translator(x), translator.g(code))


def test_conditional_generator_depends_on_the_label():
    torch.manual_seed(0)
    model = create_model("cgan_generator", latent_dim=8).eval()
    z = torch.randn(1, 8).repeat(2, 1)
    images = model(z, torch.tensor([0, 1]))
    assert images.shape == (2, 1, 28, 28) and not torch.allclose(images[0], images[1])


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("resnet_12", {}, "unknown architecture 'resnet_12'"),
        ("resnet", {"blocks": 3}, "has no option blocks"),
        ("resnet", {"norm": "group"}, "norm='group' is not one of"),
        ("dcgan_generator", {"size": 64}, "size=64 must be 28 or 32"),
        ("dcgan_generator", {"ngf": 6}, "ngf=6 must be a positive multiple of 4"),
    ],
)
def test_bad_names_and_options_are_one_line_errors(name, options, message):
    with pytest.raises(GantxError, match=message) as caught:
        create_model(name, **options)
    assert "\n" not in str(caught.value)
