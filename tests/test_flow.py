"""Checks of vdp.flow on synthetic videos with known motion; nothing here touches the network."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import vdp.flow as flow_module
from vdp.errors import ConfigError, VideoInputError
from vdp.flow import FlowField, compute_flow, flow_to_rgb, video_flow_scale
from vdp.warp import forward_backward_occlusion

SHIFT_X, SHIFT_Y = 2.5, -1.5
MARGIN = 10  # pixels left out near the border, where content enters or leaves the frame


def smooth_texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """``(height, width, 3)`` uint8: random noise upsampled and blurred, so flow is well posed."""
    rng = np.random.default_rng(seed)
    noise = rng.random((height // 4 + 4, width // 4 + 4, 3)).astype(np.float32)
    texture = cv2.resize(noise, (width + 16, height + 16), interpolation=cv2.INTER_CUBIC)
    texture = cv2.GaussianBlur(texture, (0, 0), 1.0)[8 : 8 + height, 8 : 8 + width]
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    return np.round(texture * 255).astype(np.uint8)


def translate(image: np.ndarray, shift_x: float, shift_y: float) -> np.ndarray:
    """Move the content by (shift_x, shift_y) pixels: the true flow old -> new is that shift."""
    matrix = np.float32([[1, 0, shift_x], [0, 1, shift_y]])
    height, width = image.shape[:2]
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def shifted_video() -> np.ndarray:
    """``(2, 96, 128, 3)`` uint8: a texture, then the same texture moved by (2.5, -1.5) px."""
    texture = smooth_texture(96, 128)
    return np.stack([texture, translate(texture, SHIFT_X, SHIFT_Y)])


def interior_endpoint_error(flow: np.ndarray, expected_x: float, expected_y: float) -> float:
    error = np.hypot(flow[..., 0] - expected_x, flow[..., 1] - expected_y)
    return float(error[:, MARGIN:-MARGIN, MARGIN:-MARGIN].mean())


# --- backends --------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "tolerance"), [("dis", 0.5), ("farneback", 1.0)])
def test_opencv_backends_recover_known_shift(shifted_video: np.ndarray, method: str, tolerance: float) -> None:
    field = compute_flow(shifted_video, method=method)

    assert field.method == method
    assert field.num_pairs == 1
    assert field.forward.shape == field.backward.shape == (1, 96, 128, 2)
    assert field.forward.dtype == field.backward.dtype == np.float32
    assert interior_endpoint_error(field.forward, SHIFT_X, SHIFT_Y) < tolerance
    assert interior_endpoint_error(field.backward, -SHIFT_X, -SHIFT_Y) < tolerance


def test_translation_flows_are_consistent(shifted_video: np.ndarray) -> None:
    field = compute_flow(shifted_video, method="dis")
    interior = (slice(None), slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    np.testing.assert_allclose(field.backward[interior], -field.forward[interior], atol=0.5)

    occlusion = forward_backward_occlusion(
        torch.from_numpy(field.forward).permute(0, 3, 1, 2), torch.from_numpy(field.backward).permute(0, 3, 1, 2)
    )
    assert occlusion[0, 0][MARGIN:-MARGIN, MARGIN:-MARGIN].mean() < 0.02


def test_occlusion_from_dis_finds_covered_background() -> None:
    """A textured square slides 6 px right over a static textured background."""
    background = smooth_texture(64, 96, seed=1)
    square = smooth_texture(24, 24, seed=2)
    first, second = background.copy(), background.copy()
    first[20:44, 20:44] = square
    second[20:44, 26:50] = square
    field = compute_flow(np.stack([first, second]), method="dis")

    occlusion = forward_backward_occlusion(
        torch.from_numpy(field.forward).permute(0, 3, 1, 2), torch.from_numpy(field.backward).permute(0, 3, 1, 2)
    )[0, 0].numpy()
    covered = occlusion[22:42, 44:50]  # background right of the square at t, under it at t+1
    assert covered.mean() > 0.3
    assert occlusion[:, 60:].mean() < 0.05  # static background far from the square


# --- RAFT, without downloads -----------------------------------------------------------------


@pytest.mark.parametrize("pairs_per_batch", [1, 8])
def test_raft_padding_round_trips_pixels(pairs_per_batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in model that echoes its inputs shows the padding, cropping and pair order."""
    monkeypatch.setattr(flow_module, "_RAFT_MAX_PAIRS_PER_BATCH", pairs_per_batch)

    def echo_model(first: torch.Tensor, second: torch.Tensor, num_flow_updates: int) -> list[torch.Tensor]:
        assert first.shape[-2:] == (128, 128)  # 37x53 padded up to RAFT's minimum size
        return [first[:, :2]]

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, size=(4, 37, 53, 3), dtype=np.uint8)
    forward, backward = flow_module._estimate_raft(frames, model=echo_model, device="cpu")

    normalised = frames[..., :2].astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(forward, normalised[:-1], atol=1e-6)
    np.testing.assert_allclose(backward, normalised[1:], atol=1e-6)


@pytest.mark.parametrize(("height", "width", "padded"), [(37, 53, (128, 128)), (130, 201, (136, 208))])
def test_raft_pads_to_multiple_of_eight(height: int, width: int, padded: tuple[int, int]) -> None:
    images = torch.rand(2, 3, height, width)
    result, (left, right, top, bottom) = flow_module._pad_to_raft_size(images)
    assert result.shape[-2:] == padded
    assert left + width + right == padded[1] and top + height + bottom == padded[0]
    torch.testing.assert_close(result[..., top : top + height, left : left + width], images)


def test_raft_network_runs_on_tiny_input() -> None:
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    model = raft_small(weights=None).eval()
    frames = np.random.default_rng(4).integers(0, 256, size=(2, 37, 53, 3), dtype=np.uint8)
    calls: list[tuple[int, int]] = []

    forward, backward = flow_module._estimate_raft(
        frames, model=model, device="cpu", num_flow_updates=2, progress=lambda done, total: calls.append((done, total))
    )

    assert forward.shape == backward.shape == (1, 37, 53, 2)
    assert forward.dtype == np.float32
    assert np.isfinite(forward).all() and np.isfinite(backward).all()
    assert calls == [(1, 1)]


def test_auto_on_cpu_picks_dis_and_says_why(shifted_video: np.ndarray) -> None:
    field = compute_flow(shifted_video, method="auto", device="cpu")
    assert field.method == "dis"
    assert field.reason.startswith("dis:") and "GPU" in field.reason


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An empty torch hub directory and a download that always fails; returns the URLs tried."""
    attempts: list[str] = []

    def failing_download(url: str, destination: Path) -> None:
        attempts.append(url)
        raise OSError("network is unreachable")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the test tried to reach the network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(flow_module, "_download_raft_weights", failing_download)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return attempts


def test_raft_without_weights_explains_how_to_get_them(shifted_video: np.ndarray, offline_hub: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        compute_flow(shifted_video, method="raft", device="cpu")

    message = str(raised.value)
    assert "--raft-weights" in message
    assert "network is unreachable" in message
    assert str(Path(torch.hub.get_dir()) / "checkpoints" / "raft_large_C_T_SKHT_V2-ff5fadd5.pth") in message
    assert len(offline_hub) == 1


def test_auto_on_gpu_without_cached_weights_picks_dis(offline_hub: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    method, reason = flow_module._resolve_method("auto", device="cuda", raft_weights=None)
    assert method == "dis"
    assert "RAFT weights not in cache" in reason and "raft_large_C_T_SKHT_V2-ff5fadd5.pth" in reason
    assert offline_hub == []  # auto never downloads


@pytest.mark.parametrize("method", ["raft", "auto"])
def test_missing_raft_weights_file_is_a_config_error(shifted_video: np.ndarray, tmp_path: Path, method: str) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        compute_flow(shifted_video, method=method, raft_weights=tmp_path / "missing.pth")


def test_auto_on_gpu_with_cached_weights_picks_raft(offline_hub: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / "raft_large_C_T_SKHT_V2-ff5fadd5.pth"
    cached.parent.mkdir(parents=True)
    cached.touch()
    method, reason = flow_module._resolve_method("auto", device="cuda:0", raft_weights=None)
    assert method == "raft" and str(cached) in reason


def test_raft_weights_file_is_loaded(tmp_path: Path) -> None:
    from torchvision.models.optical_flow import raft_large

    torch.manual_seed(0)
    saved = raft_large(weights=None).state_dict()
    weights_file = tmp_path / "raft_large.pth"
    torch.save(saved, weights_file)

    model = flow_module._load_raft_model(weights_file, "cpu")

    assert not model.training
    name = "feature_encoder.convnormrelu.0.weight"
    torch.testing.assert_close(model.state_dict()[name], saved[name])


def test_raft_weights_of_another_model_are_a_config_error(shifted_video: np.ndarray, tmp_path: Path) -> None:
    from torchvision.models.optical_flow import raft_small

    weights_file = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), weights_file)
    with pytest.raises(ConfigError, match="raft_large"):
        compute_flow(shifted_video, method="raft", raft_weights=weights_file)


# --- input checks ----------------------------------------------------------------------------


def test_unknown_method_lists_valid_ones(shifted_video: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="auto, raft, dis, farneback"):
        compute_flow(shifted_video, method="lucas-kanade")


def test_single_frame_is_rejected(shifted_video: np.ndarray) -> None:
    with pytest.raises(VideoInputError, match="at least 2 frames"):
        compute_flow(shifted_video[:1], method="dis")


def test_float_frames_are_rejected(shifted_video: np.ndarray) -> None:
    with pytest.raises(VideoInputError, match="uint8"):
        compute_flow(shifted_video.astype(np.float32), method="dis")


# --- disk cache ------------------------------------------------------------------------------


def test_cache_hits_same_video_and_misses_other_method_or_size(
    shifted_video: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, tuple[int, ...]]] = []
    for name in ("dis", "farneback"):
        backend = flow_module._BACKENDS[name]

        def counted(frames: np.ndarray, *, _name: str = name, _backend=backend, **kwargs: object):
            calls.append((_name, frames.shape))
            return _backend(frames, **kwargs)

        monkeypatch.setitem(flow_module._BACKENDS, name, counted)

    first = compute_flow(shifted_video, method="dis", cache_dir=tmp_path)
    second = compute_flow(shifted_video, method="dis", cache_dir=tmp_path)
    assert len(calls) == 1
    assert second.method == "dis" and "cached" in second.reason
    # float16 storage: well under 0.01 px for these small motions.
    np.testing.assert_allclose(second.forward, first.forward, atol=0.01)
    np.testing.assert_allclose(second.backward, first.backward, atol=0.01)
    assert second.forward.dtype == np.float32

    compute_flow(shifted_video, method="farneback", cache_dir=tmp_path)
    compute_flow(np.ascontiguousarray(shifted_video[:, :64, :96]), method="dis", cache_dir=tmp_path)
    changed = shifted_video.copy()
    changed[1, 50, 60, 0] ^= 1
    compute_flow(changed, method="dis", cache_dir=tmp_path)
    assert [name for name, _ in calls] == ["dis", "farneback", "dis", "dis"]

    assert len(list(tmp_path.glob("*.npz"))) == 4
    assert not list(tmp_path.glob(".*.partial-*"))  # atomic writes leave no temporary files


def test_unreadable_cache_entry_is_recomputed(shifted_video: np.ndarray, tmp_path: Path) -> None:
    compute_flow(shifted_video, method="dis", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(b"not a zip file")
    field = compute_flow(shifted_video, method="dis", cache_dir=tmp_path)
    assert "cached" not in field.reason
    assert interior_endpoint_error(field.forward, SHIFT_X, SHIFT_Y) < 0.5


# --- utilities -------------------------------------------------------------------------------


def test_zero_flow_renders_white() -> None:
    rgb = flow_to_rgb(np.zeros((2, 5, 7, 2), dtype=np.float32))
    assert rgb.shape == (2, 5, 7, 3) and rgb.dtype == np.uint8
    assert (rgb == 255).all()


def test_one_scale_for_the_whole_video() -> None:
    flow = np.zeros((2, 4, 4, 2), dtype=np.float32)
    flow[0, ..., 0] = 4.0  # rightwards
    flow[1, ..., 0] = 2.0  # same direction, half the motion
    assert video_flow_scale(flow) == pytest.approx(4.0)

    rgb = flow_to_rgb(flow).astype(int)
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    assert (saturation[0] > saturation[1] + 50).all()
    # Motion to the right is red on the Middlebury wheel.
    assert (rgb[0, ..., 0] == 255).all() and (rgb[0, ..., 2] < 10).all()

    doubled_scale = flow_to_rgb(flow, max_magnitude=8.0).astype(int)
    np.testing.assert_array_equal(doubled_scale[0], rgb[1])


def test_directions_get_different_hues() -> None:
    directions = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.float32)
    rgb = flow_to_rgb(directions.reshape(1, 1, 4, 2), max_magnitude=1.0)[0, 0]
    assert len({tuple(colour) for colour in rgb}) == 4


def test_flow_field_checks_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(T-1, H, W, 2\)"):
        FlowField(np.zeros((1, 4, 4, 2)), np.zeros((1, 4, 5, 2)), method="dis", reason="test")


def test_chunks_with_shared_scale_match_whole_video() -> None:
    flow = np.random.default_rng(5).normal(size=(3, 6, 9, 2)).astype(np.float32)
    whole = flow_to_rgb(flow)
    scale = video_flow_scale(flow)
    for index in range(3):
        np.testing.assert_array_equal(flow_to_rgb(flow[index : index + 1], max_magnitude=scale)[0], whole[index])

