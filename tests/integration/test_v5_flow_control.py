"""MQTT 5.0 section 4.9 and 3.1.2.11: Receive Maximum and Maximum Packet Size."""

import pytest

import mqtt_raw as m

V = m.V5


@pytest.mark.deviates_mosquitto(
    "MQTT-3.3.4-9: 2.0.11 sends two PUBLISH after one PUBACK, exceeding the client's Receive Maximum 2")
def test_MQTT_3_3_4_9_server_respects_client_receive_maximum(connected):
    sub = connected("rm", props={m.RECEIVE_MAXIMUM: 2})
    sub.subscribe("rm/t", 1)
    pub = connected("pub")
    for i in range(5):
        pub.publish("rm/t", b"%d" % i, qos=1)
    first = sub.receive(2, ack=False)
    sub.expect_nothing(0.5)  # MQTT-4.9.0-2: quota is zero
    sub.send(m.puback(first[0].pid))
    third = sub.receive(1, ack=False)[0]
    sub.expect_nothing(0.3)
    sub.send(m.puback(first[1].pid) + m.puback(third.pid))
    rest = sub.receive(2)
    assert [p.payload for p in first + [third] + rest] == [b"%d" % i for i in range(5)]


def test_MQTT_4_9_0_2_qos2_quota_returned_on_pubcomp_only(connected):
    sub = connected("rm2", props={m.RECEIVE_MAXIMUM: 1})
    sub.subscribe("rm/t", 2)
    pub = connected("pub")
    pub.publish("rm/t", b"a", qos=2)
    pub.publish("rm/t", b"b", qos=2)
    a = sub.expect_publish(payload=b"a")
    sub.send(m.pubrec(a.pid))
    rel = sub.expect(m.PUBREL)
    sub.expect_nothing(0.4)  # still unacknowledged until PUBCOMP
    sub.send(m.pubcomp(rel.pid))
    assert sub.receive(1)[0].payload == b"b"


def test_MQTT_4_9_0_2_pubrec_failure_returns_quota(connected):
    sub = connected("rm3", props={m.RECEIVE_MAXIMUM: 1})
    sub.subscribe("rm/t", 2)
    pub = connected("pub")
    pub.publish("rm/t", b"a", qos=2)
    pub.publish("rm/t", b"b", qos=2)
    a = sub.expect_publish(payload=b"a")
    sub.send(m.pubrec(a.pid, rc=m.RC_UNSPECIFIED_ERROR))
    assert sub.receive(1)[0].payload == b"b"


@pytest.mark.deviates_mosquitto("2.0.11 stops sending to the new connection: not all 60 arrive")
def test_MQTT_3_3_4_9_receive_maximum_of_a_takeover_bounds_what_was_in_flight(connected, mqtt):
    # A burst for a persistent session meets a takeover with a smaller Receive Maximum: the
    # QoS 2 messages let into the old connection's window, still waiting for the store, must
    # not all go out on the new one. The race is narrow: a few rounds.
    for round_ in range(8):
        cid, topic = "rm-takeover-%d" % round_, "rm/%d" % round_
        old = connected(cid, clean=False, props={m.SESSION_EXPIRY_INTERVAL: 300})
        old.subscribe(topic, 2)
        pub = connected("rm-pub-%d" % round_)
        burst = b"".join(m.publish(topic, b"m%d" % i, qos=2, pid=i + 1) for i in range(60))
        new = mqtt(V)
        pub.send(burst)
        new.send(m.connect(cid, version=V, clean=False,
                           props={m.SESSION_EXPIRY_INTERVAL: 300, m.RECEIVE_MAXIMUM: 2}))
        for _ in range(60):  # a broker may forward a QoS 2 message only on its PUBREL
            pub.send(m.pubrel(pub.expect(m.PUBREC).pid))
        got, open_ids, most_open = set(), set(), 0
        while len(got) < 60:
            pkt = new.recv(timeout=5)
            if pkt.type == m.PUBLISH:
                open_ids.add(pkt.pid)
                most_open = max(most_open, len(open_ids))
                got.add(bytes(pkt.payload))
                new.send(m.pubrec(pkt.pid))
            elif pkt.type == m.PUBREL:
                open_ids.discard(pkt.pid)
                new.send(m.pubcomp(pkt.pid))
        assert most_open <= 2, "round %d: %d PUBLISH packets in flight" % (round_, most_open)
        assert got == {b"m%d" % i for i in range(60)}
        for c in (old, pub, new):
            c.close()


def test_MQTT_3_3_4_10_other_packets_not_delayed_by_quota(connected):
    sub = connected("rm4", props={m.RECEIVE_MAXIMUM: 1})
    sub.subscribe("rm/t", 1)
    pub = connected("pub")
    pub.publish("rm/t", b"a", qos=1)
    pub.publish("rm/t", b"b", qos=1)
    a = sub.expect_publish(payload=b"a")
    sub.ping()                                   # MQTT-4.9.0-3
    sub.subscribe("rm/other", 0)
    sub.unsubscribe("rm/other")
    sub.send(m.puback(a.pid))
    sub.receive(1)


def test_MQTT_4_9_0_2_qos0_not_limited_by_receive_maximum(connected):
    sub = connected("rm5", props={m.RECEIVE_MAXIMUM: 1})
    sub.subscribe([("rm/q1", 1), ("rm/q0", 0)])
    pub = connected("pub")
    pub.publish("rm/q1", b"held", qos=1)
    pub.publish("rm/q1", b"queued", qos=1)
    held = sub.expect_publish(payload=b"held")
    for i in range(3):
        pub.publish("rm/q0", b"%d" % i)
    for i in range(3):
        assert sub.expect_publish(topic="rm/q0").qos == 0
    sub.send(m.puback(held.pid))
    sub.receive(1)


def flooder(connected, client_id):
    """A client about to exceed the server's Receive Maximum, and that maximum."""
    c = connected(client_id)
    limit = c.connack.prop(m.RECEIVE_MAXIMUM, 65535)
    if limit > 1024:
        pytest.skip("server Receive Maximum %d too large to exceed" % limit)
    return c, limit


@pytest.mark.deviates_mosquitto(
    "sec 3.3.4: 2.0.11 answers PUBREC 0x97 (quota exceeded) instead of DISCONNECT 0x93")
def test_client_exceeding_receive_maximum_disconnect_0x93(connected):
    c, limit = flooder(connected, "flood")
    # QoS 2 PUBLISH stays unacknowledged until we send PUBREL.
    data = b"".join(m.publish("flood/t", b"x", qos=2, pid=i + 1)
                    for i in range(limit + 1))
    c.send_quietly(data)
    got = c.expect_closed(timeout=5)
    assert [p.type for p in got[:-1]] == [m.PUBREC] * (len(got) - 1), got[-3:]
    assert got and got[-1].type == m.DISCONNECT, got[-3:]
    assert got[-1].rc == m.RC_RECEIVE_MAXIMUM_EXCEEDED


@pytest.mark.deviates_mosquitto(
    "sec 3.3.4: 2.0.11 acknowledges the QoS 1 PUBLISH past its Receive Maximum")
def test_receive_maximum_counts_qos1_with_qos2(connected):
    # Receive Maximum bounds "QoS 1 and QoS 2 PUBLISH packets" without PUBACK or PUBCOMP:
    # with every slot held by an unreleased QoS 2 flow, a QoS 1 PUBLISH exceeds it too.
    c, limit = flooder(connected, "mixed-flood")
    data = b"".join(m.publish("flood/t", b"x", qos=2, pid=i + 1) for i in range(limit))
    c.send_quietly(data + m.publish("flood/t", b"x", qos=1, pid=limit + 1))
    got = c.expect_closed(timeout=5)
    assert [p.type for p in got[:-1]] == [m.PUBREC] * limit, got[-3:]
    assert got[-1].type == m.DISCONNECT and got[-1].rc == m.RC_RECEIVE_MAXIMUM_EXCEEDED, got[-3:]


def test_MQTT_3_1_2_24_server_does_not_send_packets_above_client_maximum(connected):
    sub = connected("mps", props={m.MAXIMUM_PACKET_SIZE: 128})
    sub.subscribe("mps/t", 1)
    pub = connected("pub")
    pub.publish("mps/t", b"x" * 200, qos=1)
    pub.publish("mps/t", b"small", qos=1)
    got = m.drain(sub)
    assert [p.payload for p in got] == [b"small"], got
    assert all(len(p.raw) <= 128 for p in got)


def test_MQTT_3_1_2_25_oversized_message_discarded_as_if_sent(connected, mqtt):
    sub = connected("mps2", clean=False,
                    props={m.MAXIMUM_PACKET_SIZE: 100,
                           m.SESSION_EXPIRY_INTERVAL: 60})
    sub.subscribe("mps/t", 1)
    pub = connected("pub")
    pub.publish("mps/t", b"y" * 300, qos=1)
    pub.publish("mps/t", b"ok", qos=1)
    assert [p.payload for p in m.drain(sub)] == [b"ok"]
    sub.disconnect()
    # Not kept for later either: it was treated as sent.
    again = mqtt(V)
    again.connect("mps2", clean=False,
                  props={m.SESSION_EXPIRY_INTERVAL: 60})
    again.expect_nothing(0.5)


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.2-24: 2.0.11 sends a packet one byte larger than the client's Maximum Packet Size")
def test_MQTT_3_1_2_24_limit_counts_the_whole_packet(connected):
    sub = connected("mps3", props={m.MAXIMUM_PACKET_SIZE: 64})
    sub.subscribe("m/t", 0)
    pub = connected("pub")
    # Fixed header 2 + topic 2+3 + property length 1 = 8 bytes of overhead.
    pub.publish("m/t", b"a" * (64 - 8))
    pub.publish("m/t", b"b" * (64 - 7))
    got = m.drain(sub)
    assert [len(p.raw) for p in got] == [64], got


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.2-24: 2.0.11 sends a SUBACK larger than the client's Maximum Packet Size")
def test_MQTT_3_1_2_24_suback_above_client_maximum_ends_the_connection(connected):
    pub = connected("mps-retainer")
    pub.publish("s/0", b"kept", qos=1, retain=True)  # the SUBSCRIBE would deliver it
    c = connected("mps-suback", props={m.MAXIMUM_PACKET_SIZE: 30})
    c.send(m.subscribe(1, [("s/%d" % i, 0) for i in range(60)]))
    got = c.expect_closed()
    assert all(len(p.raw) <= 30 for p in got), got
    assert [p.rc for p in got if p.type == m.DISCONNECT] == [m.RC_PACKET_TOO_LARGE], got
    pub.ping()  # still serving


def test_packet_above_server_maximum_disconnect_0x95(connected):
    c = connected("big")
    limit = c.connack.prop(m.MAXIMUM_PACKET_SIZE)
    if limit is None or limit > 32 * 1024 * 1024:
        pytest.skip("server advertises no usable Maximum Packet Size")
    body = m.utf8("big/t") + m.encode_properties(None)
    remaining = limit  # total size = header + remaining > limit
    header = m.fixed_header(m.PUBLISH, 0, remaining)
    c.send_quietly(header + body + b"z" * 4096)
    c.expect_disconnect(m.RC_PACKET_TOO_LARGE)


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.4-3: 2.0.11 takes the session over from the connection there, then closes")
def test_MQTT_3_1_2_24_connack_above_client_maximum_closes_without_takeover(connected, mqtt):
    # The CONNACK's Receive Maximum, Topic Alias Maximum and Maximum Packet Size take more than
    # 8 bytes and none may be left out: no CONNACK can be sent, so the broker closes, and the
    # session's connection that is there stays.
    first = connected("mps-connack")
    c = mqtt(V)
    c.send(m.connect("mps-connack", version=V, props={m.MAXIMUM_PACKET_SIZE: 8}))
    assert c.expect_closed() == []
    first.ping()
