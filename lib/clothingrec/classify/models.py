"""Classifier backbones by name: torchvision or timm, from scratch or with pretrained weights.

``build_classifier("mobilenet_v3_small")`` → torchvision model with a 10-class head.
``build_classifier("resnet50", pretrained="DEFAULT")`` → ImageNet weights through
:func:`clothingrec.weights.torchvision_weights` (offline: a fast, clear error) and a new head.
Any timm model works by name (``"efficientnet_b0"``) or with a ``timm/`` prefix to force timm.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from clothingrec.weights import PretrainedWeightsUnavailable, torchvision_weights


def _torchvision_names() -> set[str]:
    import torchvision

    return set(torchvision.models.list_models(module=torchvision.models))


def backbone_source(name: str) -> tuple[str, str]:
    """``(library, model name)`` for ``name``: torchvision first, then timm."""
    if name.startswith(("timm/", "timm:")):
        return "timm", name[5:]
    if name.startswith(("torchvision/", "torchvision:")):
        return "torchvision", name.split("/", 1)[-1].split(":", 1)[-1]
    if name in _torchvision_names():
        return "torchvision", name
    import timm

    if timm.is_model(name):
        return "timm", name
    raise ValueError(f"unknown classifier backbone {name!r}: neither a torchvision model nor a timm model")


def swap_last_linear(model: nn.Module, make) -> nn.Module:
    """Replace the last ``nn.Linear`` of ``model`` by ``make(that_layer)`` (in place); return the new module."""
    last_name, last = None, None
    for mod_name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_name, last = mod_name, module
    if last is None:
        raise ValueError(f"{type(model).__name__}: no nn.Linear head to replace")
    new = make(last)
    parent = model.get_submodule(last_name.rsplit(".", 1)[0]) if "." in last_name else model
    setattr(parent, last_name.rsplit(".", 1)[-1], new)
    return new


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the last ``nn.Linear`` of ``model`` for a new one with ``num_classes`` outputs."""
    swap_last_linear(model, lambda last: last if last.out_features == num_classes else
                     nn.Linear(last.in_features, num_classes, bias=last.bias is not None))
    return model


def build_classifier(name: str, num_classes: int = 10, pretrained: str | bool | None = None) -> nn.Module:
    """A classifier ``nn.Module`` with a ``num_classes``-way head.

    ``pretrained``: None/False (from scratch), True/"DEFAULT" (the library's default weights),
    or a torchvision weights name (``"IMAGENET1K_V2"`` or ``"ResNet50_Weights.IMAGENET1K_V2"``).
    """
    source, model_name = backbone_source(name)
    if source == "torchvision":
        import torchvision

        if pretrained in (None, False, "", "none", "None"):
            return torchvision.models.get_model(model_name, weights=None, num_classes=num_classes)
        enum = torchvision.models.get_model_weights(model_name)
        key = "DEFAULT" if pretrained is True else str(pretrained)
        key = key.split(".", 1)[1] if key.startswith(enum.__name__ + ".") else key
        try:
            member = enum[key] if key != "DEFAULT" else enum.DEFAULT
        except KeyError:
            raise ValueError(f"{model_name}: no weights {key!r}; known: {', '.join(enum.__members__)}") from None
        weights = torchvision_weights(member)  # raises PretrainedWeightsUnavailable offline
        model = torchvision.models.get_model(model_name, weights=weights)
        return replace_head(model, num_classes)
    import timm

    use_pretrained = pretrained not in (None, False, "", "none", "None")
    try:
        return timm.create_model(model_name, pretrained=use_pretrained, num_classes=num_classes)
    except PretrainedWeightsUnavailable:
        raise
    except Exception as exc:  # huggingface_hub raises various offline errors
        if use_pretrained:
            raise PretrainedWeightsUnavailable(
                f"timm model {model_name!r}: pretrained weights are not in the local cache "
                f"(HF_HOME) and cannot be downloaded here ({type(exc).__name__}: {exc}). "
                "Download them on a machine with a network, or train from scratch (pretrained=None)."
            ) from exc
        raise


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_channels_last(model: nn.Module, enabled: bool = True) -> nn.Module:
    return model.to(memory_format=torch.channels_last) if enabled else model


def weights_file(source: str | Path, what: str = "init_weights") -> Path:
    """The weights file ``source`` names: a file, or a run folder's exported ``<model>.pt``; a relative
    path is also looked up from the project root (notebooks run inside ``notebooks/``)."""
    from clothingrec.paths import user_path

    path = user_path(source)
    if path.is_dir():
        exported = sorted(p for p in path.glob("*.pt") if p.is_file())
        if not exported:
            raise FileNotFoundError(f"{what}: no exported weights (*.pt) in {path}")
        path = exported[0]
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no file {path}")
    return path


def read_weights(source: str | Path) -> dict[str, torch.Tensor]:
    """The model tensors of a run folder (its exported ``<model>.pt``), an exported ``.pt`` or a Lightning
    ``.ckpt`` (``model.`` prefix removed)."""
    path = weights_file(source)
    data = torch.load(path, map_location="cpu", weights_only=False)
    state = data.get("state_dict") if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"init_weights: {path} has no 'state_dict' (neither an exported .pt nor a .ckpt)")
    if path.suffix == ".ckpt":
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    return state


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy every tensor of ``state`` whose name and shape match one of ``model``'s; return the names loaded
    (the model's other tensors, a new head, stay as they were)."""
    own = model.state_dict()
    loaded = [k for k, v in state.items() if k in own and own[k].shape == v.shape]
    if not loaded:
        raise ValueError("init_weights: no tensor matches this model by name and shape (another architecture?)")
    model.load_state_dict({k: state[k] for k in loaded}, strict=False)
    return loaded
