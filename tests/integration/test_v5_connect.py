"""MQTT 5.0 sections 3.1 / 3.2: CONNECT and CONNACK."""

import time

import pytest

import mqtt_raw as m

V = m.V5


def test_MQTT_3_1_0_1_first_packet_must_be_connect(mqtt):
    c = mqtt(V)
    c.send(m.subscribe(1, [("a", 0)]))
    got = c.expect_closed()
    assert got == [], "MQTT-3.14.0-1: no packet before CONNACK, got %r" % got


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.0-2: 2.0.11 closes without the DISCONNECT 0x82 brokerd sends")
def test_MQTT_3_1_0_2_second_connect_is_protocol_error(connected):
    c = connected("twice")
    c.send(m.connect("twice"))
    c.expect_disconnect(m.RC_PROTOCOL_ERROR)


def test_MQTT_3_1_2_1_wrong_protocol_name_not_accepted(mqtt):
    c = mqtt(V)
    c.send(m.connect("badname", protocol_name="MQTX"))
    got = c.expect_closed()
    assert all(p.type == m.CONNACK and p.rc >= 0x80 for p in got), got


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.2-2: mosquitto's answer differs in form")
def test_MQTT_3_1_2_2_unsupported_protocol_version_0x84(mqtt):
    # A level no version knows: brokerd answers with the 4-byte 3.1.1 CONNACK 0x01, which
    # 3.1.1 requires [MQTT-3.1.2-2] and every client can parse; 0x84 is also allowed in 5.0.
    c = mqtt(V)
    c.send(m.connect("level6", protocol_level=6))
    m.expect_refused_connack(c, (0x01, m.RC_UNSUPPORTED_PROTOCOL_VERSION))


def test_MQTT_3_1_2_3_reserved_flag_is_malformed(mqtt):
    c = mqtt(V)
    c.send(m.connect("reserved", reserved=1))
    got = c.expect_closed()
    assert all(p.type == m.CONNACK and p.rc == m.RC_MALFORMED_PACKET
               for p in got), got


def test_MQTT_3_1_2_4_clean_start_discards_session(connected, mqtt):
    s = connected("cs", clean=False,
                  props={m.SESSION_EXPIRY_INTERVAL: 60})
    s.subscribe("cs/t", 1)
    s.disconnect()
    c = mqtt(V)
    ack = c.connect("cs", clean=True, props={m.SESSION_EXPIRY_INTERVAL: 60})
    assert ack.session_present is False  # MQTT-3.2.2-2
    pub = connected("pub")
    pub.publish("cs/t", b"x", qos=1)
    c.expect_nothing(0.5)


def test_MQTT_3_1_2_5_clean_start_0_resumes_session(connected, mqtt):
    s = connected("cs", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 60})
    s.subscribe("cs/t", 1)
    s.disconnect()
    c = mqtt(V)
    ack = c.connect("cs", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 60})
    assert ack.session_present is True  # MQTT-3.2.2-3
    connected("pub").publish("cs/t", b"x", qos=1)
    c.receive(1)


def test_MQTT_3_1_2_6_clean_start_0_without_session_creates_one(mqtt):
    c = mqtt(V)
    ack = c.connect("fresh", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 60})
    assert ack.session_present is False
    c.subscribe("fresh/t", 1)


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.2-22: 2.0.11 checks keep alive on a coarse timer (~5 s)")
def test_MQTT_3_1_2_22_keep_alive_closes_after_one_and_a_half_times(connected):
    c = connected("ka", keepalive=1)
    keep = c.connack.prop(m.SERVER_KEEP_ALIVE, 1)
    if keep > 2:
        pytest.skip("server keep alive %d s is too long to wait for" % keep)
    start = time.monotonic()
    got = c.expect_closed(timeout=keep * 1.5 + 3)
    elapsed = time.monotonic() - start
    assert keep <= elapsed <= keep * 1.5 + 1.5, elapsed
    # Closed "as if the network had failed"; a DISCONNECT 0x8D is allowed.
    assert all(p.type == m.DISCONNECT and p.rc == m.RC_KEEP_ALIVE_TIMEOUT
               for p in got), got


def test_MQTT_3_2_2_22_client_keep_alive_used_without_server_keep_alive(connected):
    c = connected("ka-ping", keepalive=1)
    if m.SERVER_KEEP_ALIVE in c.connack.props:
        assert c.connack.prop(m.SERVER_KEEP_ALIVE) > 0
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        time.sleep(0.4)
        c.ping()


def test_MQTT_3_1_3_5_allows_23_alphanumeric_bytes(connected):
    c = connected("0123456789abcdefghijkXZ")
    assert m.ASSIGNED_CLIENT_IDENTIFIER not in c.connack.props
    c.ping()


def test_MQTT_3_1_3_6_zero_length_client_id_gets_assigned_identifier(connected):
    a = connected("")
    b = connected("")
    ida = a.connack.prop(m.ASSIGNED_CLIENT_IDENTIFIER)
    idb = b.connack.prop(m.ASSIGNED_CLIENT_IDENTIFIER)
    # MQTT-3.1.3-7 / MQTT-3.2.2-16: returned, and unique.
    assert ida and idb and ida != idb
    a.ping()
    b.ping()


def test_MQTT_3_1_3_7_assigned_identifier_names_the_session(connected, mqtt):
    a = connected("", clean=True, props={m.SESSION_EXPIRY_INTERVAL: 60})
    cid = a.connack.prop(m.ASSIGNED_CLIENT_IDENTIFIER)
    a.subscribe("assigned/t", 1)
    a.disconnect()
    b = mqtt(V)
    ack = b.connect(cid, clean=False, props={m.SESSION_EXPIRY_INTERVAL: 60})
    assert ack.session_present is True


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.4-3: 2.0.11 closes the old connection without DISCONNECT 0x8E")
def test_MQTT_3_1_4_3_takeover_sends_disconnect_0x8e(connected):
    old = connected("takeover")
    new = connected("takeover")
    d = old.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    assert m.SESSION_EXPIRY_INTERVAL not in d.props  # MQTT-3.14.2-2
    new.ping()


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.4-3: 2.0.11 closes the old connection without DISCONNECT 0x8E")
def test_MQTT_3_1_4_3_takeover_by_v311_client_closes_v5_connection(connected):
    old = connected("mixed")
    new = connected("mixed", m.V311)
    old.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    new.ping()


def test_MQTT_3_1_4_5_connack_success(mqtt):
    c = mqtt(V)
    ack = c.connect("ok")
    assert ack.rc == 0 and ack.raw[0] == 0x20


def test_MQTT_3_1_4_6_data_after_refused_connect_not_processed(connected, mqtt):
    sub = connected("sub")
    sub.subscribe("refused/t", 0)
    c = mqtt(V)
    c.send(m.connect("bad", protocol_level=6) + m.publish("refused/t", b"no"))
    c.expect_closed()
    sub.expect_nothing(0.7)


def test_MQTT_3_2_0_2_exactly_one_connack(mqtt):
    c = mqtt(V)
    c.send(m.connect("one") + m.pingreq() + m.pingreq())
    c.expect(m.CONNACK)
    c.expect(m.PINGRESP)
    c.expect(m.PINGRESP)
    c.expect_nothing(0.3)


def test_MQTT_3_2_2_1_connack_reserved_flags_zero(mqtt):
    c = mqtt(V)
    ack = c.connect("flags")
    assert ack.ack_flags & 0xFE == 0


@pytest.mark.deviates_mosquitto(
    "MQTT-3.2.2-6/4.13: 2.0.11 closes on Receive Maximum 0 without a CONNACK 0x82")
def test_MQTT_3_2_2_6_refused_connack_session_present_0(mqtt, connected):
    s = connected("sp", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 60})
    s.disconnect()
    c = mqtt(V)
    c.send(m.connect("sp", clean=False, props=[(m.RECEIVE_MAXIMUM, 0)]))
    # MQTT-3.2.2-7: reason >= 0x80, then close.
    m.expect_refused_connack(c, (m.RC_PROTOCOL_ERROR, m.RC_MALFORMED_PACKET))


def test_MQTT_3_2_2_9_maximum_qos_if_sent_is_0_or_1(mqtt):
    c = mqtt(V)
    ack = c.connect("maxqos")
    assert ack.prop(m.MAXIMUM_QOS, 2) in (0, 1, 2)
    if m.MAXIMUM_QOS in ack.props:
        assert ack.prop(m.MAXIMUM_QOS) in (0, 1)


def test_MQTT_3_2_2_10_subscribe_qos_2_accepted(connected):
    c = connected("sub2")
    ack = c.subscribe("q/2", 2, expect_codes=False)
    assert ack.reason_codes[0] in (0, 1, 2)


@pytest.mark.deviates_mosquitto(
    "brokerd choice: Receive Maximum 128, Topic Alias Maximum 64, Maximum "
    "Packet Size 16 MiB; mosquitto's defaults differ (20, 10, none)")
def test_brokerd_connack_advertises_limits(mqtt):
    c = mqtt(V)
    ack = c.connect("limits")
    assert ack.prop(m.RECEIVE_MAXIMUM) == 128
    assert ack.prop(m.TOPIC_ALIAS_MAXIMUM) == 64
    assert ack.prop(m.MAXIMUM_PACKET_SIZE) == 16 * 1024 * 1024
    for absent_means_available in (m.RETAIN_AVAILABLE,
                                   m.WILDCARD_SUBSCRIPTION_AVAILABLE,
                                   m.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                                   m.SHARED_SUBSCRIPTION_AVAILABLE):
        assert ack.prop(absent_means_available, 1) == 1
    assert m.MAXIMUM_QOS not in ack.props


def test_MQTT_3_1_2_28_no_response_information_unless_requested(mqtt):
    c = mqtt(V)
    ack = c.connect("noresp", props={m.REQUEST_RESPONSE_INFORMATION: 0})
    assert m.RESPONSE_INFORMATION not in ack.props
    c2 = mqtt(V)
    assert m.RESPONSE_INFORMATION not in c2.connect("noresp2").props


def test_MQTT_3_1_2_29_no_reason_string_when_problem_information_0(connected):
    c = connected("noprob", props={m.REQUEST_PROBLEM_INFORMATION: 0})
    ack = c.subscribe([("ok/t", 0)])
    assert m.REASON_STRING not in ack.props
    assert m.USER_PROPERTY not in ack.props
    un = c.unsubscribe(["never"])
    assert m.REASON_STRING not in un.props and m.USER_PROPERTY not in un.props


def test_MQTT_4_12_0_1_unsupported_authentication_method_refused(mqtt):
    c = mqtt(V)
    c.send(m.connect("auth", props={m.AUTHENTICATION_METHOD: "NO-SUCH-METHOD"}))
    m.expect_refused_connack(c, (m.RC_BAD_AUTHENTICATION_METHOD, 0x87))


def test_MQTT_4_12_0_6_no_authentication_method_in_connack_unless_asked(mqtt):
    c = mqtt(V)
    ack = c.connect("noauth")
    assert m.AUTHENTICATION_METHOD not in ack.props
    assert m.AUTHENTICATION_DATA not in ack.props
    c.expect_nothing(0.3)  # and no AUTH packet


def test_MQTT_3_1_2_23_session_expiry_0_ends_session_at_close(connected, mqtt):
    s = connected("se0", clean=False)  # Session Expiry absent = 0
    s.subscribe("se0/t", 1)
    s.disconnect()
    c = mqtt(V)
    assert c.connect("se0", clean=False).session_present is False
