"""Task `separate`: pull superimposed videos apart (reflections, transparency, double exposure).

Composition (docs/method.md §2.7): `X_t = a * L1_t + (1 - a) * L2_t`, or with n layers
`X_t = sum_k a_k * Lk_t` with `sum_k a_k = 1`. No training data: what makes each layer a video of
its own is that it is consistent in time under **its own** motion, which is not the blend's.

- Each layer's motion starts from the blend's phase correlation (one peak per layer,
  `vdp.cues.layer_motion`) and is re-estimated as dense flow on the current layer estimate a few
  times during the fit (`rounds`): the blend's own flow is a mixture and is not used.
- The layers are solved, not predicted: each sweep replaces layer k by the average, along its own
  chained flow over `temporal_range` frames on each side, of what the blend leaves for it once the
  other layers are taken out, `(X - sum_{j != k} a_j Lj) / a_k`. Content that moves with layer k
  survives the average; content that moves otherwise is blurred out of it, and so goes to the
  other layers. The last layer updated takes the remainder exactly, so the layers always
  recompose the input.
- The mixing coefficients are fitted by the loop: what the blend leaves for a layer must be
  consistent under that layer's motion and inside [0, 1]; a weak pull keeps them near their start
  (a common scale of a layer is not identifiable from motion: docs/method.md §2.7).
- `--steps 0` is the identity (every layer = the input): the baseline the fit must beat.
- Read-out: with more than two layers, the two that differ most come first (the Visual
  Centrifuge's "most dissimilar pair"). At full resolution, the detail the working resolution
  lacks goes to the layers in proportion to their local gradient energy (two layers' edges rarely
  coincide), so the layers still recompose the input. `--audio-cue` names the layer whose motion
  follows the soundtrack's onsets (`vdp.cues.audio`).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vdp import losses
from vdp.cues.layer_motion import layer_translations, translation_flow
from vdp.errors import ConfigError
from vdp.flow import compute_flow
from vdp.problem import Motion, VideoProblem
from vdp.propagate import chained_links
from vdp.task import Context, TaskResult
from vdp.warp import backward_warp

logger = logging.getLogger(__name__)

#: Frames whose links are gathered at once in a sweep (bounds memory on long videos).
SWEEP_CHUNK = 16
#: The chained links of every layer are kept between sweeps when they need at most this much memory.
LINK_CACHE_BYTES = 512 * 1024**2
#: Coarse grid of the per-pixel mixing map (rows, columns), upsampled bilinearly.
MAP_GRID = (6, 8)


@dataclass(frozen=True)
class SeparateConfig:
    """Options of the `separate` task."""

    layers: int = 2
    """Number of layers (hypotheses) n >= 2; the two that differ most are written first."""
    mixing: float | None = None
    """Initial coefficient a of layer 1 in X = a*L1 + (1-a)*L2, in (0, 1) (default 0.5; with n
    layers, equal weights 1/n)."""
    learn_mixing: bool = field(default=True, metadata={"flags": ("--learn-mixing/--fixed-mixing",)})
    """Fit the mixing coefficient(s) (--fixed-mixing keeps the initial value)."""
    mixing_map: bool = False
    """A per-pixel mixing map (a smooth coarse grid) instead of one coefficient for the video."""
    motion_gap: int = 1
    """Frames between the two frames whose phase correlation gives the layers' starting motions
    (larger separates the peaks of layers whose motions differ by a pixel or two per frame)."""
    temporal_range: int = 4
    """Frames on each side a layer is averaged over along its own chained flow in each sweep."""
    average: Literal["mean", "median"] = "mean"
    """How a layer's frame is combined with its neighbours carried along its flow: the mean, or the
    per-pixel median (rejects the other layers' content that passes through quickly)."""
    sweeps: int = 30
    """Sweeps of the layer solve per round."""
    rounds: int = 3
    """Rounds of the solve; before each round after the first, every layer's flow is re-estimated
    on the current layer estimate."""
    audio_cue: bool = False
    """Rank the layers by how well their motion follows the soundtrack's onsets; the winner is
    also written as layers/audio."""
    weight_consistency: float = 1.0
    """Fit of the mixing: what the blend leaves for a layer, warped along its flow, matches itself."""
    weight_range: float = 1.0
    """Fit of the mixing: what the blend leaves for a layer stays inside [0, 1]."""
    weight_mixing_prior: float = 0.01
    """Pull of the mixing logits towards their start."""
    weight_map_smoothness: float = 0.1
    """Total variation of the per-pixel mixing map's logits (with --mixing-map)."""

    def __post_init__(self) -> None:
        if self.layers < 2:
            raise ConfigError(f"--layers must be 2 or more (a blend of one layer is the input itself), got {self.layers}")
        if self.mixing is not None and not 0 < self.mixing < 1:
            raise ConfigError(
                f"--mixing must be strictly between 0 and 1 (the share of layer 1 in the blend), got {self.mixing}"
            )
        if self.mixing is not None and self.layers != 2:
            raise ConfigError("--mixing sets layer 1's share of a 2-layer blend; with --layers > 2 leave it out")
        if self.motion_gap < 1:
            raise ConfigError(f"--motion-gap must be 1 or more (frames between correlated frames), got {self.motion_gap}")
        for flag, value in (("--temporal-range", self.temporal_range), ("--sweeps", self.sweeps),
                            ("--rounds", self.rounds)):
            if value < 0:
                raise ConfigError(f"{flag} must be 0 or more, got {value}")


class SeparateProblem(VideoProblem):
    """The layers (solved state), each layer's motion, and the learnable mixing coefficients."""

    def __init__(self, context: Context, config: SeparateConfig) -> None:
        super().__init__(context)
        self.config = config
        self.context = context
        n = config.layers
        start = [config.mixing, 1 - config.mixing] if config.mixing is not None else [1.0 / n] * n
        logits = torch.log(torch.tensor(start, dtype=torch.float32))
        shape = (n, *MAP_GRID) if config.mixing_map else (n,)
        logits = logits.view(n, *([1] * (len(shape) - 1))).expand(shape).clone()
        self.mixing_logits = nn.Parameter(logits, requires_grad=config.learn_mixing)
        self.register_buffer("start_logits", logits.clone(), persistent=False)
        frames = self.frames.float() / 255.0
        # Every layer starts as the input (the identity: it recomposes the input for any mixing).
        self.register_buffer("layers", frames[None].expand(n, *frames.shape).clone().half(), persistent=False)
        shifts = layer_translations(context.frames, n, config.motion_gap)
        self.motion_start = [[round(float(v), 2) for v in shifts[:, k].mean(0)] for k in range(n)]
        height, width = context.working_size
        self.motions = nn.ModuleList()
        for k in range(n):
            forward = translation_flow(shifts[:, k], height, width)
            self.motions.append(Motion(forward, -forward))
        self.reversed_motions = nn.ModuleList(Motion(-m.forward_flow, m.forward_flow) for m in self.motions)
        self.sweeps_done = 0
        self._links: dict[tuple[int, int, int], list[tuple[Tensor, Tensor, Tensor]]] = {}
        self.rounds_done = 1
        self.to(context.device)

    # --- mixing ------------------------------------------------------------------------------
    def mixing(self) -> Tensor:
        """(n, 1, 1, 1, 1) coefficients, or (n, 1, 1, h, w) maps with --mixing-map; they sum to 1."""
        weights = torch.softmax(self.mixing_logits, dim=0)
        if weights.dim() == 1:
            return weights.view(-1, 1, 1, 1, 1)
        height, width = self.frames.shape[-2:]
        return F.interpolate(weights[:, None], size=(height, width), mode="bilinear", align_corners=True)[:, None]

    def leftover(self, k: int, frames: Tensor, layers: Tensor, mixing: Tensor) -> Tensor:
        """What the blend leaves for layer k once the others are taken out: (X - sum_{j!=k} a_j Lj) / a_k."""
        others = sum(mixing[j] * layers[j] for j in range(layers.shape[0]) if j != k)
        return (frames - others) / mixing[k].clamp_min(1e-3)

    # --- the solve -----------------------------------------------------------------------------
    def links(self, k: int, starts: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
        """(targets, chain, valid) for every neighbour of the frames `starts` along layer k's
        chained flow (`chained_links`). They change only when the flow is re-estimated, so they are
        kept between sweeps when they fit in `LINK_CACHE_BYTES` (else made again each time)."""
        key = (k, int(starts[0]), len(starts))
        if key in self._links:
            return self._links[key]
        found = [(targets, chain, valid) for _, targets, chain, valid in chained_links(
            starts, forward=self.motions[k], backward=self.reversed_motions[k], max_offset=self.config.temporal_range)]
        height, width = self.frames.shape[-2:]
        # chain (2 channels) and weight (1), float32, per neighbour on each side, frame and layer.
        needed = len(self.motions) * 2 * self.config.temporal_range * self.num_frames * 3 * height * width * 4
        if needed <= LINK_CACHE_BYTES:
            self._links[key] = found
        return found

    @torch.no_grad()
    def average_along(self, k: int, video: Tensor) -> Tensor:
        """Each frame of `video` averaged with its neighbours carried along layer k's chained flow."""
        result = torch.empty_like(video)
        for first in range(0, self.num_frames, SWEEP_CHUNK):
            starts = torch.arange(first, min(first + SWEEP_CHUNK, self.num_frames), device=video.device)
            own = video[starts]
            if self.config.average == "median":
                samples = [own]
                for targets, chain, valid in self.links(k, starts):
                    carried = backward_warp(video[targets], chain)
                    samples.append(torch.where(valid > 0.5, carried, torch.full_like(carried, float("nan"))))
                result[starts] = torch.stack(samples).nanmedian(dim=0).values
                continue
            total, weight = own.clone(), torch.ones_like(own[:, :1])
            for targets, chain, valid in self.links(k, starts):
                total += backward_warp(video[targets], chain) * valid
                weight += valid
            result[starts] = total / weight
        return result

    @torch.no_grad()
    def sweep(self) -> None:
        """One Gauss-Seidel pass: every layer becomes the average, along its own flow, of what the
        blend leaves for it; the first layer then takes the exact remainder."""
        frames = self.frames.float() / 255.0
        layers = self.layers.float()
        mixing = self.mixing().detach()
        n = layers.shape[0]
        for k in range(n):
            layers[k] = self.average_along(k, self.leftover(k, frames, layers, mixing).clamp(0, 1))
        layers[0] = self.leftover(0, frames, layers, mixing)
        self.layers.copy_(layers.half())

    @torch.no_grad()
    def reestimate_motion(self) -> None:
        """Dense flow of every layer, computed on the current layer estimate."""
        context = self.context
        for k in range(self.layers.shape[0]):
            video = (self.layers[k].float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            flow = compute_flow(video, method=context.flow_method, device=str(context.device), cache_dir=None)
            self.motions[k].update(flow.forward, flow.backward)
            self.reversed_motions[k].update(flow.backward, flow.forward)
        self._links.clear()  # the links follow the new flow
        self.rounds_done += 1

    def advance(self, step: int, num_steps: int) -> None:
        """The sweeps due by the end of step `step`, with the flow re-estimated between rounds."""
        config = self.config
        if config.temporal_range == 0:
            return
        total = config.sweeps * config.rounds
        due = round(total * (step + 1) / max(num_steps, 1))
        while self.sweeps_done < due:
            if self.sweeps_done > 0 and self.sweeps_done % config.sweeps == 0:
                self.reestimate_motion()
            self.sweep()
            self.sweeps_done += 1

    @property
    def solved(self) -> bool:
        return self.sweeps_done > 0

    # --- the loop's losses (fit of the mixing) ---------------------------------------------------
    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        config = self.config
        self.advance(step, num_steps)
        starts, indices = self.pairs(frame_indices.to(self.frames.device))
        frames = self.frames[indices].float() / 255.0
        layers = self.layers[:, indices].float()
        mixing = self.mixing()
        consistency = frames.new_zeros(())
        out_of_range = frames.new_zeros(())
        for k in range(layers.shape[0]):
            left = self.leftover(k, frames, layers, mixing)
            consistency = consistency + self.motions[k].warp_loss(left, starts)
            out_of_range = out_of_range + (F.relu(left - 1) + F.relu(-left)).mean()
        terms = {
            "consistency": config.weight_consistency * consistency,
            "range": config.weight_range * out_of_range,
            "mixing_prior": config.weight_mixing_prior * (self.mixing_logits - self.start_logits).pow(2).mean(),
        }
        if config.mixing_map:
            terms["map_smoothness"] = config.weight_map_smoothness * losses.total_variation(self.mixing_logits[None])
        return terms


def most_dissimilar_order(layers: np.ndarray) -> list[int]:
    """Layer indices with the pair that differs most (mean absolute difference) first."""
    n = layers.shape[0]
    if n == 2:
        return [0, 1]
    sample = layers[:, :: max(1, layers.shape[1] // 8)].astype(np.float32)
    pair = max(itertools.combinations(range(n), 2), key=lambda p: float(np.abs(sample[p[0]] - sample[p[1]]).mean()))
    return [*pair, *(k for k in range(n) if k not in pair)]


def gradient_energy(image: np.ndarray) -> np.ndarray:
    """(H, W) squared gradient magnitude of an RGB float image, lightly smoothed."""
    gray = image.mean(axis=2)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.GaussianBlur(gx * gx + gy * gy, (0, 0), 1.0)


class SeparateTask:
    """Superimposed videos pulled apart: n layers, their mixing, a preview."""

    name = "separate"
    summary = "separate a blend of videos (reflection, transparency): X = a*L1 + (1-a)*L2 (layers, mixing)"
    config_class = SeparateConfig

    def build(self, context: Context, config: SeparateConfig) -> SeparateProblem:
        return SeparateProblem(context, config)

    @torch.no_grad()
    def read_out(self, problem: SeparateProblem, context: Context, config: SeparateConfig) -> TaskResult:
        layers = problem.layers.float().clamp(0, 1)
        mixing_full = problem.mixing().detach().float()
        order = most_dissimilar_order((layers * 255).to(torch.uint8).cpu().numpy())
        layers = layers[order]
        mixing_full = mixing_full[order]
        n = len(order)
        working = [(layers[k].permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8) for k in range(n)]
        mixing_maps = mixing_full[:, 0, 0].cpu().numpy()  # (n, 1, 1) or (n, h, w)
        coefficients = [round(float(m.mean()), 4) for m in mixing_maps]

        def full_resolution(t: int, frame: np.ndarray) -> dict[str, np.ndarray]:
            height, width = frame.shape[:2]
            lifted = [layers[k, t].permute(1, 2, 0).cpu().numpy() for k in range(n)]
            if (height, width) != context.working_size:
                lifted = [cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC) for low in lifted]
                # Each layer's coefficient, or its map lifted to the frame: (H, W, 1).
                mix = ([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR)[..., None] for m in mixing_maps]
                       if config.mixing_map else [float(m.mean()) for m in mixing_maps])
                # The detail the working resolution lacks goes to the layers in proportion to their
                # local gradient energy (edges of two layers rarely coincide), scaled so that the
                # layers recompose the frame: sum_k a_k * delta_k = residual.
                residual = frame.astype(np.float32) / 255.0 - sum(a * up for a, up in zip(mix, lifted))
                weights = [gradient_energy(up)[..., None] + 1e-6 for up in lifted]
                norm = sum(a * w for a, w in zip(mix, weights))
                lifted = [up + residual * w / norm for up, w in zip(lifted, weights)]
            out = {f"layers/{k + 1}": (np.clip(up, 0, 1) * 255 + 0.5).astype(np.uint8) for k, up in enumerate(lifted)}
            if audio_winner is not None:
                out["layers/audio"] = out[f"layers/{audio_winner + 1}"]
            out["preview"] = np.concatenate([frame, out["layers/1"], out["layers/2"]], axis=1)
            return out

        info = {
            "num_layers": n,
            "coefficient": coefficients[0] if n == 2 else coefficients,
            "mixing": coefficients,
            "mixing_kind": "map" if config.mixing_map else "global",
            "most_dissimilar_pair": [order[0] + 1, order[1] + 1] if n > 2 else [1, 2],
            "motion_start_mean_shift": [problem.motion_start[k] for k in order],
            "sweeps": problem.sweeps_done,
            "flow_rounds": problem.rounds_done if problem.solved else 0,
        }
        audio_winner = None
        if config.audio_cue:
            from vdp.cues.audio import rank_layers_by_audio

            if context.audio_source is None:
                info["audio_cue"] = {"winner": None, "reason": "the input has no audio track"}
            else:
                ranking = rank_layers_by_audio(working, context.audio_source, float(context.fps))
                audio_winner = ranking.get("winner")
                info["audio_cue"] = {**ranking, "winner": None if audio_winner is None else audio_winner + 1}
        outputs = {f"layers/{k + 1}": "rgb" for k in range(n)}
        videos = {f"layers/{k + 1}.mp4": f"layers/{k + 1}" for k in range(n)}
        if audio_winner is not None:
            outputs["layers/audio"] = "rgb"
            videos["layers/audio.mp4"] = "layers/audio"
        outputs["preview"] = "rgb"
        videos["preview.mp4"] = "preview"
        return TaskResult(
            task=self.name,
            layers={f"layer{k + 1}": working[k] for k in range(n)},
            outputs=outputs,
            videos=videos,
            full_resolution=full_resolution,
            info=info,
            highlights=("mixing",) + (("audio_cue",) if config.audio_cue else ()),
        )

