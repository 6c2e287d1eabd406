"""The fake upstream on real sockets: the server, its front door, the record relay.

Thin asyncio code around the sans-I/O core: every decision (which cassette, refuse
or accept, what to send when) is made by the core and executed here.
"""

__all__: list[str] = []
