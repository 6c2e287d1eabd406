"""The distribution version, read by the build backend and by the recorder."""

__version__ = "0.1.0"
