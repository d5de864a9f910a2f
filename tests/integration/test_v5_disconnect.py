"""MQTT 5.0 section 3.14: DISCONNECT, both directions."""

import time

import pytest

import mqtt_raw as m

V = m.V5
WILL = {"topic": "will/t", "payload": b"gone", "qos": 1}


def watcher(connected):
    w = connected("watcher")
    w.subscribe("will/#", 1)
    return w


def test_MQTT_3_14_4_3_normal_disconnect_discards_will(connected):
    w = watcher(connected)
    c = connected("polite", will=WILL)
    c.send(m.disconnect(0))
    c.expect_closed()   # MQTT-3.14.4-2: the connection ends
    w.expect_nothing(1.0)


def test_disconnect_with_will_message_0x04_publishes_will(connected):
    w = watcher(connected)
    c = connected("willing", will=WILL)
    c.send(m.disconnect(m.RC_DISCONNECT_WITH_WILL))
    c.expect_closed()
    w.expect_publish(topic="will/t", payload=b"gone")


@pytest.mark.deviates_mosquitto(
    "MQTT-3.3.2-8: 2.0.11 answers Topic Alias 0 with 0x81, not 0x94")
def test_MQTT_3_14_2_3_reason_string_left_out_beyond_client_maximum(connected):
    # Topic Alias 0 is refused with 0x94; its reason string would not fit in 16 bytes.
    c = connected("tiny", props={m.MAXIMUM_PACKET_SIZE: 16})
    c.send_quietly(m.publish("a", b"x", props={m.TOPIC_ALIAS: 0}))
    got = c.expect_closed()
    assert got and got[-1].type == m.DISCONNECT and got[-1].rc == m.RC_TOPIC_ALIAS_INVALID, got
    assert all(len(p.raw) <= 16 for p in got), got


@pytest.mark.deviates_mosquitto(
    "MQTT-3.14.1-1: 2.0.11 closes without sending DISCONNECT 0x81")
def test_MQTT_3_14_1_1_reserved_flags_disconnect_0x81(connected):
    c = connected("bits")
    c.send(bytes([0xE2, 0x00]))
    c.expect_disconnect(m.RC_MALFORMED_PACKET)


def test_MQTT_3_14_0_1_no_disconnect_before_connack(mqtt):
    c = mqtt(V)
    c.send(m.pingreq())
    assert c.expect_closed() == []


def test_MQTT_3_14_2_2_server_disconnect_has_no_session_expiry(connected):
    c = connected("err")
    c.send(m.publish("a/+", b"x"))  # protocol violation
    d = c.expect_disconnect()
    assert m.SESSION_EXPIRY_INTERVAL not in d.props
    assert d.rc >= 0x80                 # MQTT-3.14.2-1


def test_session_expiry_in_disconnect_after_zero_is_protocol_error(connected, mqtt):
    c = connected("se", clean=False)   # Session Expiry 0
    c.send(m.disconnect(0, props={m.SESSION_EXPIRY_INTERVAL: 30}))
    got = c.expect_closed()
    assert all(p.type == m.DISCONNECT and p.rc == m.RC_PROTOCOL_ERROR
               for p in got), got
    again = mqtt(V)
    assert again.connect("se", clean=False).session_present is False


@pytest.mark.deviates_mosquitto(
    "brokerd choice: DISCONNECT 0x8B to v5 clients on shutdown; 2.0.11 "
    "closes connections without it")
def test_server_shutdown_sends_disconnect_0x8b(broker, connected):
    c = connected("shut")
    v3 = connected("shut3", m.V311)
    code = broker.stop()
    assert code == 0, broker.log()[-2000:]
    d = c.expect_disconnect(m.RC_SERVER_SHUTTING_DOWN, timeout=2)
    assert m.SESSION_EXPIRY_INTERVAL not in d.props
    assert v3.expect_closed(timeout=2) == []


def test_server_shutdown_closes_all_connections(broker, connected):
    c = connected("shut")
    code = broker.stop()
    assert code == 0, broker.log()[-2000:]
    got = c.expect_closed(timeout=2)
    assert all(p.type == m.DISCONNECT for p in got)


@pytest.mark.deviates_mosquitto("sec 4.13: 2.0.11 takes a PINGREQ with flags; it sends no DISCONNECT")
def test_disconnect_reaches_a_client_behind_reading_that_is_still_sending(broker, connected):
    # A client behind reading (600 KB queued for it) sends a malformed packet and, before it
    # reads, one more packet. Closing a socket with unread input, or taking input after the
    # close, makes the kernel reset the connection and drop what it still had to send: the
    # queued messages and the DISCONNECT with its reason code.
    slow = m.Client(broker.port, receive_buffer=4096)
    slow.connect("slow")
    slow.subscribe("slow/t", 0)
    pub = connected("pub")
    for _ in range(60):
        pub.send(m.publish("slow/t", b"x" * 10000))
    pub.ping()  # all routed
    slow.send(bytes([0xC1, 0x00]))  # PINGREQ with a reserved flag set: malformed
    time.sleep(0.05)
    slow.send_quietly(bytes([0xC0, 0x00]))  # sent before the client saw anything
    time.sleep(0.3)
    got = slow.expect_closed(timeout=10)
    slow.close()
    assert got and got[-1].type == m.DISCONNECT and got[-1].rc == m.RC_MALFORMED_PACKET, \
        "%d packets, last type %r" % (len(got), got[-1].type if got else None)
