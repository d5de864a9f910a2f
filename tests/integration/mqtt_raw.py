"""A small raw-socket MQTT 3.1.1 / 5.0 client for conformance tests.

The point of this module is control: tests build exact bytes (including
broken ones), send them, and look at exactly what the server answers. Nothing
here retries, reorders or acknowledges behind the test's back.

Every socket read is bounded by a timeout, so a test can fail but never hang.
"""

import socket
import struct
import time

# ---------------------------------------------------------------- constants

V311 = 4
V5 = 5

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15

PACKET_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
    6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE",
    11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH",
}

DEFAULT_TIMEOUT = 3.0

# Property identifiers (MQTT 5.0 section 2.2.2.2) and their wire types.
PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
PROPERTY_TYPES = {
    PAYLOAD_FORMAT_INDICATOR: _BYTE, MESSAGE_EXPIRY_INTERVAL: _U32,
    CONTENT_TYPE: _STR, RESPONSE_TOPIC: _STR, CORRELATION_DATA: _BIN,
    SUBSCRIPTION_IDENTIFIER: _VARINT, SESSION_EXPIRY_INTERVAL: _U32,
    ASSIGNED_CLIENT_IDENTIFIER: _STR, SERVER_KEEP_ALIVE: _U16,
    AUTHENTICATION_METHOD: _STR, AUTHENTICATION_DATA: _BIN,
    REQUEST_PROBLEM_INFORMATION: _BYTE, WILL_DELAY_INTERVAL: _U32,
    REQUEST_RESPONSE_INFORMATION: _BYTE, RESPONSE_INFORMATION: _STR,
    SERVER_REFERENCE: _STR, REASON_STRING: _STR, RECEIVE_MAXIMUM: _U16,
    TOPIC_ALIAS_MAXIMUM: _U16, TOPIC_ALIAS: _U16, MAXIMUM_QOS: _BYTE,
    RETAIN_AVAILABLE: _BYTE, USER_PROPERTY: _PAIR, MAXIMUM_PACKET_SIZE: _U32,
    WILDCARD_SUBSCRIPTION_AVAILABLE: _BYTE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE: _BYTE,
    SHARED_SUBSCRIPTION_AVAILABLE: _BYTE,
}
# Properties that may legitimately appear more than once.
MULTI_PROPERTIES = {USER_PROPERTY, SUBSCRIPTION_IDENTIFIER}

# Reason codes used by the tests.
RC_SUCCESS = 0x00
RC_NORMAL_DISCONNECTION = 0x00
RC_GRANTED_QOS_1 = 0x01
RC_GRANTED_QOS_2 = 0x02
RC_DISCONNECT_WITH_WILL = 0x04
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_CONTINUE_AUTHENTICATION = 0x18
RC_UNSPECIFIED_ERROR = 0x80
RC_MALFORMED_PACKET = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_IMPLEMENTATION_SPECIFIC = 0x83
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_CLIENT_IDENTIFIER_NOT_VALID = 0x85
RC_NOT_AUTHORIZED = 0x87
RC_BAD_AUTHENTICATION_METHOD = 0x8C
RC_SERVER_SHUTTING_DOWN = 0x8B
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_IDENTIFIER_NOT_FOUND = 0x92
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_PAYLOAD_FORMAT_INVALID = 0x99
RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E

# MQTT 3.1.1 CONNACK return codes.
CONNACK_ACCEPTED = 0x00
CONNACK_UNACCEPTABLE_PROTOCOL = 0x01
CONNACK_IDENTIFIER_REJECTED = 0x02


class MQTTTestError(AssertionError):
    """Raised when the server does not behave as a test expects."""


class ConnectionClosed(MQTTTestError):
    """The server closed the connection while a packet was expected."""


# ---------------------------------------------------------------- encoding

def varint(value):
    """Variable Byte Integer, minimal encoding (MQTT 5.0 1.5.5)."""
    out = bytearray()
    while True:
        byte = value % 128
        value //= 128
        if value:
            byte |= 0x80
        out.append(byte)
        if not value:
            return bytes(out)


def u16(value):
    return struct.pack("!H", value)


def u32(value):
    return struct.pack("!I", value)


def utf8(text):
    """UTF-8 Encoded String: a str is encoded, bytes are sent unchanged."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return u16(len(data)) + data


def binary(data):
    data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return u16(len(data)) + data


def _normalize_props(props):
    """Accepts a dict {id: value} or a list of (id, value); returns a list."""
    if props is None:
        return []
    if isinstance(props, dict):
        items = []
        for key, value in props.items():
            if key in MULTI_PROPERTIES and isinstance(value, list):
                items.extend((key, v) for v in value)
            else:
                items.append((key, value))
        return items
    return list(props)


def encode_properties(props):
    """Property Length + properties. Order and duplicates are kept as given,
    so tests can send duplicated or misplaced properties on purpose."""
    body = bytearray()
    for pid, value in _normalize_props(props):
        body += varint(pid)
        kind = PROPERTY_TYPES[pid]
        if kind == _BYTE:
            body.append(value)
        elif kind == _U16:
            body += u16(value)
        elif kind == _U32:
            body += u32(value)
        elif kind == _VARINT:
            body += varint(value)
        elif kind == _STR:
            body += utf8(value)
        elif kind == _BIN:
            body += binary(value)
        else:
            body += utf8(value[0]) + utf8(value[1])
    return varint(len(body)) + bytes(body)


def fixed_header(ptype, flags, remaining_length):
    return bytes([(ptype << 4) | (flags & 0x0F)]) + varint(remaining_length)


def packet(ptype, flags, body):
    return fixed_header(ptype, flags, len(body)) + bytes(body)


# ---------------------------------------------------------------- builders

def connect(client_id="", version=V5, clean=True, keepalive=60, will=None,
            username=None, password=None, props=None,
            protocol_name="MQTT", protocol_level=None, reserved=0):
    """CONNECT. `will` is a dict: topic, payload, qos=0, retain=False,
    props=None (v5 Will Properties)."""
    flags = reserved & 1
    if clean:
        flags |= 0x02
    if will is not None:
        flags |= 0x04 | ((will.get("qos", 0) & 3) << 3)
        if will.get("retain"):
            flags |= 0x20
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    level = version if protocol_level is None else protocol_level
    body = utf8(protocol_name) + bytes([level, flags]) + u16(keepalive)
    if version == V5:
        body += encode_properties(props)
    body += utf8(client_id)
    if will is not None:
        if version == V5:
            body += encode_properties(will.get("props"))
        body += utf8(will["topic"]) + binary(will.get("payload", b""))
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += binary(password)
    return packet(CONNECT, 0, body)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
            props=None, version=V5):
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = utf8(topic)
    if qos > 0 or pid is not None:
        body += u16(pid if pid is not None else 1)
    if version == V5:
        body += encode_properties(props)
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    body += payload
    return packet(PUBLISH, flags, body)


def _ack(ptype, flags, pid, rc, props, version):
    body = u16(pid)
    if version == V5 and (rc not in (None, 0) or props):
        body += bytes([rc or 0])
        if props:
            body += encode_properties(props)
    return packet(ptype, flags, body)


def puback(pid, rc=None, props=None, version=V5):
    return _ack(PUBACK, 0, pid, rc, props, version)


def pubrec(pid, rc=None, props=None, version=V5):
    return _ack(PUBREC, 0, pid, rc, props, version)


def pubrel(pid, rc=None, props=None, version=V5):
    return _ack(PUBREL, 2, pid, rc, props, version)


def pubcomp(pid, rc=None, props=None, version=V5):
    return _ack(PUBCOMP, 0, pid, rc, props, version)


def sub_options(qos=0, no_local=False, retain_as_published=False,
                retain_handling=0):
    return (qos & 3) | (4 if no_local else 0) | (
        8 if retain_as_published else 0) | ((retain_handling & 3) << 4)


def subscribe(pid, topics, props=None, version=V5, flags=2):
    """topics: list of (filter, options byte) or (filter, qos)."""
    body = u16(pid)
    if version == V5:
        body += encode_properties(props)
    for topic, opts in topics:
        body += utf8(topic) + bytes([opts])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe(pid, topics, props=None, version=V5, flags=2):
    body = u16(pid)
    if version == V5:
        body += encode_properties(props)
    for topic in topics:
        body += utf8(topic)
    return packet(UNSUBSCRIBE, flags, body)


def pingreq():
    return bytes([PINGREQ << 4, 0])


def disconnect(rc=None, props=None, version=V5):
    if version != V5 or (rc in (None, 0) and not props):
        return bytes([DISCONNECT << 4, 0])
    body = bytes([rc or 0])
    if props:
        body += encode_properties(props)
    return packet(DISCONNECT, 0, body)


def auth(rc=0, props=None):
    body = bytes([rc]) + encode_properties(props)
    return packet(AUTH, 0, body)


# ---------------------------------------------------------------- parsing

class Packet:
    """A decoded packet received from the server.

    Fields present depend on the type: rc (CONNACK, acks, DISCONNECT, AUTH),
    session_present, pid, topic, payload, qos, retain, dup, reason_codes
    (SUBACK/UNSUBACK), props (dict: name -> value; user_property and
    subscription_identifier are lists), raw (the full packet bytes).
    """

    def __init__(self, ptype, flags, raw):
        self.type = ptype
        self.flags = flags
        self.raw = raw
        self.props = {}
        self.prop_list = []
        self.rc = None
        self.pid = None

    @property
    def name(self):
        return PACKET_NAMES.get(self.type, "TYPE%d" % self.type)

    def prop(self, pid, default=None):
        return self.props.get(pid, default)

    def __repr__(self):
        extra = []
        for key in ("rc", "session_present", "pid", "topic", "payload", "qos",
                    "retain", "dup", "reason_codes"):
            if getattr(self, key, None) is not None:
                extra.append("%s=%r" % (key, getattr(self, key)))
        if self.props:
            extra.append("props=%r" % (self.props,))
        return "<%s %s>" % (self.name, " ".join(extra))


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def left(self):
        return len(self.data) - self.pos

    def byte(self):
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u16(self):
        value = struct.unpack_from("!H", self.data, self.pos)[0]
        self.pos += 2
        return value

    def u32(self):
        value = struct.unpack_from("!I", self.data, self.pos)[0]
        self.pos += 4
        return value

    def varint(self):
        mult, value = 1, 0
        for _ in range(4):
            byte = self.byte()
            value += (byte & 0x7F) * mult
            if not byte & 0x80:
                return value
            mult *= 128
        raise MQTTTestError("malformed variable byte integer from server")

    def binary(self):
        length = self.u16()
        value = self.data[self.pos:self.pos + length]
        if len(value) != length:
            raise MQTTTestError("truncated string/binary from server")
        self.pos += length
        return bytes(value)

    def string(self):
        return self.binary().decode("utf-8")

    def rest(self):
        value = self.data[self.pos:]
        self.pos = len(self.data)
        return bytes(value)

    def properties(self):
        length = self.varint()
        end = self.pos + length
        items = []
        while self.pos < end:
            pid = self.varint()
            kind = PROPERTY_TYPES.get(pid)
            if kind is None:
                raise MQTTTestError("unknown property 0x%02x from server" % pid)
            if kind == _BYTE:
                value = self.byte()
            elif kind == _U16:
                value = self.u16()
            elif kind == _U32:
                value = self.u32()
            elif kind == _VARINT:
                value = self.varint()
            elif kind == _STR:
                value = self.string()
            elif kind == _BIN:
                value = self.binary()
            else:
                value = (self.string(), self.string())
            items.append((pid, value))
        if self.pos != end:
            raise MQTTTestError("property length mismatch from server")
        return items


def _props_dict(items):
    props = {}
    for pid, value in items:
        if pid in MULTI_PROPERTIES:
            props.setdefault(pid, []).append(value)
        elif pid in props:
            raise MQTTTestError("server sent property 0x%02x twice" % pid)
        else:
            props[pid] = value
    return props


def parse(ptype, flags, body, version, raw=b""):
    pkt = Packet(ptype, flags, raw)
    r = _Reader(body)

    def props():
        if version == V5 and r.left() > 0:
            pkt.prop_list = r.properties()
            pkt.props = _props_dict(pkt.prop_list)

    if ptype == CONNACK:
        ack_flags = r.byte()
        pkt.ack_flags = ack_flags
        pkt.session_present = bool(ack_flags & 1)
        pkt.rc = r.byte()
        props()
    elif ptype == PUBLISH:
        pkt.qos = (flags >> 1) & 3
        pkt.retain = bool(flags & 1)
        pkt.dup = bool(flags & 8)
        pkt.topic = r.string()
        if pkt.qos:
            pkt.pid = r.u16()
        if version == V5:
            pkt.prop_list = r.properties()
            pkt.props = _props_dict(pkt.prop_list)
        pkt.payload = r.rest()
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        pkt.pid = r.u16()
        pkt.rc = r.byte() if r.left() else 0
        props()
    elif ptype in (SUBACK, UNSUBACK):
        pkt.pid = r.u16()
        if version == V5:
            pkt.prop_list = r.properties()
            pkt.props = _props_dict(pkt.prop_list)
        pkt.reason_codes = list(r.rest())
    elif ptype in (DISCONNECT, AUTH):
        pkt.rc = r.byte() if r.left() else 0
        props()
    elif ptype == PINGRESP:
        pass
    else:
        raise MQTTTestError("server sent a packet of type %d" % ptype)
    if r.left():
        raise MQTTTestError("trailing bytes in %s from server" % pkt.name)
    return pkt


# ---------------------------------------------------------------- client

class Client:
    """One raw TCP connection to the broker under test."""

    def __init__(self, port, version=V5, host="127.0.0.1",
                 timeout=DEFAULT_TIMEOUT, receive_buffer=None):
        """receive_buffer: SO_RCVBUF before connecting (a client slow to take data)."""
        self.version = version
        self.timeout = timeout
        if receive_buffer is None:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed = False
        self.next_pid = 1
        self.connack = None

    # -- plumbing

    def send(self, data):
        self.sock.sendall(data)

    def send_quietly(self, data):
        """Sends, ignoring errors: for hostile input the server may already
        have closed the connection."""
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def abort(self):
        """Closes the TCP connection abruptly (RST), as a network failure."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pid(self):
        value = self.next_pid
        self.next_pid = self.next_pid % 65535 + 1
        return value

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            raise ConnectionClosed("connection closed by server")
        self.buf += data

    def _frame(self):
        """Returns (type, flags, body, raw) if a full packet is buffered."""
        if len(self.buf) < 2:
            return None
        mult, length, pos = 1, 0, 1
        while True:
            if pos >= len(self.buf):
                return None
            byte = self.buf[pos]
            length += (byte & 0x7F) * mult
            pos += 1
            if not byte & 0x80:
                break
            mult *= 128
            if pos > 4:
                raise MQTTTestError("malformed remaining length from server")
        if len(self.buf) < pos + length:
            return None
        raw = bytes(self.buf[:pos + length])
        del self.buf[:pos + length]
        return raw[0] >> 4, raw[0] & 0x0F, raw[pos:], raw

    def recv(self, timeout=None):
        """Next packet; raises socket.timeout or ConnectionClosed."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            frame = self._frame()
            if frame is not None:
                ptype, flags, body, raw = frame
                return parse(ptype, flags, body, self.version, raw)
            if self.closed:
                raise ConnectionClosed("connection closed by server")
            self._fill(deadline)

    def expect(self, ptype, timeout=None):
        """The next packet must be of type ptype."""
        try:
            pkt = self.recv(timeout)
        except socket.timeout:
            raise MQTTTestError("timed out waiting for %s" % PACKET_NAMES[ptype])
        except ConnectionClosed:
            raise ConnectionClosed("connection closed while waiting for %s"
                                   % PACKET_NAMES[ptype])
        if pkt.type != ptype:
            raise MQTTTestError("expected %s, got %r" % (PACKET_NAMES[ptype], pkt))
        return pkt

    def expect_publish(self, timeout=None, topic=None, payload=None):
        pkt = self.expect(PUBLISH, timeout)
        if topic is not None and pkt.topic != topic:
            raise MQTTTestError("expected topic %r, got %r" % (topic, pkt))
        if payload is not None:
            want = payload.encode() if isinstance(payload, str) else payload
            if pkt.payload != want:
                raise MQTTTestError("expected payload %r, got %r" % (want, pkt))
        return pkt

    def expect_nothing(self, timeout=1.0):
        """No packet may arrive within timeout (a closed connection is not
        'nothing' and fails too)."""
        try:
            pkt = self.recv(timeout)
        except socket.timeout:
            return
        raise MQTTTestError("expected no packet, got %r" % (pkt,))

    def expect_closed(self, timeout=None):
        """The server must close the connection within timeout. Returns the
        packets it sent before closing (tests check them)."""
        got = []
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            try:
                pkt = self.recv(max(0.0, deadline - time.monotonic()) or 0.001)
            except ConnectionClosed:
                return got
            except socket.timeout:
                raise MQTTTestError("connection not closed within %.1fs "
                                    "(received %r)" % (
                                        self.timeout if timeout is None
                                        else timeout, got))
            got.append(pkt)

    def expect_disconnect(self, rc=None, timeout=None):
        """v5: a DISCONNECT (with reason rc, which may be a tuple of allowed
        codes) followed by the close. v3.1.1: just the close with no packet."""
        got = self.expect_closed(timeout)
        if self.version != V5:
            if got:
                raise MQTTTestError("v3.1.1: expected a close without a "
                                    "packet, got %r" % (got,))
            return None
        disc = [p for p in got if p.type == DISCONNECT]
        if not disc:
            raise MQTTTestError("expected DISCONNECT before close, got %r" % (got,))
        if got[-1].type != DISCONNECT:
            raise MQTTTestError("packets after DISCONNECT: %r" % (got,))
        allowed = rc if isinstance(rc, (tuple, list, set)) else (rc,)
        if rc is not None and disc[-1].rc not in allowed:
            raise MQTTTestError("expected DISCONNECT 0x%s, got %r" % (
                "/0x".join("%02x" % a for a in allowed), disc[-1]))
        return disc[-1]

    # -- protocol helpers

    def connect(self, client_id="", expect_rc=0, **kw):
        kw.setdefault("version", self.version)
        self.send(connect(client_id, **kw))
        ack = self.expect(CONNACK)
        self.connack = ack
        if expect_rc is not None and ack.rc != expect_rc:
            raise MQTTTestError("CONNACK rc 0x%02x, expected 0x%02x: %r"
                                % (ack.rc, expect_rc, ack))
        return ack

    def publish(self, topic, payload=b"", qos=0, retain=False, props=None,
                pid=None, dup=False, wait=True):
        """Publishes and, if wait, completes the QoS 1/2 flow. Returns the
        PUBACK / PUBCOMP (or the PUBREC when it carries a failure code)."""
        if qos and pid is None:
            pid = self.pid()
        self.send(publish(topic, payload, qos, retain, dup, pid, props,
                          self.version))
        if not wait or qos == 0:
            return pid
        if qos == 1:
            ack = self.expect(PUBACK)
            if ack.pid != pid:
                raise MQTTTestError("PUBACK for %d, expected %d" % (ack.pid, pid))
            return ack
        rec = self.expect(PUBREC)
        if rec.pid != pid:
            raise MQTTTestError("PUBREC for %d, expected %d" % (rec.pid, pid))
        if rec.rc >= 0x80:
            return rec
        self.send(pubrel(pid, version=self.version))
        comp = self.expect(PUBCOMP)
        if comp.pid != pid:
            raise MQTTTestError("PUBCOMP for %d, expected %d" % (comp.pid, pid))
        return comp

    def subscribe(self, topic, qos=0, props=None, expect_codes=None, **opts):
        """Subscribes to one filter (or a list of (filter, options)).
        Returns the SUBACK."""
        pid = self.pid()
        if isinstance(topic, list):
            topics = topic
        else:
            topics = [(topic, sub_options(qos, **opts) if self.version == V5
                       else qos)]
        self.send(subscribe(pid, topics, props, self.version))
        ack = self.expect(SUBACK)
        if ack.pid != pid:
            raise MQTTTestError("SUBACK for %d, expected %d" % (ack.pid, pid))
        if expect_codes is None:
            expect_codes = [t[1] & 3 for t in topics]
        if expect_codes is not False and ack.reason_codes != expect_codes:
            raise MQTTTestError("SUBACK codes %r, expected %r"
                                % (ack.reason_codes, expect_codes))
        return ack

    def unsubscribe(self, topics, props=None):
        if isinstance(topics, str):
            topics = [topics]
        pid = self.pid()
        self.send(unsubscribe(pid, topics, props, self.version))
        ack = self.expect(UNSUBACK)
        if ack.pid != pid:
            raise MQTTTestError("UNSUBACK for %d, expected %d" % (ack.pid, pid))
        return ack

    def ack(self, pkt):
        """Completes the receiver side of a PUBLISH received from the server."""
        if pkt.qos == 1:
            self.send(puback(pkt.pid, version=self.version))
        elif pkt.qos == 2:
            self.send(pubrec(pkt.pid, version=self.version))
            rel = self.expect(PUBREL)
            if rel.pid != pkt.pid:
                raise MQTTTestError("PUBREL for %d, expected %d"
                                    % (rel.pid, pkt.pid))
            self.send(pubcomp(pkt.pid, version=self.version))

    def receive(self, count=1, timeout=None, ack=True):
        """Receives count PUBLISH packets, acknowledging them if ack."""
        got = []
        pending_rel = set()
        while len(got) < count or pending_rel:
            want = PUBLISH if len(got) < count else PUBREL
            try:
                pkt = self.recv(timeout)
            except socket.timeout:
                raise MQTTTestError("timed out waiting for %s (got %d of %d "
                                    "PUBLISH)" % (PACKET_NAMES[want],
                                                  len(got), count))
            if pkt.type == PUBLISH and len(got) < count:
                got.append(pkt)
                if ack and pkt.qos == 1:
                    self.send(puback(pkt.pid, version=self.version))
                elif ack and pkt.qos == 2:
                    self.send(pubrec(pkt.pid, version=self.version))
                    pending_rel.add(pkt.pid)
            elif pkt.type == PUBREL and pkt.pid in pending_rel:
                pending_rel.discard(pkt.pid)
                self.send(pubcomp(pkt.pid, version=self.version))
            else:
                raise MQTTTestError("expected %s, got %r"
                                    % (PACKET_NAMES[want], pkt))
        return got

    def ping(self):
        self.send(pingreq())
        return self.expect(PINGRESP)

    def disconnect(self, rc=None, props=None):
        """Sends DISCONNECT, then closes once the broker has closed its side (at most 2 s):
        the broker has then handled it, so a message published next by another connection
        cannot race it to this session (it would be sent here and held, unacknowledged)."""
        self.send_quietly(disconnect(rc, props, self.version))
        try:
            self.sock.settimeout(2.0)
            while self.sock.recv(4096):
                pass
        except OSError:
            pass
        self.close()


def wait_until(predicate, timeout=3.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def drain(client, timeout=0.5, ack=True):
    """Collects PUBLISH packets until none arrives for timeout seconds."""
    got = []
    while True:
        try:
            pkt = client.recv(timeout)
        except (socket.timeout, ConnectionClosed):
            return got
        if pkt.type == PUBLISH:
            got.append(pkt)
            if ack and pkt.qos == 1:
                client.send(puback(pkt.pid, version=client.version))
            elif ack and pkt.qos == 2:
                client.send(pubrec(pkt.pid, version=client.version))
        elif pkt.type == PUBREL and ack:
            client.send(pubcomp(pkt.pid, version=client.version))
        else:
            raise MQTTTestError("unexpected %r" % (pkt,))


def expect_refused_connack(client, rc):
    """After a bad CONNECT: a CONNACK with reason rc (or one of a tuple),
    Session Present 0, then the close (MQTT 5.0 3.2.2-6, 3.2.2-7)."""
    got = client.expect_closed()
    allowed = rc if isinstance(rc, (tuple, list, set)) else (rc,)
    if len(got) != 1 or got[0].type != CONNACK:
        raise MQTTTestError("expected one CONNACK then close, got %r" % (got,))
    if got[0].rc not in allowed:
        raise MQTTTestError("CONNACK rc 0x%02x, expected %r" % (got[0].rc,
                                                                  allowed))
    if got[0].session_present:
        raise MQTTTestError("refused CONNACK has Session Present 1")
    return got[0]
