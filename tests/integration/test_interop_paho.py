"""Interop with the Eclipse Paho Python client (1.6.1), MQTT 3.1.1 and 5.0."""

import queue
import threading

import pytest

paho = pytest.importorskip("paho.mqtt.client")
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

WAIT = 5.0
VERSIONS = pytest.mark.parametrize(
    "proto", [paho.MQTTv311, paho.MQTTv5], ids=["v311", "v5"])


class Paho:
    """A paho client running its network loop in a thread, with queues."""

    def __init__(self, port, cid, proto, clean=True, will=None,
                 session_expiry=None):
        self.proto = proto
        if proto == paho.MQTTv5:
            self.c = paho.Client(client_id=cid, protocol=proto)
        else:
            self.c = paho.Client(client_id=cid, clean_session=clean,
                                 protocol=proto)
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.subscribed = queue.Queue()
        self.published = queue.Queue()
        self.connack = None
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)
        self.c.on_subscribe = lambda c, u, mid, *a: self.subscribed.put(mid)
        self.c.on_publish = lambda c, u, mid: self.published.put(mid)
        self.c.on_connect = self._on_connect
        if will:
            self.c.will_set(*will)
        kw = {}
        if proto == paho.MQTTv5:
            kw["clean_start"] = clean
            if session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = session_expiry
                kw["properties"] = props
        self.c.connect("127.0.0.1", port, keepalive=30, **kw)
        self.c.loop_start()
        assert self.connected.wait(WAIT), "paho did not connect"

    def _on_connect(self, c, u, flags, rc, *props):
        self.connack = (flags, rc)
        self.connected.set()

    def subscribe(self, topic, qos):
        _, mid = self.c.subscribe(topic, qos)
        assert self.subscribed.get(timeout=WAIT) == mid

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published()

    def next(self):
        return self.messages.get(timeout=WAIT)

    def nothing(self, timeout=0.5):
        with pytest.raises(queue.Empty):
            self.messages.get(timeout=timeout)

    def stop(self, graceful=True):
        if graceful:
            self.c.disconnect()
        else:
            self.c.socket().close()
        self.c.loop_stop()


@pytest.fixture
def clients(broker):
    made = []

    def make(cid, proto, **kw):
        c = Paho(broker.port, cid, proto, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            c.stop()
        except Exception:
            pass


@VERSIONS
def test_connect_subscribe_publish_all_qos(clients, proto):
    sub = clients("sub", proto)
    sub.subscribe("paho/t", 2)
    pub = clients("pub", proto)
    for qos in (0, 1, 2):
        pub.publish("paho/t", b"q%d" % qos, qos=qos)
        msg = sub.next()
        assert msg.payload == b"q%d" % qos and msg.qos == qos


@VERSIONS
def test_retained(clients, proto):
    pub = clients("pub", proto)
    pub.publish("paho/r", b"kept", qos=1, retain=True)
    sub = clients("sub", proto)
    sub.subscribe("paho/#", 1)
    msg = sub.next()
    assert msg.retain and msg.payload == b"kept"


@VERSIONS
def test_will_on_abnormal_close(clients, proto):
    w = clients("watch", proto)
    w.subscribe("paho/will", 1)
    dying = clients("dying", proto, will=("paho/will", b"bye", 1, False))
    dying.stop(graceful=False)
    assert w.next().payload == b"bye"


@VERSIONS
def test_no_will_on_disconnect(clients, proto):
    w = clients("watch", proto)
    w.subscribe("paho/will", 1)
    polite = clients("polite", proto, will=("paho/will", b"bye", 1, False))
    polite.stop()
    w.nothing(1.0)


@VERSIONS
def test_persistent_session_offline_queue(clients, proto):
    kw = {"clean": False}
    if proto == paho.MQTTv5:
        kw["session_expiry"] = 60
    sub = clients("offline", proto, **kw)
    sub.subscribe("paho/q", 1)
    sub.stop()
    pub = clients("pub", proto)
    for i in range(5):
        pub.publish("paho/q", b"%d" % i, qos=1)
    back = clients("offline", proto, **kw)
    assert back.connack[0]["session present"] == 1
    assert [back.next().payload for _ in range(5)] == [b"%d" % i for i in range(5)]


def test_v5_user_properties_between_paho_clients(clients):
    sub = clients("sub", paho.MQTTv5)
    sub.subscribe("paho/p", 1)
    pub = clients("pub", paho.MQTTv5)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("a", "1"), ("b", "2")]
    props.ResponseTopic = "paho/resp"
    info = pub.c.publish("paho/p", b"x", qos=1, properties=props)
    info.wait_for_publish(timeout=WAIT)
    msg = sub.next()
    assert msg.properties.UserProperty == [("a", "1"), ("b", "2")]
    assert msg.properties.ResponseTopic == "paho/resp"


def test_v311_and_v5_clients_interoperate(clients):
    sub3 = clients("sub3", paho.MQTTv311)
    sub3.subscribe("paho/x", 2)
    sub5 = clients("sub5", paho.MQTTv5)
    sub5.subscribe("paho/x", 2)
    clients("pub5", paho.MQTTv5).publish("paho/x", b"from5", qos=2)
    assert sub3.next().payload == b"from5"
    assert sub5.next().payload == b"from5"
