"""MQTT 5.0 section 4.8.2: shared subscriptions."""

import pytest

import mqtt_raw as m

V = m.V5


def members(connected, n=2, qos=1, flt="$share/g/sh/t", version=V):
    out = []
    for i in range(n):
        c = connected("member%d" % i, version)
        c.subscribe(flt, qos)
        out.append(c)
    return out


def test_MQTT_4_8_2_1_each_message_to_one_member(connected):
    a, b = members(connected)
    pub = connected("pub")
    for i in range(20):
        pub.publish("sh/t", b"%d" % i, qos=1)
    got_a = m.drain(a)
    got_b = m.drain(b)
    payloads = sorted(int(p.payload) for p in got_a + got_b)
    assert payloads == list(range(20)), (got_a, got_b)
    assert got_a and got_b, "all messages went to one member"


def test_v311_client_can_share_with_v5_client(connected):
    a = connected("v5member")
    a.subscribe("$share/g/sh/t", 1)
    b = connected("v3member", m.V311)
    b.subscribe("$share/g/sh/t", 1)
    pub = connected("pub")
    for i in range(20):
        pub.publish("sh/t", b"%d" % i, qos=1)
    got = m.drain(a) + m.drain(b)
    assert sorted(int(p.payload) for p in got) == list(range(20))


def test_different_share_groups_each_get_a_copy(connected):
    a = connected("a")
    a.subscribe("$share/g1/sh/t", 1)
    b = connected("b")
    b.subscribe("$share/g2/sh/t", 1)
    c = connected("c")
    c.subscribe("sh/t", 1)
    connected("pub").publish("sh/t", b"x", qos=1)
    for s in (a, b, c):
        assert [p.payload for p in m.drain(s)] == [b"x"]


def test_MQTT_4_8_2_3_member_granted_qos_respected(connected):
    (a,) = members(connected, 1, qos=0)
    connected("pub").publish("sh/t", b"x", qos=2)
    assert a.expect_publish().qos == 0


def test_MQTT_4_8_2_1_wildcard_filter_in_share(connected):
    (a,) = members(connected, 1, flt="$share/g/sh/#")
    connected("pub").publish("sh/deep/t", b"x", qos=1)
    assert a.receive(1)[0].topic == "sh/deep/t"


INVALID_SHARES = [
    pytest.param("$share/g", marks=pytest.mark.deviates_mosquitto(
        "MQTT-4.8.2-2: 2.0.11 accepts '$share/g' (no '/' and filter)")),
    pytest.param("$share//t", marks=pytest.mark.deviates_mosquitto(
        "MQTT-4.8.2-1: 2.0.11 accepts an empty ShareName")),
    "$share/a+b/t", "$share/a#/t",
    pytest.param("$share/g/", marks=pytest.mark.deviates_mosquitto(
        "MQTT-4.8.2-2: 2.0.11 accepts an empty Topic Filter after the ShareName")),
]


@pytest.mark.parametrize("flt", INVALID_SHARES)
def test_MQTT_4_8_2_2_invalid_share_name_refused(connected, flt):
    c = connected("bad")
    c.send_quietly(m.subscribe(1, [(flt, 0)]))
    try:
        ack = c.recv()
    except m.ConnectionClosed:
        pytest.fail("closed without SUBACK or DISCONNECT")
    if ack.type == m.SUBACK:
        assert ack.reason_codes == [m.RC_TOPIC_FILTER_INVALID], ack
    else:
        assert ack.type == m.DISCONNECT and ack.rc in (
            m.RC_MALFORMED_PACKET, m.RC_PROTOCOL_ERROR,
            m.RC_TOPIC_FILTER_INVALID), ack


@pytest.mark.deviates_mosquitto(
    "MQTT-3.8.3-4: 2.0.11 accepts No Local on a shared subscription")
def test_MQTT_3_8_3_4_no_local_on_shared_subscription_protocol_error(connected):
    c = connected("nl")
    c.send(m.subscribe(1, [("$share/g/sh/t", m.sub_options(1, no_local=True))]))
    c.expect_disconnect(m.RC_PROTOCOL_ERROR)


def test_unsubscribe_shared(connected):
    (a,) = members(connected, 1)
    assert a.unsubscribe("$share/g/sh/t").reason_codes == [0]
    connected("pub").publish("sh/t", b"x", qos=1)
    a.expect_nothing(0.4)


@pytest.mark.deviates_mosquitto(
    "sec 4.8.2 (SHOULD): 2.0.11 does not re-send a message left unacknowledged "
    "by a member whose session ended to another member")
def test_unacked_message_redelivered_to_other_member_when_session_ends(connected):
    a = connected("first")
    a.subscribe("$share/g/sh/t", 1)
    pub = connected("pub")
    pub.publish("sh/t", b"orphan", qos=1)
    p = a.expect_publish(payload=b"orphan")
    b = connected("second")
    b.subscribe("$share/g/sh/t", 1)
    a.abort()   # Session Expiry 0: the session ends with the connection
    got = b.receive(1, timeout=5)[0]
    assert got.payload == b"orphan"


@pytest.mark.deviates_mosquitto("2.0.11 may pick the offline member of g1")
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_message_of_a_leaving_member_goes_back_to_its_own_group(connected, qos):
    # X is in two groups whose filters both match f/a; its copy from g2 waits while it is
    # offline. When its session ends, that copy belongs to g2, not to g1, whose own copy
    # already went to S: S must not get the message twice.
    x = connected("x", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 300})
    x.subscribe("$share/g2/f/+", qos)
    x.subscribe("$share/g1/f/#", qos)
    x.disconnect()
    s = connected("s")
    s.subscribe("$share/g1/f/#", qos)
    pub = connected("pub")
    pub.publish("f/a", b"once", qos=max(qos, 1))
    s.expect_publish(payload=b"once")  # g1 picks its connected member
    connected("x", clean=True)  # Clean Start ends X's session and hands its copies on
    got = m.drain(s, timeout=1.0)
    assert [p.payload for p in got] == [], got


def test_shared_and_plain_subscription_in_one_session(connected):
    c = connected("both")
    c.subscribe("$share/g/sh/t", 1, props={m.SUBSCRIPTION_IDENTIFIER: 1})
    c.subscribe("sh/t", 1, props={m.SUBSCRIPTION_IDENTIFIER: 2})
    connected("pub").publish("sh/t", b"x", qos=1)
    got = m.drain(c)
    ids = sorted(i for p in got for i in p.prop(m.SUBSCRIPTION_IDENTIFIER, []))
    assert ids == [1, 2], got
