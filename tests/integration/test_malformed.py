"""Hostile input. MQTT 5.0: DISCONNECT with the precise reason code, then
close (MQTT-4.13.1-1, MQTT-4.13.2-1). MQTT 3.1.1: close without a packet
(MQTT-4.8.0-1). Every test ends with the fixture's clean SIGTERM, so a crash
caused by the input fails the test too."""

import socket
import time

import pytest

import mqtt_raw as m

BOTH = pytest.mark.parametrize("version", [m.V311, m.V5], ids=["v311", "v5"])
MALFORMED = m.RC_MALFORMED_PACKET
PROTOCOL = m.RC_PROTOCOL_ERROR


def after_connect(connected, version, data, rc, cid="hostile"):
    c = connected(cid, version)
    c.send_quietly(data)
    return c.expect_disconnect(rc)


def still_serving(mqtt):
    c = mqtt(m.V5)
    c.connect("alive")
    c.ping()


# -- fixed header ----------------------------------------------------------

@pytest.mark.deviates_mosquitto(
    "MQTT-1.5.5-1: 2.0.11 reads a Variable Byte Integer longer than needed")
def test_MQTT_1_5_5_1_longer_varint_than_needed_v5(connected, mqtt):
    # PINGREQ with remaining length 0 written in two bytes, and a property id written
    # 0x81 0x00: 5.0 requires the shortest form.
    after_connect(connected, m.V5, bytes([0xC0, 0x80, 0x00]), MALFORMED)
    bad_property = m.packet(m.PUBLISH, 2, m.utf8("t") + m.u16(1) + bytes([3, 0x81, 0x00, 0x00]))
    after_connect(connected, m.V5, bad_property, MALFORMED, cid="hostile2")
    still_serving(mqtt)


@pytest.mark.parametrize("packet", [bytes([0x20, 0x03, 0x00, 0x00, 0x00]),  # CONNACK
                                    bytes([0x90, 0x04, 0x00, 0x01, 0x00, 0x00]),  # SUBACK
                                    bytes([0xB0, 0x03, 0x00, 0x01, 0x00]),  # UNSUBACK
                                    bytes([0xD0, 0x00])],  # PINGRESP
                         ids=["connack", "suback", "unsuback", "pingresp"])
@pytest.mark.deviates_mosquitto(
    "sec 4.13: 2.0.11 ignores SUBACK, UNSUBACK and PINGRESP from a client, and closes on "
    "CONNACK without DISCONNECT 0x82")
def test_packets_only_a_server_sends_are_a_protocol_error(connected, mqtt, packet):
    # Well-formed or not, a client must not send them: DISCONNECT 0x82.
    after_connect(connected, m.V5, packet, PROTOCOL)
    still_serving(mqtt)


def test_v311_remaining_length_longer_than_needed_is_read(connected):
    # 3.1.1 has no shortest-form rule; the value is unambiguous.
    c = connected("lenient", m.V311)
    c.send(bytes([0xC0, 0x80, 0x00]))
    c.expect(m.PINGRESP)


@pytest.mark.parametrize("version", [
    m.V311, pytest.param(m.V5, marks=pytest.mark.deviates_mosquitto(
        "MQTT-1.5.5-1: 2.0.11 closes on a 5-byte Remaining Length without "
        "DISCONNECT 0x81"))], ids=["v311", "v5"])
def test_MQTT_1_5_5_1_remaining_length_over_four_bytes(connected, mqtt, version):
    after_connect(connected, version, bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
                  MALFORMED)
    still_serving(mqtt)


@BOTH
def test_reserved_packet_type_0(connected, version):
    after_connect(connected, version, bytes([0x00, 0x00]), (MALFORMED, PROTOCOL))


@pytest.mark.deviates_mosquitto(
    "sec 2.1.2: 2.0.11 closes without DISCONNECT on an AUTH packet "
    "from a client that did not use enhanced authentication")
def test_MQTT_4_12_0_7_auth_without_authentication_method(connected):
    after_connect(connected, m.V5, m.auth(m.RC_CONTINUE_AUTHENTICATION),
                  PROTOCOL)


@BOTH
def test_MQTT_3_3_1_4_publish_qos_3(connected, version):
    after_connect(connected, version,
                  m.publish("a/b", b"x", qos=3, pid=1, version=version),
                  MALFORMED)


REQ = pytest.mark.deviates_mosquitto(
    "brokerd choice: DISCONNECT 0x81 for reserved fixed-header flags; "
    "2.0.11 closes without DISCONNECT")


@BOTH
@REQ
def test_MQTT_3_6_1_1_pubrel_reserved_flags(connected, version):
    after_connect(connected, version, bytes([0x60, 0x02, 0x00, 0x01]), MALFORMED)


@BOTH
@REQ
def test_MQTT_3_8_1_1_subscribe_reserved_flags(connected, version):
    after_connect(connected, version,
                  m.subscribe(1, [("a", 0)], version=version, flags=0), MALFORMED)


@BOTH
@REQ
def test_MQTT_3_10_1_1_unsubscribe_reserved_flags(connected, version):
    after_connect(connected, version,
                  m.unsubscribe(1, ["a"], version=version, flags=0), MALFORMED)


@BOTH
@REQ
def test_MQTT_2_1_3_1_pingreq_reserved_flags(connected, version):
    after_connect(connected, version, bytes([0xC1, 0x00]), MALFORMED)


@BOTH
@REQ
def test_MQTT_2_1_3_1_puback_reserved_flags(connected, version):
    after_connect(connected, version, bytes([0x42, 0x02, 0x00, 0x01]), MALFORMED)


@pytest.mark.deviates_mosquitto(
    "MQTT-3.15.1-1: 2.0.11 closes without DISCONNECT 0x81")
def test_MQTT_3_15_1_1_auth_reserved_flags(connected):
    after_connect(connected, m.V5, bytes([0xF1, 0x02, 0x00, 0x00]), MALFORMED)


# -- strings -----------------------------------------------------------------

@BOTH
def test_MQTT_1_5_4_1_invalid_utf8_topic(connected, version):
    topic = b"bad/\xc3\x28"
    after_connect(connected, version,
                  m.publish(topic, b"x", version=version), MALFORMED)


@BOTH
def test_MQTT_1_5_4_1_utf16_surrogate_in_topic(connected, version):
    topic = b"bad/\xed\xa0\x80"
    after_connect(connected, version,
                  m.publish(topic, b"x", version=version), MALFORMED)


@BOTH
def test_MQTT_1_5_4_2_null_character_in_topic(connected, version):
    after_connect(connected, version,
                  m.publish(b"bad/\x00/t", b"x", version=version), MALFORMED)


@BOTH
def test_MQTT_1_5_4_2_null_character_in_topic_filter(connected, version):
    after_connect(connected, version,
                  m.subscribe(1, [(b"a/\x00", 0)], version=version), MALFORMED)


@BOTH
def test_MQTT_3_1_3_4_client_id_invalid_utf8(mqtt, version):
    c = mqtt(version)
    c.send(m.connect(b"id\xff", version=version))
    got = c.expect_closed()
    if version == m.V311:
        assert got == [] or [p.rc for p in got] == [m.CONNACK_IDENTIFIER_REJECTED]
    else:
        assert all(p.type == m.CONNACK and p.rc in (
            MALFORMED, m.RC_CLIENT_IDENTIFIER_NOT_VALID) for p in got), got


# -- topics ------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("topic", ["a/+/b", "a/#", "+", "#"])
def test_MQTT_3_3_2_2_wildcard_in_publish_topic(connected, mqtt, version, topic):
    sub = connected("sub", version)
    sub.subscribe("#", 0)
    after_connect(connected, version, m.publish(topic, b"x", version=version),
                  (PROTOCOL, m.RC_TOPIC_NAME_INVALID))
    sub.expect_nothing(0.3)


@BOTH
def test_MQTT_4_7_3_1_empty_topic_name(connected, version):
    after_connect(connected, version, m.publish("", b"x", version=version),
                  (PROTOCOL, m.RC_TOPIC_NAME_INVALID))


@BOTH
def test_MQTT_2_2_1_3_publish_qos1_packet_identifier_zero(connected, version):
    after_connect(connected, version,
                  m.publish("a/b", b"x", qos=1, pid=0, version=version),
                  (MALFORMED, PROTOCOL))


@BOTH
def test_MQTT_2_2_1_3_subscribe_packet_identifier_zero(connected, version):
    after_connect(connected, version,
                  m.subscribe(0, [("a", 0)], version=version),
                  (MALFORMED, PROTOCOL))


# -- SUBSCRIBE / UNSUBSCRIBE payloads ----------------------------------------

@BOTH
def test_MQTT_3_8_3_2_subscribe_without_filters(connected, version):
    after_connect(connected, version, m.subscribe(1, [], version=version),
                  (MALFORMED, PROTOCOL))


@BOTH
def test_MQTT_3_10_3_2_unsubscribe_without_filters(connected, version):
    after_connect(connected, version, m.unsubscribe(1, [], version=version),
                  (MALFORMED, PROTOCOL))


@BOTH
def test_MQTT_3_8_3_5_subscribe_options_reserved_bits(connected, version):
    opts = 0xC0 | 1 if version == m.V5 else 0x04 | 1
    after_connect(connected, version,
                  m.subscribe(1, [("a", opts)], version=version), MALFORMED)


@BOTH
def test_MQTT_3_8_3_5_subscribe_qos_3(connected, version):
    # 5.0 3.8.3.1 calls Maximum QoS 3 a Protocol Error; 3.1.1 calls it malformed.
    after_connect(connected, version,
                  m.subscribe(1, [("a", 3)], version=version), (PROTOCOL, MALFORMED))


def test_retain_handling_3_is_protocol_error(connected):
    after_connect(connected, m.V5, m.subscribe(1, [("a", 0x30)]),
                  (PROTOCOL, MALFORMED))


def test_subscription_identifier_0_is_protocol_error(connected):
    after_connect(connected, m.V5,
                  m.subscribe(1, [("a", 0)], props={m.SUBSCRIPTION_IDENTIFIER: 0}),
                  (PROTOCOL, MALFORMED))


@pytest.mark.deviates_mosquitto(
    "MQTT-3.3.4-6: 2.0.11 accepts a Subscription Identifier in a client PUBLISH")
def test_MQTT_3_3_4_6_subscription_identifier_in_client_publish(connected):
    after_connect(connected, m.V5,
                  m.publish("a/b", b"x", props={m.SUBSCRIPTION_IDENTIFIER: 3}),
                  PROTOCOL)


# -- properties --------------------------------------------------------------

@pytest.mark.deviates_mosquitto(
    "sec 2.2.2.2: 2.0.11 closes on a duplicated property without DISCONNECT 0x82")
def test_duplicate_property_in_publish(connected):
    props = [(m.PAYLOAD_FORMAT_INDICATOR, 0), (m.PAYLOAD_FORMAT_INDICATOR, 0)]
    after_connect(connected, m.V5, m.publish("a/b", b"x", props=props), PROTOCOL)


@pytest.mark.deviates_mosquitto(
    "sec 2.2.2.2: 2.0.11 closes on a duplicated property without DISCONNECT 0x82")
def test_duplicate_property_in_subscribe(connected):
    props = [(m.SUBSCRIPTION_IDENTIFIER, 1), (m.SUBSCRIPTION_IDENTIFIER, 2)]
    after_connect(connected, m.V5, m.subscribe(1, [("a", 0)], props=props),
                  PROTOCOL)


@pytest.mark.deviates_mosquitto(
    "sec 3.1.2.11: 2.0.11 closes on a duplicated CONNECT property without CONNACK 0x82")
def test_duplicate_property_in_connect(mqtt):
    c = mqtt(m.V5)
    c.send(m.connect("dup", props=[(m.SESSION_EXPIRY_INTERVAL, 1),
                                   (m.SESSION_EXPIRY_INTERVAL, 2)]))
    m.expect_refused_connack(c, PROTOCOL)


def test_property_not_allowed_in_packet(connected):
    # Session Expiry Interval is a CONNECT/CONNACK/DISCONNECT property: "an Identifier which
    # is not valid for its packet type" is a Malformed Packet (sec 2.2.2.2).
    after_connect(connected, m.V5, m.publish(
        "a/b", b"x", props={m.SESSION_EXPIRY_INTERVAL: 5}), MALFORMED)


def test_connect_property_not_allowed_is_malformed(mqtt):
    # Payload Format Indicator belongs to PUBLISH and the will, not to CONNECT; Session Expiry
    # Interval belongs to CONNECT, not to the will (sec 2.2.2.2).
    c = mqtt(m.V5)
    c.send(m.connect("scope1", props=[(m.PAYLOAD_FORMAT_INDICATOR, 1)]))
    m.expect_refused_connack(c, MALFORMED)
    c = mqtt(m.V5)
    c.send(m.connect("scope2", will={"topic": "w", "payload": b"",
                                     "props": [(m.SESSION_EXPIRY_INTERVAL, 1)]}))
    m.expect_refused_connack(c, MALFORMED)


def test_MQTT_2_1_3_1_connect_with_reserved_flags(mqtt):
    c = mqtt(m.V5)
    c.send(bytes([0x11]) + m.connect("flags")[1:])
    m.expect_refused_connack(c, MALFORMED)


def test_unknown_property_identifier(connected):
    body = m.utf8("a/b") + bytes([2, 0x7F, 0x00]) + b"x"
    after_connect(connected, m.V5, m.packet(m.PUBLISH, 0, body), MALFORMED)


def test_property_length_beyond_packet(connected):
    body = m.utf8("a/b") + bytes([20, 0x01, 0x00])
    after_connect(connected, m.V5, m.packet(m.PUBLISH, 0, body), MALFORMED)


@pytest.mark.deviates_mosquitto(
    "sec 3.1.2.11: 2.0.11 closes on Maximum Packet Size 0 without a CONNACK")
def test_connect_maximum_packet_size_0(mqtt):
    c = mqtt(m.V5)
    c.send(m.connect("mps0", props={m.MAXIMUM_PACKET_SIZE: 0}))
    m.expect_refused_connack(c, PROTOCOL)


@pytest.mark.deviates_mosquitto(
    "sec 3.1.2.11: 2.0.11 closes on Receive Maximum 0 without a CONNACK")
def test_connect_receive_maximum_0(mqtt):
    c = mqtt(m.V5)
    c.send(m.connect("rm0", props={m.RECEIVE_MAXIMUM: 0}))
    m.expect_refused_connack(c, PROTOCOL)


# -- truncation and sequencing ------------------------------------------------

@BOTH
def test_publish_too_short_for_topic(connected, version):
    after_connect(connected, version, bytes([0x30, 0x01, 0x00]), MALFORMED)


@BOTH
def test_subscribe_topic_length_past_end(connected, version):
    body = m.u16(1) + (b"\x00" if version == m.V5 else b"") + m.u16(10) + b"abc"
    after_connect(connected, version, m.packet(m.SUBSCRIBE, 2, body), MALFORMED)


@BOTH
def test_truncated_packet_then_close_leaves_broker_healthy(mqtt, version):
    c = mqtt(version)
    c.connect("trunc", version=version)
    c.send(m.publish("a/b", b"x" * 100, version=version)[:20])
    c.abort()
    still_serving(mqtt)


@BOTH
def test_truncated_connect_then_close(mqtt, version):
    c = mqtt(version)
    c.send(m.connect("half", version=version)[:7])
    c.abort()
    still_serving(mqtt)


@BOTH
def test_MQTT_3_1_0_2_second_connect(connected, version):
    rc = PROTOCOL
    c = connected("second", version)
    c.send_quietly(m.connect("second", version=version))
    if version == m.V5:
        got = c.expect_closed()
        # mosquitto omits the DISCONNECT; when sent it must be 0x82.
        assert all(p.type == m.DISCONNECT and p.rc == rc for p in got), got
    else:
        c.expect_disconnect()


@BOTH
def test_connack_never_sent_for_garbage(mqtt, version):
    c = mqtt(version)
    c.send_quietly(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    got = c.expect_closed()
    assert all(p.type == m.CONNACK and p.rc >= 0x01 for p in got), got


def test_packet_too_large_for_server_disconnect_0x95(connected):
    c = connected("huge")
    limit = c.connack.prop(m.MAXIMUM_PACKET_SIZE)
    if limit is None:
        pytest.skip("server advertises no Maximum Packet Size")
    header = m.fixed_header(m.PUBLISH, 0, limit)   # header + limit > limit
    c.send_quietly(header + m.utf8("a/b") + b"\x00" + b"z" * 1000)
    c.expect_disconnect(m.RC_PACKET_TOO_LARGE)
