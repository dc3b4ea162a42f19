"""vdp: split a video into layers by fitting small networks to that one video.

Importing this package is cheap: heavy modules (torch, OpenCV) are imported only where used.
"""

__version__ = "0.1.0"
