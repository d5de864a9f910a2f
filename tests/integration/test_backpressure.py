"""Publisher back-pressure (docs/architecture.md): a subscriber that does not read slows its
publisher through TCP flow control instead of the broker dropping its QoS 0 messages."""

import errno
import threading
import time

import pytest

import mqtt_raw as m

PAYLOAD = b"x" * 1000


@pytest.mark.deviates_mosquitto("mosquitto drops QoS 0 for a subscriber that does not read")
def test_qos0_to_a_reader_that_stalls_is_held_not_dropped(connected):
    sub = connected("bp-sub")
    sub.subscribe("bp/t", 0)
    pub = connected("bp-pub")
    pub.sock.setblocking(False)

    # Publish until the broker stops reading us (our writes block for a while), well before
    # max_publisher_pause_ms (2 s) would give up on the subscriber.
    frame = m.publish("bp/t", PAYLOAD)
    sent = 0
    pending = b""
    blocked_since = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not pending:
            pending = frame
        try:
            n = pub.sock.send(pending)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise
            n = 0
        if n:
            blocked_since = None
            pending = pending[n:]
            if not pending:
                sent += 1
            continue
        blocked_since = blocked_since or time.monotonic()
        if time.monotonic() - blocked_since > 0.5:
            break
        time.sleep(0.01)
    assert blocked_since is not None, "the broker never pushed back"
    assert sent > 100

    # The subscriber reads again: the publisher is released and every message arrives. The
    # frame we were in the middle of is finished meanwhile (it can only go once we read).
    pub.sock.setblocking(True)
    finisher = None
    if pending:
        finisher = threading.Thread(target=pub.sock.sendall, args=(pending,))
        finisher.start()
        sent += 1
    got = sub.receive(sent, timeout=20, ack=False)
    if finisher:
        finisher.join(5)
    assert all(p.payload == PAYLOAD for p in got)
    sub.expect_nothing(0.3)
    pub.ping()  # the publisher is read again
