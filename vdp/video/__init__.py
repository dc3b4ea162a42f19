"""Video input and output: frames are ``(T, H, W, 3)`` uint8 RGB on the CPU, rates exact Fractions.

One module per job:

- :mod:`vdp.video.probe`: what ffmpeg says about a file (streams, exact rate, audio).
- :mod:`vdp.video.read`: :class:`Video`, :func:`read_video` and :func:`check_input`.
- :mod:`vdp.video.frame_store`: frames kept in a temporary file when memory would not hold them.
- :mod:`vdp.video.png`: PNG sequences and DAVIS-style palette masks.
- :mod:`vdp.video.mp4`: H.264 mp4 writing, with the source's audio.

Nothing here imports torch; beyond numpy it needs only OpenCV, Pillow and imageio-ffmpeg.
"""

from vdp.video.frame_store import FrameStore
from vdp.video.mp4 import Mp4Writer, write_mp4
from vdp.video.png import write_indexed_png, write_png_sequence
from vdp.video.read import Video, check_input, read_video

__all__ = [
    "FrameStore",
    "Mp4Writer",
    "Video",
    "check_input",
    "read_video",
    "write_indexed_png",
    "write_mp4",
    "write_png_sequence",
]
