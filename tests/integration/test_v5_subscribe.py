"""MQTT 5.0 sections 3.8-3.11 and 4.7: SUBSCRIBE options, UNSUBSCRIBE."""

import pytest

import mqtt_raw as m

V = m.V5


def test_MQTT_3_8_3_3_no_local_not_sent_back_to_publisher(connected):
    c = connected("nl")
    c.subscribe("nl/t", 1, no_local=True)
    c.subscribe("nl/other", 1)
    c.publish("nl/t", b"mine", qos=1)
    c.expect_nothing(0.5)
    other = connected("other")
    other.publish("nl/t", b"theirs", qos=1)
    c.expect_publish(payload=b"theirs")


def test_MQTT_3_8_3_3_without_no_local_own_messages_delivered(connected):
    c = connected("loop")
    c.subscribe("nl/t", 0)
    c.publish("nl/t", b"mine")
    c.expect_publish(payload=b"mine")


def test_MQTT_3_8_3_3_no_local_applies_per_subscription(connected):
    c = connected("nl2")
    c.subscribe("nl/#", 0, no_local=True, props={m.SUBSCRIPTION_IDENTIFIER: 1})
    c.subscribe("nl/t", 0, props={m.SUBSCRIPTION_IDENTIFIER: 2})
    c.publish("nl/t", b"x")
    got = m.drain(c)
    assert len(got) == 1 and got[0].prop(m.SUBSCRIPTION_IDENTIFIER) == [2], got


def test_MQTT_3_8_4_2_suback_same_pid(connected):
    c = connected("pid")
    c.send(m.subscribe(0x7777, [("a/b", 1)]))
    ack = c.expect(m.SUBACK)
    assert ack.pid == 0x7777 and ack.reason_codes == [1]


def test_MQTT_3_8_4_3_identical_filter_replaces_subscription(connected):
    c = connected("rep")
    c.subscribe("rep/t", 0, props={m.SUBSCRIPTION_IDENTIFIER: 1})
    c.subscribe("rep/t", 2, props={m.SUBSCRIPTION_IDENTIFIER: 2})
    connected("pub").publish("rep/t", b"x", qos=2)
    got = m.drain(c)
    assert len(got) == 1, got
    assert got[0].qos == 2 and got[0].prop(m.SUBSCRIPTION_IDENTIFIER) == [2]


def test_MQTT_3_8_4_4_replacing_with_retain_handling_0_resends_retained(connected):
    connected("pub").publish("rep/r", b"kept", qos=1, retain=True)
    c = connected("rep")
    c.subscribe("rep/r", 1)
    c.receive(1)
    c.subscribe("rep/r", 1, retain_handling=0)
    p = c.receive(1)[0]
    assert p.payload == b"kept" and p.retain


def test_MQTT_3_8_4_5_multiple_filters_one_suback(connected):
    c = connected("multi")
    c.send(m.subscribe(9, [("m/a", 0), ("m/b", 1), ("m/c", 2)]))
    ack = c.expect(m.SUBACK)
    assert ack.reason_codes == [0, 1, 2]  # MQTT-3.8.4-6, MQTT-3.9.3-1
    c.expect_nothing(0.2)


def test_MQTT_3_8_4_7_granted_qos_never_above_requested(connected):
    c = connected("granted")
    ack = c.subscribe([("x/0", 0), ("x/1", 1), ("x/2", 2)], expect_codes=False)
    for code, asked in zip(ack.reason_codes, (0, 1, 2)):
        assert code <= asked or code >= 0x80


def test_MQTT_3_9_3_2_invalid_filter_gets_failure_code(connected):
    c = connected("bad")
    c.send_quietly(m.subscribe(4, [("ok/t", 1), ("bad/#/x", 1)]))
    try:
        ack = c.recv()
    except m.ConnectionClosed:
        pytest.fail("closed without SUBACK or DISCONNECT")
    if ack.type == m.DISCONNECT:
        assert ack.rc in (m.RC_MALFORMED_PACKET, m.RC_PROTOCOL_ERROR,
                          m.RC_TOPIC_FILTER_INVALID), ack
        c.expect_closed()
    else:
        assert ack.type == m.SUBACK
        assert ack.reason_codes == [1, m.RC_TOPIC_FILTER_INVALID], ack


def test_MQTT_3_10_4_1_unsubscribe_matches_filter_exactly(connected):
    c = connected("ex")
    c.subscribe("ex/b", 0)
    ack = c.unsubscribe(["ex/+"])
    assert ack.reason_codes == [m.RC_NO_SUBSCRIPTION_EXISTED]
    connected("pub").publish("ex/b", b"still")
    c.expect_publish(payload=b"still")


def test_MQTT_3_10_4_2_no_new_messages_after_unsubscribe(connected):
    c = connected("un")
    c.subscribe("un/t", 1)
    assert c.unsubscribe("un/t").reason_codes == [0]
    connected("pub").publish("un/t", b"x", qos=1)
    c.expect_nothing(0.5)


def test_MQTT_3_10_4_5_unsuback_same_pid_even_if_nothing_deleted(connected):
    c = connected("un0")
    c.send(m.unsubscribe(77, ["none/here"]))
    ack = c.expect(m.UNSUBACK)
    assert ack.pid == 77 and ack.reason_codes == [m.RC_NO_SUBSCRIPTION_EXISTED]


def test_MQTT_3_11_3_1_unsuback_codes_in_filter_order(connected):
    c = connected("unord")
    c.subscribe([("u/1", 0), ("u/3", 0)])
    ack = c.unsubscribe(["u/1", "u/2", "u/3"])
    # MQTT-3.10.4-6: one UNSUBACK; MQTT-3.11.3-2: defined codes only.
    assert ack.reason_codes == [0, m.RC_NO_SUBSCRIPTION_EXISTED, 0]


@pytest.mark.deviates_mosquitto(
    "sec 3.11.3: 2.0.11 closes the connection instead of UNSUBACK 0x8F")
@pytest.mark.parametrize("flt", ["", "a/#/b", "a+", "#b", "$share/g"])
def test_unsuback_0x8f_for_invalid_filter(connected, flt):
    c = connected("uinv5")
    ack = c.unsubscribe([flt, "ok/t"])
    assert ack.reason_codes == [m.RC_TOPIC_FILTER_INVALID, m.RC_NO_SUBSCRIPTION_EXISTED], ack
    c.ping()


@pytest.mark.parametrize("flt", ["#", "+/x/#", "+/#"])
def test_MQTT_4_7_2_1_leading_wildcard_does_not_match_dollar(connected, flt):
    c = connected("dollar")
    c.subscribe(flt, 0)
    pub = connected("pub")
    pub.publish("$x/x/y", b"no")
    pub.publish("a/x/y", b"yes")
    assert c.expect_publish().payload == b"yes"
    c.expect_nothing(0.3)


def test_MQTT_4_7_3_4_no_normalization(connected):
    c = connected("norm")
    c.subscribe("Caf\u00e9/t", 0)
    pub = connected("pub")
    pub.publish("Cafe\u0301/t", b"no")
    pub.publish("caf\u00e9/t", b"no")
    pub.publish("Caf\u00e9/t", b"yes")
    assert c.expect_publish().payload == b"yes"
    c.expect_nothing(0.3)


def test_MQTT_3_8_4_5_subscription_identifier_per_subscribe(connected):
    c = connected("sids")
    c.send(m.subscribe(3, [("s/a", 0), ("s/b", 0)],
                       props={m.SUBSCRIPTION_IDENTIFIER: 99}))
    assert c.expect(m.SUBACK).reason_codes == [0, 0]
    pub = connected("pub")
    pub.publish("s/a", b"a")
    pub.publish("s/b", b"b")
    for p in (c.expect_publish(), c.expect_publish()):
        assert p.prop(m.SUBSCRIPTION_IDENTIFIER) == [99]


@pytest.mark.deviates_mosquitto("2.0.11 has no bound on topic levels")
def test_filter_deeper_than_max_topic_levels_refused(connected):
    # Each level of a subscription costs the topic index memory: limits.max_topic_levels (128)
    # bounds them; the filter is refused, the others in the SUBSCRIBE are granted.
    c = connected("deep-sub")
    deep = "d/" * 128 + "#"  # 129 levels
    c.send(m.subscribe(1, [(deep, 1), ("d/ok/#", 1)]))
    assert c.expect(m.SUBACK).reason_codes == [m.RC_TOPIC_FILTER_INVALID, 1]
    c.subscribe("d/" * 127 + "#", 1)  # 128 levels: fine

