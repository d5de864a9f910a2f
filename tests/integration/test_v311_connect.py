"""MQTT 3.1.1 section 3.1 / 3.2: CONNECT and CONNACK, seen from a client."""

import time

import pytest

import mqtt_raw as m
from conftest import IS_MOSQUITTO

V = m.V311


def test_MQTT_3_1_0_1_first_packet_must_be_connect(mqtt):
    c = mqtt(V)
    c.send(m.publish("a/b", b"x", version=V))
    c.expect_disconnect()


def test_MQTT_3_1_0_1_pingreq_before_connect_closes(mqtt):
    c = mqtt(V)
    c.send(m.pingreq())
    c.expect_disconnect()


def test_MQTT_3_1_0_2_second_connect_is_protocol_violation(connected):
    c = connected("second-connect", V)
    c.send(m.connect("second-connect", version=V))
    c.expect_disconnect()


def test_MQTT_3_1_2_1_wrong_protocol_name_not_accepted(mqtt):
    c = mqtt(V)
    c.send(m.connect("badname", version=V, protocol_name="MQTX"))
    got = c.expect_closed()
    # MAY disconnect, or answer under another specification; it must never
    # accept the connection under this one.
    assert all(not (p.type == m.CONNACK and p.rc == 0) for p in got), got


def test_mqtt_3_1_mqisdp_is_served(mqtt):
    c = mqtt(V)
    c.send(m.connect("old-unit", version=V, protocol_name="MQIsdp", protocol_level=3))
    assert c.expect(m.CONNACK).rc == 0
    c.ping()


def test_mqtt_3_1_empty_client_id_rejected(mqtt):
    # MQTT 3.1 (level 3) has no empty client id: 0x02 Identifier rejected.
    c = mqtt(V)
    c.send(m.connect("", version=V, protocol_name="MQIsdp", protocol_level=3))
    got = c.expect_closed()
    assert len(got) == 1 and got[0].type == m.CONNACK and got[0].rc == 0x02, got


def test_mqtt_3_1_connack_has_no_session_present_flag(mqtt):
    # MQTT 3.1's first CONNACK byte is reserved ("not used"): Session Present came with 3.1.1.
    def connect_31():
        c = mqtt(V)
        c.send(m.connect("old-unit-2", version=V, clean=False, protocol_name="MQIsdp",
                         protocol_level=3))
        return c, c.expect(m.CONNACK)

    c, ack = connect_31()
    c.subscribe("old/t", qos=1)
    c.disconnect()
    c, ack = connect_31()  # the session is resumed, but the 3.1 CONNACK cannot say so
    assert ack.rc == 0 and not ack.session_present, ack


def test_mqtt_3_1_invalid_filter_closes(mqtt):
    # MQTT 3.1's SUBACK has only granted QoS values (0x80 came with 3.1.1): the client is
    # closed instead.
    c = mqtt(V)
    c.send(m.connect("old-unit-3", version=V, protocol_name="MQIsdp", protocol_level=3))
    c.expect(m.CONNACK)
    c.send(m.subscribe(1, [("a/#/b", 0)], version=V))
    got = c.expect_closed()
    assert not any(p.type == m.SUBACK for p in got), got


def test_mqtt_3_1_resends_with_dup_are_answered(mqtt):
    # MQTT 3.1 section 2.1: DUP is set on a re-sent PUBREL, SUBSCRIBE or UNSUBSCRIBE (3.1.1
    # made those flags fixed). A 3.1 unit retrying its QoS 2 flow after a reconnect completes it.
    c = mqtt(V)
    c.send(m.connect("old-unit-4", version=V, protocol_name="MQIsdp", protocol_level=3))
    c.expect(m.CONNACK)
    c.send(m.publish("old/q2", b"x", qos=2, pid=7, version=V))
    assert c.expect(m.PUBREC).pid == 7
    c.send(m.packet(m.PUBREL, 0x0A, m.u16(7)))
    assert c.expect(m.PUBCOMP).pid == 7
    c.send(m.subscribe(8, [("old/t", 1)], version=V, flags=0x0A))
    assert c.expect(m.SUBACK).reason_codes == [1]
    c.send(m.unsubscribe(9, ["old/t"], version=V, flags=0x0A))
    assert c.expect(m.UNSUBACK).pid == 9


def test_mqtt_3_1_1_dup_on_pubrel_closes(connected):
    # In 3.1.1 PUBREL's flags are 0010 [MQTT-3.6.1-1]: anything else is malformed.
    c = connected("dup-pubrel", V)
    c.send(m.publish("new/q2", b"x", qos=2, pid=7, version=V))
    c.expect(m.PUBREC)
    c.send_quietly(m.packet(m.PUBREL, 0x0A, m.u16(7)))
    got = c.expect_closed()
    assert not any(p.type == m.PUBCOMP for p in got), got


def test_MQTT_3_1_2_2_unsupported_protocol_level_connack_0x01(mqtt):
    c = mqtt(V)
    c.send(m.connect("level2", version=V, protocol_level=2))
    got = c.expect_closed()
    assert len(got) == 1 and got[0].type == m.CONNACK, got
    assert got[0].rc == m.CONNACK_UNACCEPTABLE_PROTOCOL
    assert not got[0].session_present


def test_MQTT_3_1_2_3_reserved_connect_flag_closes(mqtt):
    c = mqtt(V)
    c.send(m.connect("reserved", version=V, reserved=1))
    c.expect_disconnect()


def test_MQTT_3_1_2_22_password_without_user_name_closes(mqtt):
    c = mqtt(V)
    c.send(m.connect("pwonly", version=V, password=b"secret"))
    got = c.expect_closed()
    assert all(not (p.type == m.CONNACK and p.rc == 0) for p in got), got


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.2-24: 2.0.11 checks keep alive on a coarse timer and closes a "
    "1 s keep-alive connection only after ~5 s")
def test_MQTT_3_1_2_24_keep_alive_closes_after_one_and_a_half_times(connected):
    c = connected("ka", V, keepalive=1)
    start = time.monotonic()
    c.expect_disconnect(timeout=4)
    elapsed = time.monotonic() - start
    assert 1.0 <= elapsed <= 3.0, "closed after %.2fs for keep alive 1s" % elapsed


def test_MQTT_3_1_2_24_keep_alive_kept_by_pingreq(connected):
    c = connected("ka-ping", V, keepalive=1)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        time.sleep(0.4)
        c.ping()


def test_MQTT_3_1_2_24_keep_alive_kept_by_other_packets(connected):
    c = connected("ka-pub", V, keepalive=1)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        time.sleep(0.4)
        c.publish("ka/topic", b"x", qos=1)


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.2-24: 2.0.11 checks keep alive on a coarse timer and closes the trickle after ~11 s")
def test_MQTT_3_1_2_24_trickled_bytes_of_an_unfinished_packet_do_not_keep_alive(connected):
    # Only a Control Packet counts: a byte now and then that never completes one is a
    # slowloris, not a live client.
    c = connected("ka-trickle", V, keepalive=1)
    frame = m.publish("ka/trickle", b"x" * 1000, version=V)
    c.send(frame[:10])
    start = time.monotonic()
    closed = False
    for byte in frame[10:30]:
        time.sleep(0.3)
        try:
            c.send(bytes([byte]))
        except OSError:
            closed = True
            break
    if not closed:
        c.expect_closed(timeout=2)
    elapsed = time.monotonic() - start
    assert elapsed <= 3.5, "trickle kept a keep-alive-1 connection for %.2fs" % elapsed


def test_MQTT_3_1_2_24_large_packet_arriving_steadily_is_not_cut_off(connected):
    # A packet bigger than what the link carries in one and a half keep alives: its bytes keep
    # coming, so the client is alive, though no whole packet came for 4 s.
    sub = connected("ka-big-sub", V)
    sub.subscribe("ka/big", 1)
    c = connected("ka-big", V, keepalive=1)
    payload = bytes(range(256)) * 80
    frame = m.publish("ka/big", payload, qos=1, pid=7, version=V)
    chunk = 2048
    for offset in range(0, len(frame), chunk):
        c.send(frame[offset:offset + chunk])
        time.sleep(0.4)
    assert c.expect(m.PUBACK).pid == 7
    assert sub.expect(m.PUBLISH).payload == payload


def test_MQTT_3_1_2_24_keep_alive_zero_never_times_out(connected):
    c = connected("ka0", V, keepalive=0)
    c.expect_nothing(2.5)
    c.ping()


def test_MQTT_3_1_3_1_payload_fields_in_order(connected, mqtt):
    sub = connected("order-sub", V)
    sub.subscribe("will/order", 0)
    c = mqtt(V)
    c.connect("order", will={"topic": "will/order", "payload": b"bye"},
              username="user", password=b"pw")
    c.abort()
    sub.expect_publish(topic="will/order", payload=b"bye")


def test_MQTT_3_1_3_5_allows_23_alphanumeric_bytes(connected):
    cid = "0123456789abcdefghijkXZ"
    assert len(cid) == 23
    c = connected(cid, V)
    c.ping()


def test_MQTT_3_1_3_6_zero_length_client_id_clean_session_accepted(connected):
    a = connected("", V, clean=True)
    b = connected("", V, clean=True)
    # Two anonymous clients get distinct identities: neither takes over the
    # other.
    a.ping()
    b.ping()


def test_MQTT_3_1_3_8_zero_length_client_id_without_clean_session_0x02(mqtt):
    c = mqtt(V)
    c.send(m.connect("", version=V, clean=False))
    got = c.expect_closed()
    assert len(got) == 1 and got[0].type == m.CONNACK, got
    assert got[0].rc == m.CONNACK_IDENTIFIER_REJECTED
    assert not got[0].session_present  # MQTT-3.2.2-4


@pytest.mark.skipif(IS_MOSQUITTO, reason="brokerd's own log line")
def test_a_refused_connect_is_logged_at_the_default_level(broker, mqtt):
    # An operator must find why a vehicle in the field cannot connect, at the info level.
    c = mqtt(V)
    c.send(m.connect("", version=V, clean=False))
    c.expect_closed()
    deadline = time.monotonic() + 3
    while "CONNECT(s) refused" not in broker.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "empty client id without clean session" in broker.log(), broker.log()[-2000:]


def test_MQTT_3_1_4_1_malformed_connect_closed_without_connack(mqtt):
    c = mqtt(V)
    # Client identifier length runs past the end of the packet.
    body = m.utf8("MQTT") + bytes([4, 2]) + m.u16(60) + m.u16(20) + b"abc"
    c.send(m.packet(m.CONNECT, 0, body))
    c.expect_disconnect()


def test_MQTT_3_1_4_2_existing_client_disconnected_on_takeover(connected):
    old = connected("takeover", V)
    new = connected("takeover", V)
    old.expect_disconnect()
    new.ping()


def test_MQTT_3_1_4_4_connack_return_code_zero(mqtt):
    c = mqtt(V)
    ack = c.connect("ok", version=V)
    assert ack.rc == 0
    assert ack.raw == bytes([0x20, 0x02, 0x00, 0x00])


def test_MQTT_3_1_4_5_data_after_rejected_connect_not_processed(connected, mqtt):
    sub = connected("rej-sub", V)
    sub.subscribe("rejected/topic", 0)
    c = mqtt(V)
    c.send(m.connect("", version=V, clean=False)
           + m.publish("rejected/topic", b"must not arrive", version=V))
    c.expect_closed()
    sub.expect_nothing(0.7)


def test_MQTT_3_2_0_1_first_packet_from_server_is_connack(mqtt):
    c = mqtt(V)
    c.send(m.connect("first", version=V) + m.pingreq())
    c.expect(m.CONNACK)
    c.expect(m.PINGRESP)


def test_MQTT_3_2_2_1_clean_session_session_present_0(mqtt, connected):
    s = connected("sp-clean", V, clean=False)
    s.subscribe("sp/clean", 1)
    s.disconnect()
    c = mqtt(V)
    ack = c.connect("sp-clean", clean=True)
    assert ack.session_present is False


def test_MQTT_3_2_2_2_session_present_1_when_state_stored(mqtt, connected):
    s = connected("sp-stored", V, clean=False)
    s.subscribe("sp/stored", 1)
    s.disconnect()
    c = mqtt(V)
    ack = c.connect("sp-stored", clean=False)
    assert ack.session_present is True


def test_MQTT_3_2_2_3_session_present_0_when_no_state(mqtt):
    c = mqtt(V)
    ack = c.connect("sp-new", clean=False)
    assert ack.session_present is False


def test_MQTT_3_2_2_4_refused_connack_session_present_0(mqtt, connected):
    s = connected("sp-refused", V, clean=False)
    s.subscribe("sp/refused", 1)
    s.disconnect()
    c = mqtt(V)
    c.send(m.connect("sp-refused", version=V, clean=False, protocol_level=2))
    got = c.expect_closed()
    assert got and got[0].type == m.CONNACK and got[0].rc != 0, got
    assert got[0].session_present is False


def test_MQTT_3_2_2_5_refused_connack_then_close(mqtt):
    c = mqtt(V)
    c.send(m.connect("refused", version=V, protocol_level=2))
    got = c.expect_closed()
    assert [p.type for p in got] == [m.CONNACK], got
