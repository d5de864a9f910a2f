"""MQTT 3.1.1 sections 3.3-3.7 and 4.3-4.6: PUBLISH and the QoS flows."""

import pytest

import mqtt_raw as m

V = m.V311


def pair(connected, sub_qos=2, topic="pub/t", sub_id="sub", pub_id="pub"):
    sub = connected(sub_id, V)
    sub.subscribe(topic, sub_qos)
    pub = connected(pub_id, V)
    return sub, pub


def test_MQTT_3_3_1_2_qos0_delivered_with_dup_0(connected):
    sub, pub = pair(connected, 0)
    pub.publish("pub/t", b"q0")
    p = sub.expect_publish(topic="pub/t", payload=b"q0")
    assert p.qos == 0 and p.dup is False and p.pid is None


def test_MQTT_3_3_1_3_incoming_dup_not_propagated(connected):
    sub, pub = pair(connected, 1)
    pub.publish("pub/t", b"dup", qos=1, dup=True)
    p = sub.expect_publish(payload=b"dup")
    assert p.dup is False


def test_MQTT_3_3_2_3_topic_name_matches_filter(connected):
    sub = connected("sub", V)
    sub.subscribe("pub/+/x", 0)
    pub = connected("pub", V)
    pub.publish("pub/abc/x", b"1")
    p = sub.expect_publish()
    assert p.topic == "pub/abc/x"


def test_MQTT_3_3_4_1_qos0_gets_no_response(connected):
    c = connected("q0", V)
    c.publish("pub/none", b"x", qos=0)
    c.expect_nothing(0.5)


def test_MQTT_3_3_4_1_qos1_gets_puback(connected):
    c = connected("q1", V)
    ack = c.publish("pub/none", b"x", qos=1, pid=77)
    assert ack.type == m.PUBACK and ack.pid == 77
    assert ack.raw == bytes([0x40, 2, 0, 77])


def test_MQTT_3_3_4_1_qos2_gets_pubrec_then_pubcomp(connected):
    c = connected("q2", V)
    c.send(m.publish("pub/none", b"x", qos=2, pid=78, version=V))
    rec = c.expect(m.PUBREC)
    assert rec.pid == 78 and rec.raw == bytes([0x50, 2, 0, 78])
    c.send(m.pubrel(78, version=V))
    comp = c.expect(m.PUBCOMP)
    assert comp.pid == 78 and comp.raw == bytes([0x70, 2, 0, 78])


def test_MQTT_3_3_5_1_overlapping_subscriptions_max_qos(connected):
    sub = connected("sub", V)
    sub.subscribe([("pub/#", 0), ("pub/t", 2), ("+/t", 1)])
    pub = connected("pub", V)
    pub.publish("pub/t", b"x", qos=2)
    got = [sub.expect_publish(payload=b"x")]
    sub.ack(got[0])
    # One copy per subscription is allowed too; collect whatever else comes.
    while True:
        try:
            p = sub.recv(0.5)
        except Exception:
            break
        got.append(p)
        sub.ack(p)
    assert max(p.qos for p in got) == 2, got
    assert len(got) in (1, 3), got


def test_MQTT_3_8_4_6_delivered_at_min_of_published_and_granted_qos(connected):
    sub = connected("sub", V)
    sub.subscribe([("g/0", 0), ("g/1", 1), ("g/2", 2)])
    pub = connected("pub", V)
    cases = [("g/0", 2, 0), ("g/1", 2, 1), ("g/2", 2, 2), ("g/2", 1, 1),
             ("g/2", 0, 0), ("g/1", 0, 0)]
    for topic, pub_qos, want in cases:
        pub.publish(topic, b"%d" % pub_qos, qos=pub_qos)
        p = sub.expect_publish(topic=topic)
        assert p.qos == want, (topic, pub_qos, p)
        sub.ack(p)


def test_MQTT_2_3_1_1_server_publish_has_nonzero_packet_identifier(connected):
    sub, pub = pair(connected, 2)
    for qos in (1, 2):
        pub.publish("pub/t", b"x", qos=qos)
        p = sub.expect_publish()
        assert p.qos == qos and p.pid and 1 <= p.pid <= 65535
        sub.ack(p)


def test_MQTT_4_3_2_1_unacked_qos1_use_distinct_packet_identifiers(connected):
    sub, pub = pair(connected, 1)
    for i in range(5):
        pub.publish("pub/t", b"%d" % i, qos=1)
    got = sub.receive(5, ack=False)
    pids = [p.pid for p in got]
    assert len(set(pids)) == 5 and 0 not in pids, pids
    assert all(p.dup is False and p.qos == 1 for p in got)
    for p in got:
        sub.ack(p)


def test_MQTT_4_3_2_2_publish_after_puback_with_same_pid_is_new(connected):
    sub, pub = pair(connected, 1)
    pub.publish("pub/t", b"one", qos=1, pid=5)
    pub.publish("pub/t", b"two", qos=1, pid=5, dup=True)
    a, b = sub.receive(2)
    assert (a.payload, b.payload) == (b"one", b"two")


def test_MQTT_4_3_3_1_server_qos2_sender_flow(connected):
    sub, pub = pair(connected, 2)
    pub.publish("pub/t", b"x", qos=2)
    p = sub.expect_publish()
    assert p.qos == 2 and p.dup is False and p.pid
    sub.send(m.pubrec(p.pid, version=V))
    rel = sub.expect(m.PUBREL)
    assert rel.pid == p.pid and rel.flags == 2
    sub.send(m.pubcomp(p.pid, version=V))
    sub.expect_nothing(0.5)


def test_MQTT_4_3_3_2_duplicate_qos2_publish_not_delivered_twice(connected):
    sub, pub = pair(connected, 2)
    pub.send(m.publish("pub/t", b"once", qos=2, pid=9, version=V))
    assert pub.expect(m.PUBREC).pid == 9
    pub.send(m.publish("pub/t", b"once", qos=2, pid=9, dup=True, version=V))
    assert pub.expect(m.PUBREC).pid == 9
    pub.send(m.pubrel(9, version=V))
    assert pub.expect(m.PUBCOMP).pid == 9
    sub.receive(1)
    sub.expect_nothing(0.5)
    # After PUBCOMP the identifier starts a new publication.
    pub.publish("pub/t", b"again", qos=2, pid=9)
    sub.expect_publish(payload=b"again")


@pytest.mark.deviates_mosquitto(
    "MQTT-4.3.3-2: 2.0.11 answers all 500 PUBRECs and PUBCOMPs but delivers only the first 20 "
    "of those messages")
def test_MQTT_4_3_3_2_many_qos2_publishes_before_any_pubrel(connected):
    # 3.1.1 has no Receive Maximum: every PUBLISH gets its PUBREC, however many wait for PUBREL.
    sub, pub = pair(connected, 1)
    count = 500
    pub.send(b"".join(m.publish("pub/t", b"%d" % i, qos=2, pid=i + 1, version=V)
                      for i in range(count)))
    recs = [pub.expect(m.PUBREC).pid for _ in range(count)]
    assert recs == list(range(1, count + 1))
    pub.send(b"".join(m.pubrel(i + 1, version=V) for i in range(count)))
    assert [pub.expect(m.PUBCOMP).pid for _ in range(count)] == recs
    assert [p.payload for p in sub.receive(count)] == [b"%d" % i for i in range(count)]


def test_MQTT_4_3_3_2_pubrel_answered_with_pubcomp(connected):
    c = connected("rel", V)
    c.send(m.pubrel(4242, version=V))
    comp = c.expect(m.PUBCOMP)
    assert comp.pid == 4242


def test_MQTT_4_6_0_6_ordered_delivery_per_qos(connected):
    sub, pub = pair(connected, 2)
    for qos in (0, 1, 2):
        for i in range(20):
            pub.publish("pub/t", b"%d-%d" % (qos, i), qos=qos)
        got = sub.receive(20)
        assert [p.payload for p in got] == [b"%d-%d" % (qos, i)
                                            for i in range(20)]


def test_MQTT_4_6_0_6_ordered_delivery_without_waiting_for_acks(connected):
    sub, pub = pair(connected, 1)
    for i in range(10):
        pub.send(m.publish("pub/t", b"%d" % i, qos=1, pid=100 + i, version=V))
    for i in range(10):
        assert pub.expect(m.PUBACK).pid == 100 + i  # MQTT-4.6.0-2 mirror
    got = sub.receive(10)
    assert [p.payload for p in got] == [b"%d" % i for i in range(10)]


def test_MQTT_4_5_0_1_message_delivered_to_every_matching_subscriber(connected):
    subs = [connected("s%d" % i, V) for i in range(3)]
    for s in subs:
        s.subscribe("fan/out", 1)
    pub = connected("pub", V)
    pub.publish("fan/out", b"all", qos=1)
    for s in subs:
        s.receive(1)


def test_MQTT_4_5_0_2_publisher_does_not_receive_own_without_subscription(connected):
    c = connected("self", V)
    c.subscribe("self/other", 0)
    c.publish("self/mine", b"x", qos=1)
    c.expect_nothing(0.5)


@pytest.mark.parametrize("qos, wrong", [(1, "pubrec"), (2, "puback")],
                         ids=["pubrec-for-qos1", "puback-for-qos2"])
def test_acknowledgement_out_of_its_qos_flow_closes_the_connection(connected, qos, wrong):
    sub, pub = pair(connected, qos)
    pub.publish("pub/t", b"x", qos=qos)
    p = sub.expect_publish()
    sub.send(getattr(m, wrong)(p.pid, version=V))
    sub.expect_closed()


def test_sys_topics_are_the_brokers_a_client_publish_is_acknowledged_and_dropped(connected):
    # 3.1.1 has no code to refuse a PUBLISH: the flow completes so the client does not resend
    # forever, and nobody receives it (section 4.7.2: the Server SHOULD prevent exchanges on "$").
    watcher = connected("sys-watch", V)
    watcher.subscribe("$SYS/#", 1)
    pub = connected("sys-pub", V)
    pub.publish("$SYS/broker/uptime", b"client-0")
    assert pub.publish("$SYS/broker/uptime", b"client-1", qos=1).type == m.PUBACK
    assert pub.publish("$SYS/x", b"client-2", qos=2, retain=True).type == m.PUBCOMP
    later = connected("sys-late", V)
    later.subscribe("$SYS/#", 0)
    # The broker's own $SYS messages may arrive; none of the client's, nor a retained one.
    for client in (watcher, later):
        assert not [p for p in m.drain(client, 0.3) if p.payload.startswith(b"client-")]
    pub.ping()


@pytest.mark.deviates_mosquitto("2.0.11 accepts the CONNECT and drops the will when it is published")
def test_a_will_on_sys_is_refused_with_not_authorized(mqtt):
    c = mqtt(V)
    c.connect("sys-will", expect_rc=0x05, will={"topic": "$SYS/will", "payload": b"x"})
    c.expect_closed()
