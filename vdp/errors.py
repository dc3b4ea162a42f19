"""User-facing errors: each says what was expected, what arrived and what to do."""

from __future__ import annotations


class VdpError(Exception):
    """An error caused by the user's input or environment (shown without a traceback)."""


class VideoInputError(VdpError, ValueError):
    """The input video or frame folder cannot be used."""


class ConfigError(VdpError, ValueError):
    """An option has a value vdp cannot use."""
