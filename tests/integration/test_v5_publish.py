"""MQTT 5.0 sections 3.3-3.7, 4.3-4.6: PUBLISH, acks and QoS flows."""

import pytest

import mqtt_raw as m

V = m.V5


def pair(connected, sub_qos=2, topic="pub/t", **sub_kw):
    sub = connected("sub", **sub_kw)
    sub.subscribe(topic, sub_qos)
    pub = connected("pub")
    return sub, pub


def test_MQTT_3_3_1_2_qos0_delivered_with_dup_0(connected):
    sub, pub = pair(connected, 0)
    pub.publish("pub/t", b"q0")
    p = sub.expect_publish(payload=b"q0")
    assert p.qos == 0 and not p.dup and p.pid is None


def test_MQTT_3_3_1_3_incoming_dup_not_propagated(connected):
    sub, pub = pair(connected, 1)
    pub.publish("pub/t", b"d", qos=1, dup=True)
    assert sub.receive(1)[0].dup is False


def test_MQTT_3_3_2_3_topic_name_matches_filter(connected):
    sub, pub = pair(connected, 0, topic="pub/#")
    pub.publish("pub/a/b", b"x")
    assert sub.expect_publish().topic == "pub/a/b"


def test_MQTT_3_3_4_1_acknowledgements_per_qos(connected):
    c = connected("acks")
    c.publish("nobody/listens", b"0", qos=0)
    ack = c.publish("nobody/listens", b"1", qos=1)
    # 0x10 (No matching subscribers) is allowed instead of 0x00.
    assert ack.type == m.PUBACK and ack.rc in (0x00, m.RC_NO_MATCHING_SUBSCRIBERS)
    comp = c.publish("nobody/listens", b"2", qos=2)
    assert comp.type == m.PUBCOMP and comp.rc == 0
    c.expect_nothing(0.3)


def test_MQTT_3_3_4_1_puback_success_with_subscriber(connected):
    sub, pub = pair(connected, 1)
    ack = pub.publish("pub/t", b"x", qos=1)
    assert ack.rc == 0


def test_MQTT_3_3_4_2_overlapping_subscriptions_max_qos(connected):
    sub = connected("sub")
    sub.subscribe([("pub/#", m.sub_options(0)), ("pub/t", m.sub_options(2)),
                   ("+/t", m.sub_options(1))])
    pub = connected("pub")
    pub.publish("pub/t", b"x", qos=2)
    got = m.drain(sub)
    assert got and max(p.qos for p in got) == 2, got
    assert len(got) in (1, 3), got


def test_MQTT_3_3_4_3_subscription_identifiers_sent_for_overlaps(connected):
    sub = connected("sub")
    sub.subscribe("sid/#", 1, props={m.SUBSCRIPTION_IDENTIFIER: 11})
    sub.subscribe("sid/t", 1, props={m.SUBSCRIPTION_IDENTIFIER: 22})
    sub.subscribe("+/t", 1)  # no identifier
    connected("pub").publish("sid/t", b"x", qos=1)
    got = m.drain(sub)
    assert len(got) in (1, 3), got
    if len(got) == 1:
        # MQTT-3.3.4-4: one copy carries all identifiers, any order.
        assert sorted(got[0].prop(m.SUBSCRIPTION_IDENTIFIER, [])) == [11, 22]
    else:
        # MQTT-3.3.4-5: each copy carries its subscription's identifier.
        ids = sorted(tuple(p.prop(m.SUBSCRIPTION_IDENTIFIER, [])) for p in got)
        assert ids == [(), (11,), (22,)], got


def test_MQTT_3_3_4_4_single_subscription_identifier(connected):
    sub = connected("sub")
    sub.subscribe("sid/one", 1, props={m.SUBSCRIPTION_IDENTIFIER: 268435455})
    connected("pub").publish("sid/one", b"x", qos=1)
    p = sub.receive(1)[0]
    assert p.prop(m.SUBSCRIPTION_IDENTIFIER) == [268435455]


def test_MQTT_3_3_4_3_no_identifier_when_subscription_has_none(connected):
    sub, pub = pair(connected, 1)
    pub.publish("pub/t", b"x", qos=1)
    assert m.SUBSCRIPTION_IDENTIFIER not in sub.receive(1)[0].props


def test_MQTT_3_8_4_8_delivered_at_min_of_published_and_granted_qos(connected):
    sub = connected("sub")
    sub.subscribe([("g/0", 0), ("g/1", 1), ("g/2", 2)])
    pub = connected("pub")
    for topic, pub_qos, want in [("g/0", 2, 0), ("g/1", 2, 1), ("g/2", 2, 2),
                                 ("g/2", 1, 1), ("g/1", 0, 0)]:
        pub.publish(topic, b"x", qos=pub_qos)
        p = sub.receive(1)[0]
        assert (p.topic, p.qos) == (topic, want)


def test_MQTT_2_2_1_4_server_uses_unused_nonzero_packet_identifiers(connected):
    sub, pub = pair(connected, 2)
    for i in range(6):
        pub.publish("pub/t", b"%d" % i, qos=1 + i % 2)
    got = sub.receive(6, ack=False)
    pids = [p.pid for p in got]
    assert 0 not in pids and len(set(pids)) == 6, pids
    for p in got:
        if p.qos == 1:
            sub.send(m.puback(p.pid))
        else:
            sub.send(m.pubrec(p.pid))
            assert sub.expect(m.PUBREL).pid == p.pid
            sub.send(m.pubcomp(p.pid))


def test_MQTT_2_2_1_5_acks_carry_publish_packet_identifier(connected):
    c = connected("pids")
    assert c.publish("a/b", b"x", qos=1, pid=513).pid == 513
    c.send(m.publish("a/b", b"x", qos=2, pid=1027))
    assert c.expect(m.PUBREC).pid == 1027
    c.send(m.pubrel(1027))
    assert c.expect(m.PUBCOMP).pid == 1027


def test_MQTT_4_3_2_5_same_pid_after_puback_is_new_publication(connected):
    sub, pub = pair(connected, 1)
    pub.publish("pub/t", b"one", qos=1, pid=7)
    pub.publish("pub/t", b"two", qos=1, pid=7, dup=True)
    assert [p.payload for p in sub.receive(2)] == [b"one", b"two"]


def test_MQTT_4_3_3_4_server_sends_pubrel_after_pubrec(connected):
    sub, pub = pair(connected, 2)
    pub.publish("pub/t", b"x", qos=2)
    p = sub.expect_publish()
    assert p.qos == 2 and not p.dup  # MQTT-4.3.3-2
    sub.send(m.pubrec(p.pid))
    rel = sub.expect(m.PUBREL)
    assert rel.pid == p.pid and rel.flags == 2 and rel.rc == 0
    sub.send(m.pubcomp(p.pid))
    sub.expect_nothing(0.4)


def test_MQTT_4_3_3_9_pubrec_failure_ends_the_flow(connected):
    sub, pub = pair(connected, 2)
    pub.publish("pub/t", b"x", qos=2)
    p = sub.expect_publish()
    sub.send(m.pubrec(p.pid, rc=m.RC_UNSPECIFIED_ERROR))
    sub.expect_nothing(0.5)  # no PUBREL for a failed PUBREC
    pub.publish("pub/t", b"next", qos=2)
    sub.receive(1)


def test_MQTT_4_3_3_10_duplicate_qos2_publish_not_delivered_twice(connected):
    sub, pub = pair(connected, 2)
    pub.send(m.publish("pub/t", b"once", qos=2, pid=9))
    assert pub.expect(m.PUBREC).pid == 9
    pub.send(m.publish("pub/t", b"once", qos=2, pid=9, dup=True))
    assert pub.expect(m.PUBREC).pid == 9
    pub.send(m.pubrel(9))
    assert pub.expect(m.PUBCOMP).pid == 9
    sub.receive(1)
    sub.expect_nothing(0.5)


def test_MQTT_4_3_3_11_pubrel_answered_with_pubcomp(connected):
    c = connected("rel")
    c.send(m.publish("a/b", b"x", qos=2, pid=3))
    c.expect(m.PUBREC)
    c.send(m.pubrel(3))
    comp = c.expect(m.PUBCOMP)
    assert comp.pid == 3 and comp.rc == 0


@pytest.mark.deviates_mosquitto(
    "sec 3.7.2.1: 2.0.11 answers a PUBREL for an unknown id with PUBCOMP 0x00, not 0x92")
def test_MQTT_4_3_3_11_pubrel_for_unknown_pid_gets_0x92(connected):
    c = connected("rel")
    c.send(m.pubrel(4242))
    comp = c.expect(m.PUBCOMP)
    assert comp.pid == 4242 and comp.rc == m.RC_PACKET_IDENTIFIER_NOT_FOUND


def test_MQTT_4_3_3_12_same_pid_after_pubcomp_is_new_publication(connected):
    sub, pub = pair(connected, 2)
    pub.publish("pub/t", b"one", qos=2, pid=12)
    pub.publish("pub/t", b"two", qos=2, pid=12)
    assert [p.payload for p in sub.receive(2)] == [b"one", b"two"]


def test_MQTT_4_6_0_6_ordered_delivery_per_qos(connected):
    sub, pub = pair(connected, 2)
    for qos in (0, 1, 2):
        for i in range(20):
            pub.publish("pub/t", b"%d-%d" % (qos, i), qos=qos)
        got = sub.receive(20)
        assert [p.payload for p in got] == [b"%d-%d" % (qos, i) for i in range(20)]


def test_MQTT_3_3_2_4_payload_format_indicator_forwarded(connected):
    sub, pub = pair(connected, 1)
    pub.publish("pub/t", "h\u00e9llo", qos=1,
                props={m.PAYLOAD_FORMAT_INDICATOR: 1})
    pub.publish("pub/t", b"\xff\xfe", qos=1,
                props={m.PAYLOAD_FORMAT_INDICATOR: 0})
    a, b = sub.receive(2)
    assert a.prop(m.PAYLOAD_FORMAT_INDICATOR) == 1
    assert b.prop(m.PAYLOAD_FORMAT_INDICATOR, 0) == 0


def test_MQTT_3_3_2_20_content_type_forwarded(connected):
    sub, pub = pair(connected, 1)
    pub.publish("pub/t", b"{}", qos=1, props={m.CONTENT_TYPE: "application/json; charset=\u00fc"})
    p = sub.receive(1)[0]
    assert p.prop(m.CONTENT_TYPE) == "application/json; charset=\u00fc"


@pytest.mark.deviates_mosquitto(
    "sec 3.3.2.3.2: 2.0.11 accepts a QoS 0 PUBLISH with Payload Format "
    "Indicator 1 and invalid UTF-8; brokerd sends DISCONNECT 0x99")
def test_payload_format_invalid_qos0_disconnect_0x99(connected):
    sub, pub = pair(connected, 1)
    pub.send(m.publish("pub/t", b"\xc3\x28", qos=0,
                       props={m.PAYLOAD_FORMAT_INDICATOR: 1}))
    pub.expect_disconnect(m.RC_PAYLOAD_FORMAT_INVALID)
    sub.expect_nothing(0.3)


@pytest.mark.deviates_mosquitto(
    "sec 3.3.2.3.2 (MAY validate): 2.0.11 accepts invalid UTF-8 with Payload Format Indicator 1; brokerd answers 0x99")
def test_payload_format_invalid_qos1_rejected_0x99(connected):
    sub, pub = pair(connected, 1)
    pub.send(m.publish("pub/t", b"\xed\xa0\x80", qos=1, pid=5,
                       props={m.PAYLOAD_FORMAT_INDICATOR: 1}))
    try:
        pkt = pub.recv()
    except m.ConnectionClosed:
        pytest.fail("closed without PUBACK/DISCONNECT 0x99")
    assert pkt.type in (m.PUBACK, m.DISCONNECT), pkt
    assert pkt.rc == m.RC_PAYLOAD_FORMAT_INVALID, pkt
    sub.expect_nothing(0.3)


@pytest.mark.deviates_mosquitto("2.0.11 has no bound on topic levels")
def test_topic_deeper_than_max_topic_levels_refused(connected):
    c = connected("deep-pub")
    c.send_quietly(m.publish("d/" * 128 + "x", b"deep"))  # 129 levels
    c.expect_disconnect(m.RC_TOPIC_NAME_INVALID)


@pytest.mark.deviates_mosquitto("2.0.11 has no bound on topic levels")
def test_will_topic_deeper_than_max_topic_levels_refused(mqtt):
    # Else the will would create a retained topic no client could publish to or clear.
    c = mqtt()
    c.connect("deep-will", expect_rc=m.RC_TOPIC_NAME_INVALID,
              will={"topic": "d/" * 128 + "x", "payload": b"bye", "retain": True})



# An acknowledgement that does not fit the flow of the message in flight under its packet id
# is a protocol violation (sec 4.13): the client mixed up its QoS flows.
@pytest.mark.parametrize("qos, wrong", [(1, "pubrec"), (1, "pubcomp"), (2, "puback"),
                                        (2, "pubcomp")],
                         ids=["pubrec-for-qos1", "pubcomp-for-qos1", "puback-for-qos2",
                              "pubcomp-before-pubrec"])
@pytest.mark.deviates_mosquitto("sec 4.13: 2.0.11 closes without sending DISCONNECT 0x82")
def test_acknowledgement_out_of_its_qos_flow_is_a_protocol_error(connected, qos, wrong):
    sub, pub = pair(connected, qos)
    pub.publish("pub/t", b"x", qos=qos)
    p = sub.expect_publish()
    sub.send(getattr(m, wrong)(p.pid))
    sub.expect_disconnect(m.RC_PROTOCOL_ERROR)


def test_acknowledgement_for_an_id_not_in_flight_is_ignored(connected):
    sub, pub = pair(connected, 1)
    sub.send(m.puback(77))
    sub.send(m.pubcomp(78))
    pub.publish("pub/t", b"still here", qos=1)
    sub.expect_publish(payload=b"still here")


def test_sys_topics_are_the_brokers_a_client_publish_is_not_authorized(connected):
    # Section 4.7.2: the Server SHOULD prevent Clients from exchanging messages on "$" topics;
    # "$SYS" is the broker's own tree, and nothing can subscribe to a "$share/..." topic name.
    watcher = connected("sys-watch")
    watcher.subscribe("$SYS/#", 0)
    pub = connected("sys-pub")
    pub.publish("$SYS/broker/uptime", b"client-0")
    assert pub.publish("$SYS/broker/uptime", b"client-1", qos=1).rc == m.RC_NOT_AUTHORIZED
    rec = pub.publish("$SYS", b"client-2", qos=2, retain=True)
    assert rec.type == m.PUBREC and rec.rc == m.RC_NOT_AUTHORIZED
    assert pub.publish("$share/g/t", b"client-3", qos=1).rc == m.RC_NOT_AUTHORIZED
    later = connected("sys-late")
    later.subscribe([("$SYS/#", m.sub_options(0)), ("$SYS", m.sub_options(0))])
    # The broker's own $SYS messages may arrive; none of the client's, nor a retained one.
    for client in (watcher, later):
        assert not [p for p in m.drain(client, 0.3) if p.payload.startswith(b"client-")]
    pub.ping()


@pytest.mark.deviates_mosquitto("2.0.11 refuses every topic that starts with the 4 bytes '$SYS'")
def test_other_dollar_topics_carry_messages_between_clients(connected):
    sub = connected("dollar-sub")
    sub.subscribe("$SYSTEM/#", 1)
    sub.subscribe("$aws/things/car/shadow", 1)
    pub = connected("dollar-pub")
    assert pub.publish("$SYSTEM/x", b"a", qos=1).rc == 0
    assert pub.publish("$aws/things/car/shadow", b"b", qos=1).rc == 0
    assert sorted(p.payload for p in sub.receive(2)) == [b"a", b"b"]


@pytest.mark.deviates_mosquitto("2.0.11 accepts the CONNECT and drops the will when it is published")
def test_a_will_on_sys_is_refused_with_not_authorized(mqtt):
    c = mqtt(V)
    c.connect("sys-will", expect_rc=m.RC_NOT_AUTHORIZED, will={"topic": "$SYS/will", "payload": b"x"})
    c.expect_closed()
