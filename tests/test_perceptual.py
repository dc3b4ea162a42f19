"""The optional VGG perceptual term: loaded only from weights already at hand, never downloaded."""

from __future__ import annotations

import pytest
import torch

from vdp.errors import ConfigError
from vdp.perceptual import load_perceptual, perceptual_l1


def test_auto_without_weights_is_off_and_says_why(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    perceptual = load_perceptual("auto")
    assert perceptual.features is None
    assert "not found" in perceptual.reason and "--vgg-weights" in perceptual.reason


def test_on_without_weights_is_an_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ConfigError, match="VGG16"):
        load_perceptual("on")
    with pytest.raises(ConfigError):
        load_perceptual("auto", tmp_path / "missing.pth")
    with pytest.raises(ConfigError):
        load_perceptual("sometimes")


def test_weights_from_a_path_give_a_frozen_feature_loss(tmp_path) -> None:
    from torchvision.models import vgg16

    torch.manual_seed(0)
    path = tmp_path / "vgg16.pth"
    torch.save(vgg16(weights=None).state_dict(), path)  # random weights: tests never download
    perceptual = load_perceptual("auto", path)
    assert perceptual.features is not None and str(path) in perceptual.reason
    assert not any(p.requires_grad for p in perceptual.features.parameters())
    image = torch.rand(1, 3, 32, 40)
    other = (image + 0.3 * torch.rand_like(image)).clamp(0, 1).requires_grad_(True)
    assert float(perceptual_l1(perceptual.features, image, image)) == 0.0
    loss = perceptual_l1(perceptual.features, other, image)
    loss.backward()
    assert float(loss) > 0 and other.grad is not None and other.grad.abs().sum() > 0


def test_a_file_that_is_not_vgg_is_refused(tmp_path) -> None:
    path = tmp_path / "bad.pth"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(ConfigError, match="not a torchvision VGG16"):
        load_perceptual("auto", path)
