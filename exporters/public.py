"""Recognise a bare CycleGAN/pix2pix generator `state_dict` and load it into a registry network.

The canonical PyTorch CycleGAN and pix2pix code saves generators as plain
state_dicts (`latest_net_G.pth`) that carry no options. Everything needed is
read from the tensors themselves: the first convolution's kernel tells a ResNet
generator (7x7 stem) from a U-Net (4x4), the number of convolutions gives the
blocks or depth, their shapes give ngf and the channels, and the norm layers'
tensors tell batch norm (weight and running statistics) from instance norm
with affine parameters (weight only) or without (nothing, with biased convs).

Weights are matched to the rebuilt network by key when the names are the
canonical ones, otherwise by order and shape, as other re-implementations
name their modules differently. Shapes cannot tell identical residual blocks
apart, so the order must be certain: when the file's own order and the natural
order of its module names both fit but disagree, the match is ambiguous and refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from gantx.errors import GantxError
from gantx.trainers.networks import create_model

RESNET_PRESETS = {6: "resnet_6blocks", 9: "resnet_9blocks"}
UNET_PRESETS = {5: "unet_32", 7: "unet_128", 8: "unet_256"}


@dataclass
class Recognised:
    """A generator rebuilt from a bare state_dict, and what was inferred on the way."""

    module: nn.Module
    notes: list[str] = field(default_factory=list)


def is_state_dict(data: object) -> bool:
    return isinstance(data, dict) and bool(data) and all(isinstance(value, torch.Tensor) for value in data.values())


def _natural_key(key: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _tensor_names(state: dict[str, torch.Tensor]) -> dict[str, set[str]]:
    """Module prefix -> the names of its tensors ({"weight", "bias", "running_mean", ...})."""
    modules: dict[str, set[str]] = {}
    for key in state:
        prefix, _, name = key.rpartition(".")
        modules.setdefault(prefix, set()).add(name)
    return modules


def _clean(state: dict[str, torch.Tensor], notes: list[str]) -> dict[str, torch.Tensor]:
    """Strip a DataParallel prefix and drop tensors no generator uses at inference."""
    if all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    modules = _tensor_names(state)
    # Instance norm saved running statistics before PyTorch 0.4; like the canonical loader, ignore them.
    stale = {prefix for prefix, names in modules.items() if "running_mean" in names and "weight" not in names}
    if stale:
        notes.append(f"ignored running statistics of {len(stale)} instance-norm layers (as the canonical loader does)")
    return {
        key: value
        for key, value in state.items()
        if not key.endswith("num_batches_tracked") and key.rpartition(".")[0] not in stale
    }


def _infer_options(state: dict[str, torch.Tensor], size: int | None) -> tuple[str, dict[str, object]]:
    """Registry name and options from the convolution and norm tensors."""
    kernels = [value for value in state.values() if value.dim() == 4]
    if len(kernels) < 2:
        raise GantxError("not a CycleGAN/pix2pix generator state_dict: it holds fewer than two convolution kernels")
    first, last = kernels[0], kernels[-1]
    names_by_module = _tensor_names(state)
    has_running = any("running_mean" in names for names in names_by_module.values())
    norm_affine = any(
        names == {"weight", "bias"} and state[f"{prefix}.weight"].dim() == 1
        for prefix, names in names_by_module.items()
    )
    second_conv_prefix = next(key for key, value in state.items() if value is kernels[1]).rpartition(".")[0]
    second_biased = f"{second_conv_prefix}.bias" in state
    if has_running:
        norm = "batch"
    elif norm_affine:
        norm = "instance_affine"
    else:
        norm = "instance" if second_biased else "none"
    if first.shape[-2:] == (7, 7):
        blocks, remainder = divmod(len(kernels) - 6, 2)
        if remainder or blocks < 0 or last.shape[-2:] != (7, 7):
            raise GantxError(
                f"looks like a ResNet generator (7x7 stem) but its {len(kernels)} kernels "
                "do not make stem, blocks and head"
            )
        dropout = any(re.search(r"conv_block\.6\.weight$", key) for key in state)
        options = {"n_blocks": blocks, "ngf": first.shape[0], "norm": norm, "dropout": dropout}
        options.update(channels_in=first.shape[1], channels_out=last.shape[0], size=size or 256)
        return RESNET_PRESETS.get(blocks, "resnet"), options
    if first.shape[-2:] == (4, 4):
        depth, remainder = divmod(len(kernels), 2)
        if remainder or depth < 5:
            raise GantxError(
                f"looks like a U-Net generator (4x4 kernels) but its {len(kernels)} kernels "
                "do not pair into 5 or more levels"
            )
        options = {"num_downs": depth, "ngf": first.shape[0], "norm": norm, "dropout": True}
        options.update(channels_in=first.shape[1], channels_out=last.shape[1], size=size or 2**depth)
        return UNET_PRESETS.get(depth, "unet"), options
    raise GantxError(
        f"not a CycleGAN/pix2pix generator: the first kernel is {tuple(first.shape[-2:])}, "
        "expected 7x7 (ResNet) or 4x4 (U-Net)"
    )


def _align(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], source_keys: list[str]
) -> dict[str, str] | None:
    """target key -> source key when the two sequences agree in length, tensor kind and shape."""
    target_keys = list(target)
    if len(source_keys) != len(target_keys):
        return None
    mapping = {}
    for target_key, source_key in zip(target_keys, source_keys):
        if (
            target_key.rpartition(".")[2] != source_key.rpartition(".")[2]
            or target[target_key].shape != source[source_key].shape
        ):
            return None
        mapping[target_key] = source_key
    return mapping


def recognise(state: dict[str, torch.Tensor], size: int | None = None) -> Recognised:
    """Build the registry generator that `state` fits and load it; GantxError says why when none or several fit."""
    notes: list[str] = []
    state = _clean(state, notes)
    arch, options = _infer_options(state, size)
    model = create_model(arch, **options)
    target = {key: value for key, value in model.state_dict().items() if not key.endswith("num_batches_tracked")}
    if set(state) == set(target) and all(state[key].shape == target[key].shape for key in target):
        mapping = {key: key for key in target}
    else:
        by_module_name = sorted(
            state, key=lambda key: _natural_key(key.rpartition(".")[0])
        )  # stable: weight before bias
        orders = {tuple(state), tuple(by_module_name)}
        fits = {tuple(sorted(m.items())) for order in orders if (m := _align(state, target, list(order))) is not None}
        if not fits:
            raise GantxError(
                f"weights do not fit {arch} {options}: {len(state)} tensors against {len(target)} expected, "
                "or their shapes differ in order"
            )
        if len(fits) > 1:
            raise GantxError(
                f"ambiguous match for {arch}: the file's tensor order and its module names' order both fit but pair "
                "tensors differently; save the state_dict from the module itself so its order is the module order"
            )
        mapping = dict(next(iter(fits)))
        notes.append("matched tensors by order and shape (names differ from the canonical layout)")
    model.load_state_dict({key: state[source] for key, source in mapping.items()}, strict=False)
    described = ", ".join(f"{key}={value}" for key, value in options.items())
    notes.insert(0, f"recognised {arch} ({described})")
    return Recognised(model.eval(), notes)


def batch_stats_norms(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d by an affine InstanceNorm2d with the same weight and bias.

    This is batch norm in training mode at batch size 1, which is how the
    canonical pix2pix test.py ran its batch-norm generators (without --eval);
    unlike real batch statistics it keeps the images of a batch independent.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            replacement = nn.InstanceNorm2d(child.num_features, eps=child.eps, affine=True)
            replacement.weight.data.copy_(child.weight.data)
            replacement.bias.data.copy_(child.bias.data)
            setattr(module, name, replacement)
        else:
            batch_stats_norms(child)
    return module
