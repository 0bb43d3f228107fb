"""The HTTP connection's lifecycle without I/O: phases, read-pause reasons, the pipeline queue,
the keep-alive decision and the timeout decisions.

``ConnectionState`` is driven by events (a byte arrived, a head or body was parsed, a response
was dispatched or finished) and by a clock value passed in; it never touches a socket, a timer
or the loop. ``HttpProtocol`` (protocol.py) owns one per connection, tells it what happened,
and acts on what it decides: pause or resume reading, refuse with 408, close. Tests drive it
alone (tests/test_connection_state.py), as h11's ``_state.py`` is driven.

Two phases, as in h11 (one per side):

* ``reading`` — what is being received: ``IDLE`` (between requests: the keep-alive deadline),
  ``HEAD`` (a request has begun: the head deadline), ``BODY`` (a head was parsed, its body is
  being received: the body deadlines), ``DONE`` (nothing more is read: refused input, a
  request without keep-alive, end of input, closed).
* ``writing`` — what is being answered: ``IDLE``, ``DISPATCHED`` (a handler has the request;
  its response is written whole), ``STREAMING`` (a streamed response body is being written),
  ``LINGERING`` (half-closed after a refusal, dropping input for ``LINGER`` seconds),
  ``CLOSED``.

``READING_TRANSITIONS`` and ``WRITING_TRANSITIONS`` list every move; the tests check that each
one happens and that no other does.

Phases and pause reasons are int constants (a native class's int attribute costs nothing to
read or set in the compiled runtime; an enum would be an object per access).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from cello.request import Request
    from cello.server.interface import Endpoint

NEVER: Final = float("inf")
# Seconds a refused connection keeps reading (and dropping) input after its last response.
LINGER: Final = 2.0

# -- reading phases -------------------------------------------------------------------
IDLE: Final = 0
HEAD: Final = 1
BODY: Final = 2
DONE: Final = 3
# -- writing phases (IDLE shared) -------------------------------------------------------
DISPATCHED: Final = 4
STREAMING: Final = 5
LINGERING: Final = 6
CLOSED: Final = 7

PHASE_NAMES: Final = {
    IDLE: "IDLE",
    HEAD: "HEAD",
    BODY: "BODY",
    DONE: "DONE",
    DISPATCHED: "DISPATCHED",
    STREAMING: "STREAMING",
    LINGERING: "LINGERING",
    CLOSED: "CLOSED",
}

READING_TRANSITIONS: Final = frozenset(
    {
        (IDLE, HEAD),  # the first byte of a request
        (IDLE, BODY),  # a head parsed in the same read that answered the request before it
        (IDLE, DONE),  # closed while idle (keep-alive timeout, shutdown, EOF)
        (HEAD, BODY),  # a head was parsed
        (HEAD, IDLE),  # the responses are out and no request has begun
        (HEAD, DONE),  # refused, EOF, closed
        (BODY, HEAD),  # the request ended, the next may begin
        (BODY, DONE),  # refused (413, 408, malformed body), EOF, a request without keep-alive
    }
)
WRITING_TRANSITIONS: Final = frozenset(
    {
        (IDLE, DISPATCHED),  # a handler has a request
        (IDLE, LINGERING),  # a refusal was written with nothing in progress
        (IDLE, CLOSED),  # closed with nothing in progress
        (DISPATCHED, IDLE),  # the response is out
        (DISPATCHED, STREAMING),  # a streamed body's head is out
        (DISPATCHED, CLOSED),  # the connection went away, or closed after the response
        (STREAMING, DISPATCHED),  # the streamed body ended
        (STREAMING, CLOSED),  # the connection went away while streaming
        (LINGERING, CLOSED),  # the linger is over (or the connection went away)
    }
)

# -- why reading is paused (flags: reading resumes when none is left) -------------------
PAUSE_STREAM: Final = 1  # a handler is behind on a streamed request body
PAUSE_WRITE: Final = 2  # the client does not read its responses (transport paused writing)
PAUSE_HELD: Final = 4  # more input is held unparsed than input_high_water
PAUSE_DONE: Final = 8  # nothing more is read

# -- what a timeout check asks of the connection ----------------------------------------
KEEP: Final = 0  # nothing to do
CLOSE: Final = 1  # close without a word (keep-alive timeout)
REFUSE: Final = 2  # answer 408 Request Timeout and read nothing more
LINGER_OVER: Final = 3  # the linger is over: close the transport

# -- what reading should do (reading_change) ----------------------------------------------
UNCHANGED: Final = 0
PAUSE: Final = 1
RESUME: Final = 2


class Queued:
    """A pipelined request waiting for the responses before it, or a refusal (request None)."""

    __slots__ = ("request", "endpoint", "keep_alive", "status", "reason")

    def __init__(
        self,
        request: Request | None,
        endpoint: Endpoint | None,
        keep_alive: bool,
        status: int,
        reason: str,
    ) -> None:
        self.request = request
        self.endpoint = endpoint
        self.keep_alive = keep_alive
        self.status = status
        self.reason = reason


class ConnectionState:
    """One HTTP connection's lifecycle. Times are the caller's clock values (seconds)."""

    def __init__(
        self,
        head_timeout: float,
        body_timeout: float,
        keep_alive_timeout: float,
        min_body_rate: float,
        high_water: int,
    ) -> None:
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self.keep_alive_timeout = keep_alive_timeout
        # Seconds of time each body byte earns (1 / min_body_rate; 0: no minimum rate).
        self.seconds_per_byte = 1.0 / min_body_rate if min_body_rate > 0 else 0.0
        self.high_water = high_water
        self.reading = IDLE
        self.writing = IDLE
        self.paused = 0
        # Whether the transport's reading is paused now (what reading_change compares with).
        self.read_paused = False
        # When the connection times out in its current phase, and when the body being
        # received falls below min_body_rate (NEVER: no deadline).
        self.deadline = NEVER
        self.body_due = NEVER
        # The body being received goes to a handler as it arrives (RequestStream).
        self.body_streamed = False
        # The request being answered keeps the connection open (until decided otherwise).
        self.keep_alive = False
        # A pipelined request asked for 100 Continue: sent once the responses before it are out.
        self.continue_pending = False
        # An event stream is being written: shutdown ends it instead of waiting for it.
        self.event_stream = False
        self.pipeline: deque[Queued] = deque()

    # -- phases -----------------------------------------------------------------------

    def answering(self) -> bool:
        """A response is in progress or requests wait for their turn."""
        return self.writing != IDLE or bool(self.pipeline)

    def must_wait(self) -> bool:
        """A request that is complete now waits in the pipeline instead of running at once
        (also while the client does not read its responses)."""
        return self.writing != IDLE or bool(self.pipeline) or (self.paused & PAUSE_WRITE) != 0

    # -- receiving ----------------------------------------------------------------------

    def bytes_received(self, now: float) -> bool:
        """Input arrived; False when it is to be dropped (lingering)."""
        if self.writing == LINGERING:
            return False
        if self.reading == IDLE:
            self.reading = HEAD
            self.deadline = now + self.head_timeout
        return True

    def head_begun(self, now: float) -> None:
        """The parser is inside a head although a response made the connection idle during
        the same read: that head has the head timeout, not the (shorter) keep-alive one, or a
        client sending a head in pieces would be cut off."""
        if self.reading == IDLE:
            self.reading = HEAD
            self.deadline = now + self.head_timeout

    def head_received(self, streamed: bool) -> None:
        """A head was parsed; its body (if any) comes next."""
        if self.reading != DONE:
            self.reading = BODY
        self.body_streamed = streamed
        self.deadline = NEVER

    def start_body(self, now: float) -> None:
        """A body is expected from now on. Its bytes must come within body_idle_timeout of each
        other and, on average, at min_body_rate after a head start of body_idle_timeout: the
        deadline grows by 1/min_body_rate seconds per byte received (Apache's MinRate, Kestrel's
        MinRequestBodyDataRate), so a large upload at a normal pace is never cut off, while
        one trickled in to hold the connection is, however regular its bytes."""
        deadline = now + self.body_timeout
        self.deadline = deadline
        self.body_due = deadline if self.seconds_per_byte > 0 else NEVER

    def resume_body(self, now: float) -> None:
        """The body was not read for a while, and not for the client's doing (a handler behind
        on a streamed body, a handler busy with the request before it, 100 Continue not sent):
        it gets a fresh body_idle_timeout, and at least as long to make up its rate."""
        deadline = now + self.body_timeout
        self.deadline = deadline
        if deadline > self.body_due:
            self.body_due = deadline

    def wait_for_continue(self) -> None:
        """The client waits for 100 Continue before it sends the body: no deadline meanwhile."""
        self.deadline = NEVER

    def body_received(self, size: int, now: float) -> None:
        # Each byte earns time: a body trickled in below min_body_rate reaches its due time
        # even though every byte comes within body_idle_timeout of the one before.
        due = self.body_due + size * self.seconds_per_byte
        self.body_due = due
        idle = now + self.body_timeout
        self.deadline = due if due < idle else idle

    def request_ended(self, keep_alive: bool) -> None:
        """The request's body is complete. Without keep-alive, nothing after it is read."""
        self.continue_pending = False
        self.body_streamed = False
        if not keep_alive:
            self.end_input()
        elif self.reading == BODY:
            self.reading = HEAD

    def end_input(self) -> None:
        """Nothing more is read (refused input, no keep-alive, end of input, closing)."""
        self.reading = DONE
        self.body_streamed = False
        self.paused |= PAUSE_DONE

    # -- read pausing ---------------------------------------------------------------------

    def pause(self, reason: int) -> None:
        self.paused |= reason

    def unpause(self, reason: int) -> None:
        self.paused &= ~reason

    def reading_change(self, held: int) -> int:
        """Whether to pause or resume the transport's reading, given ``held`` bytes of input
        read but not parsed."""
        if self.writing >= LINGERING:
            return UNCHANGED
        if held > self.high_water:
            self.paused |= PAUSE_HELD
        else:
            self.paused &= ~PAUSE_HELD
        pause = self.paused != 0
        if pause == self.read_paused:
            return UNCHANGED
        self.read_paused = pause
        return PAUSE if pause else RESUME

    def may_feed(self) -> bool:
        """Held input may go to the parser now."""
        return (
            not self.pipeline
            and (self.paused & (PAUSE_STREAM | PAUSE_WRITE | PAUSE_DONE)) == 0
            and self.writing < LINGERING
        )

    # -- the pipeline -----------------------------------------------------------------------

    def queue(self, request: Request, endpoint: Endpoint, keep_alive: bool) -> None:
        self.pipeline.append(Queued(request, endpoint, keep_alive, 0, ""))
        # Not idle while requests wait, even if a response earlier in this read made it so:
        # the keep-alive timeout must not close a connection whose answers are still due.
        if self.reading == IDLE:
            self.reading = HEAD
        self.deadline = NEVER

    def queue_refusal(self, status: int, reason: str) -> None:
        self.pipeline.append(Queued(None, None, False, status, reason))

    # -- answering --------------------------------------------------------------------------

    def dispatched(self, keep_alive: bool) -> None:
        self.writing = DISPATCHED
        self.keep_alive = keep_alive
        self.deadline = NEVER

    def keep_alive_now(self, shutting_down: bool, answering_unread_body: bool) -> bool:
        """Whether the connection stays open after the response being written (and remember
        it). ``answering_unread_body``: the handler answers before its request's body is in."""
        keep = (
            self.keep_alive
            and not shutting_down
            # Once nothing more will be read, the last response closes.
            and not (self.reading == DONE and not self.pipeline)
            # The rest of the body is unread: the next request cannot be found.
            and not answering_unread_body
        )
        self.keep_alive = keep
        return keep

    def streaming(self, event_stream: bool) -> None:
        self.writing = STREAMING
        self.event_stream = event_stream

    def stream_ended(self) -> None:
        if self.writing == STREAMING:
            self.writing = DISPATCHED

    def finished(self) -> None:
        """The response is written (the protocol then closes, answers the next, or idles)."""
        if self.writing == DISPATCHED:
            self.writing = IDLE

    def became_idle(self, now: float) -> None:
        """Every response is out and no request has begun: the keep-alive deadline runs."""
        self.reading = IDLE
        self.deadline = now + self.keep_alive_timeout

    # -- closing ------------------------------------------------------------------------------

    def close(self, now: float, linger: bool) -> None:
        """Nothing more is written; with ``linger``, input is dropped for LINGER seconds first."""
        self.end_input()
        if linger:
            self.writing = LINGERING
            self.deadline = now + LINGER
            self.read_paused = False
        else:
            self.writing = CLOSED

    def lost(self) -> None:
        self.end_input()
        self.writing = CLOSED

    def handed_over(self) -> None:
        """The transport belongs to someone else now (a WebSocket), or was aborted."""
        self.writing = CLOSED

    def idle_for_shutdown(self) -> bool:
        """Nothing in progress: a graceful shutdown closes the connection at once."""
        return self.reading == IDLE and self.writing == IDLE and not self.pipeline

    # -- timeouts -------------------------------------------------------------------------------

    def check_timeout(self, now: float, held: int) -> int:
        """What the connection's deadline asks for at ``now`` (KEEP, CLOSE or REFUSE)."""
        if now < self.deadline:
            return KEEP
        writing = self.writing
        if writing == LINGERING:
            self.writing = CLOSED
            return LINGER_OVER
        if writing == CLOSED:
            return KEEP
        if writing != IDLE:
            # A handler waiting for a streamed body that stopped coming (not one that stopped
            # reading it: reading is paused then and the client is not to blame).
            if self.body_streamed and (self.paused & PAUSE_STREAM) == 0 and not held:
                return REFUSE
            return KEEP
        if self.reading == IDLE:
            return CLOSE  # keep-alive idle timeout: nothing to say
        return REFUSE
