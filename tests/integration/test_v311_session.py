"""MQTT 3.1.1 sections 3.1.2.4 and 4.1/4.4: sessions and redelivery."""

import mqtt_raw as m

V = m.V311


def persistent_sub(connected, cid="sess", topic="s/t", qos=1):
    c = connected(cid, V, clean=False)
    c.subscribe(topic, qos)
    return c


def test_MQTT_3_1_2_4_session_resumed_with_subscriptions(connected, mqtt):
    persistent_sub(connected).disconnect()
    c = mqtt(V)
    assert c.connect("sess", clean=False).session_present
    pub = connected("pub", V)
    pub.publish("s/t", b"resumed", qos=1)
    c.receive(1)


def test_MQTT_3_1_2_5_offline_qos1_and_qos2_messages_stored(connected, mqtt):
    persistent_sub(connected, qos=2).disconnect()
    pub = connected("pub", V)
    pub.publish("s/t", b"q1", qos=1)
    pub.publish("s/t", b"q2", qos=2)
    c = mqtt(V)
    c.connect("sess", clean=False)
    got = c.receive(2)
    assert [(p.payload, p.qos) for p in got] == [(b"q1", 1), (b"q2", 2)]


def test_MQTT_3_1_2_6_clean_session_discards_previous_session(connected, mqtt):
    persistent_sub(connected).disconnect()
    c = mqtt(V)
    assert not c.connect("sess", clean=True).session_present
    pub = connected("pub", V)
    pub.publish("s/t", b"x", qos=1)
    c.expect_nothing(0.5)
    c.disconnect()
    again = mqtt(V)
    # The clean session's state is not reused by a later session.
    assert not again.connect("sess", clean=False).session_present


def test_MQTT_3_1_2_6_clean_session_not_resumed_by_a_takeover(connected, mqtt):
    # A Clean Session 1 session lasts as long as its connection: a takeover with Clean Session
    # 0 does not inherit it, not even while the old connection is still open.
    old = connected("sess-takeover", V, clean=True)
    old.subscribe("tk/t", qos=1)
    new = mqtt(V)
    assert not new.connect("sess-takeover", clean=False).session_present
    pub = connected("pub", V)
    pub.publish("tk/t", b"x", qos=1)
    new.expect_nothing(0.5)


def test_MQTT_4_1_0_1_session_state_kept_while_offline_for_several_messages(connected, mqtt):
    persistent_sub(connected).disconnect()
    pub = connected("pub", V)
    for i in range(10):
        pub.publish("s/t", b"%d" % i, qos=1)
    c = mqtt(V)
    c.connect("sess", clean=False)
    got = c.receive(10)
    assert [p.payload for p in got] == [b"%d" % i for i in range(10)]


def test_MQTT_3_3_1_1_unacked_publish_redelivered_with_dup(connected, mqtt):
    sub = persistent_sub(connected)
    pub = connected("pub", V)
    pub.publish("s/t", b"redo", qos=1)
    first = sub.expect_publish(payload=b"redo")
    assert first.dup is False
    sub.abort()
    c = mqtt(V)
    assert c.connect("sess", clean=False).session_present
    again = c.expect_publish(payload=b"redo")
    assert again.dup is True and again.pid == first.pid  # MQTT-4.4.0-1
    c.ack(again)
    c.expect_nothing(0.5)


def test_MQTT_4_4_0_1_unacked_qos2_publish_resent_with_same_pid(connected, mqtt):
    sub = persistent_sub(connected, qos=2)
    pub = connected("pub", V)
    pub.publish("s/t", b"q2", qos=2)
    first = sub.expect_publish()
    sub.abort()
    c = mqtt(V)
    c.connect("sess", clean=False)
    again = c.expect_publish(payload=b"q2")
    assert again.pid == first.pid and again.dup and again.qos == 2


def test_MQTT_4_4_0_1_unacked_pubrel_resent_with_same_pid(connected, mqtt):
    sub = persistent_sub(connected, qos=2)
    pub = connected("pub", V)
    pub.publish("s/t", b"q2", qos=2)
    first = sub.expect_publish()
    sub.send(m.pubrec(first.pid, version=V))
    sub.expect(m.PUBREL)
    sub.abort()
    c = mqtt(V)
    c.connect("sess", clean=False)
    rel = c.expect(m.PUBREL)
    assert rel.pid == first.pid
    c.send(m.pubcomp(rel.pid, version=V))
    c.expect_nothing(0.5)  # MQTT-4.3.3-1: PUBLISH not re-sent after PUBREL


def test_MQTT_4_6_0_1_redelivery_keeps_original_order(connected, mqtt):
    sub = persistent_sub(connected)
    pub = connected("pub", V)
    for i in range(5):
        pub.publish("s/t", b"%d" % i, qos=1)
    firsts = sub.receive(5, ack=False)
    sub.abort()
    c = mqtt(V)
    c.connect("sess", clean=False)
    again = c.receive(5)
    assert [p.payload for p in again] == [p.payload for p in firsts]
    assert [p.pid for p in again] == [p.pid for p in firsts]


def test_MQTT_3_1_2_4_qos0_offline_messages_may_be_dropped_not_corrupted(connected, mqtt):
    persistent_sub(connected, qos=0).disconnect()
    pub = connected("pub", V)
    pub.publish("s/t", b"q0", qos=0)
    pub.ping()
    c = mqtt(V)
    c.connect("sess", clean=False)
    try:
        p = c.recv(0.5)
    except Exception:
        return
    assert p.type == m.PUBLISH and p.payload == b"q0" and p.qos == 0
