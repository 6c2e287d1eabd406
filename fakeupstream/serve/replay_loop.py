"""The socket loop that drives the replay engine for one connection.

The engine (:class:`~fakeupstream.replay.ReplaySession`) decides what to send and
when; this loop only sends it (frames due together in one write), waits for the
client or the next deadline, and passes each client frame back. Faults, when a
test armed some, see every frame on its way out and in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from websockets.asyncio.server import ServerConnection

from ..cassette import JSONObject
from ..replay import Close, ReplaySession, Send
from ..rest import with_session_config
from .burst import send_burst
from .fault_runner import FaultRunner
from .logs import frame_summary

__all__ = ["BATCH", "FIRST_BATCH", "replay_loop"]

BATCH = 256
"""Steps worked out and sent at a time: a connection replaying a long stream does not
hold the event loop for the whole of it (at speed 0, a timeline can be due at once)."""
FIRST_BATCH = 16
"""The first time, fewer: a long stream's first frames go out without waiting for
the next 255 to be framed."""

logger = logging.getLogger("fakeupstream")


async def replay_loop(
    ws: ServerConnection,
    session: ReplaySession,
    loop: asyncio.AbstractEventLoop,
    number: int,
    faults: FaultRunner | None = None,
    config: JSONObject | None = None,
) -> None:
    """Drive the replay engine: send what is due, wait for the client or the next deadline.

    With ``faults``, every frame goes through them, and a fault may end the session.
    ``config`` is the session config of the client's ephemeral key, shown in
    ``session.created``.
    """
    log_frames = logger.isEnabledFor(logging.DEBUG)  # -v: one line per frame
    if faults is not None and await faults.start():
        return
    limit = FIRST_BATCH  # the first frames go out as soon as they can
    while True:
        actions = session.due(loop.time(), limit=limit)
        full, limit = len(actions) >= limit, BATCH
        frames, close = _split_due(actions)
        if config is not None:
            frames = [with_session_config(data, config) for data in frames]
        if log_frames:
            for data in frames:
                logger.debug("connection %d > %s", number, frame_summary(data))
        if faults is None:
            await send_burst(ws, frames)  # the frames due together go in one write
        elif (sent := await faults.send_all(frames)) is not None:
            session.not_sent(len(frames) - sent + (close is not None))
            return
        if close is not None:
            await ws.close(close.code, close.reason)
            session.finish(close.code, close.reason, by="server")
            return
        if full:  # more may be due already: send it before waiting
            await asyncio.sleep(0)  # and let the other connections have their turn
            continue
        deadline = session.deadline()
        if deadline is None:  # waiting on the client: no timer to arm and cancel
            message = await ws.recv()
        else:
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    message = await ws.recv()
            except TimeoutError:
                continue
        if log_frames:
            logger.debug("connection %d < %s", number, frame_summary(message))
        session.receive(message, loop.time())
        if faults is not None and await faults.received(message):
            return


def _split_due(actions: Sequence[Send | Close]) -> tuple[list[str | bytes], Close | None]:
    """The frames to send, and the close that ends them (nothing after a close is sent)."""
    frames: list[str | bytes] = []
    for action in actions:
        if isinstance(action, Close):
            return frames, action
        frames.append(action.data)
    return frames, None
