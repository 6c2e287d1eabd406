"""Cassettes on disk: the YAML reader and dumper, sidecars, the library, the file writer.

This layer reads and writes files; it never opens a socket and never calls up into
:mod:`fakeupstream.serve`. The sans-I/O core above it decides; this layer persists.
"""

__all__: list[str] = []
