"""Publisher back-pressure (docs/architecture.md): a subscriber that does not read slows its
publisher through TCP flow control instead of the broker dropping its QoS 0 messages."""

import errno
import os
import threading
import time

import pytest

import mqtt_raw as m

PAYLOAD = b"x" * 1000


def send_until_pushed_back(sock, unit, quiet, limit, max_bytes=None):
    """Sends `unit` over and over on the non-blocking `sock` until the broker stops reading
    (nothing goes for `quiet` seconds), `limit` seconds pass or `max_bytes` went. Returns the
    bytes sent, the rest of the unit in progress, and whether the broker pushed back."""
    sent = 0
    pending = b""
    blocked_since = None
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and (max_bytes is None or sent < max_bytes):
        pending = pending or unit
        try:
            n = sock.send(pending)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise
            n = 0
        if n:
            sent += n
            pending = pending[n:]
            blocked_since = None
            continue
        blocked_since = blocked_since or time.monotonic()
        if time.monotonic() - blocked_since > quiet:
            return sent, pending, True
        time.sleep(0.01)
    return sent, pending, False


@pytest.mark.deviates_mosquitto("mosquitto drops QoS 0 for a subscriber that does not read")
def test_qos0_to_a_reader_that_stalls_is_held_not_dropped(connected):
    sub = connected("bp-sub")
    sub.subscribe("bp/t", 0)
    pub = connected("bp-pub")
    pub.sock.setblocking(False)

    # Publish until the broker stops reading us (our writes block for a while), well before
    # max_publisher_pause_ms (2 s) would give up on the subscriber.
    frame = m.publish("bp/t", PAYLOAD)
    sent_bytes, pending, blocked = send_until_pushed_back(pub.sock, frame, quiet=0.5, limit=30)
    assert blocked, "the broker never pushed back"
    sent = sent_bytes // len(frame)
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


def test_one_slow_subscriber_does_not_slow_a_broadcast_to_the_others(broker, connected):
    # A vehicle on a poor link takes 100 KB/s of a 20 MB broadcast: it keeps making progress,
    # so it is never judged stuck, yet the other receivers must not go at its pace (minutes);
    # its own queue bounds apply to it instead.
    fast = [connected("bc-fast%d" % i) for i in range(3)]
    for c in fast:
        c.subscribe("bc/t", 0)
    slow = m.Client(broker.port, receive_buffer=16384)
    slow.connect("bc-slow")
    slow.subscribe("bc/t", 0)
    stop = threading.Event()

    def read_slowly():
        for _ in range(600):  # at most 60 s
            if stop.wait(0.1):
                return
            try:
                slow.sock.recv(10000)
            except OSError:
                return

    count = 20000
    results = {}

    def read_all(c):
        try:
            got = c.receive(count, timeout=20, ack=False)
            results[c] = sum(p.payload == PAYLOAD for p in got)
        except m.MQTTTestError as e:
            results[c] = str(e)

    readers = [threading.Thread(target=read_slowly)] + [threading.Thread(target=read_all, args=(c,)) for c in fast]
    for t in readers:
        t.start()
    try:
        pub = connected("bc-pub")
        frame = m.publish("bc/t", PAYLOAD)
        for _ in range(count // 100):
            pub.send(frame * 100)
        pub.ping()
        for t in readers[1:]:
            t.join(30)
        assert [results.get(c) for c in fast] == [count] * len(fast)
    finally:
        stop.set()
        readers[0].join(5)
        slow.close()


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.deviates_mosquitto("mosquitto buffers every answer of a client that does not read")
@pytest.mark.parametrize("request_kind", ["pingreq", "qos1"])
def test_client_that_does_not_read_its_answers_is_not_read_either(broker, connected, request_kind):
    # PINGREQs or QoS 1 PUBLISHes sent flat out, never reading a PINGRESP or PUBACK: the broker
    # stops reading such a client once its unread answers pass max_pending_output_bytes, so
    # memory stays bounded; once the client reads, it is served again.
    c = connected("deaf-" + request_kind, m.V311)
    unit = m.pingreq() if request_kind == "pingreq" else \
        m.publish("deaf/t", b"", qos=1, pid=1, version=m.V311)
    batch = unit * 4096
    rss_before = _rss_kib(broker.proc.pid)
    c.sock.setblocking(False)
    sent, pending, blocked = send_until_pushed_back(c.sock, batch, quiet=1.0, limit=60,
                                                    max_bytes=400_000_000)
    assert blocked, "the broker read %d bytes of requests without pause" % sent
    grown_mib = (_rss_kib(broker.proc.pid) - rss_before) / 1024
    # Under AddressSanitizer freed memory waits in its quarantine (256 MiB by default).
    allowed_mib = 64 + (256 if "ASAN_OPTIONS" in os.environ else 0)
    assert grown_mib < allowed_mib, "broker grew %.0f MiB for %d bytes of requests" % (grown_mib, sent)
    # Others are still served meanwhile.
    connected("bystander").ping()
    # Read every answer (the broker then reads the rest of our requests and answers them too)
    # while sending what is left.
    c.sock.setblocking(True)
    c.sock.settimeout(10)
    answer_size = 2 if request_kind == "pingreq" else 4
    want = (sent + len(pending)) // len(unit) * answer_size
    got = [0]

    def read_answers():
        while got[0] < want:
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                return
            got[0] += len(chunk)

    reader = threading.Thread(target=read_answers)
    reader.start()
    if pending:
        c.sock.sendall(pending)
    reader.join(60)
    assert got[0] == want, "%d of %d answer bytes" % (got[0], want)
