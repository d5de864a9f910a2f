"""MQTT 3.1.1 sections 3.12-3.14: PINGREQ and DISCONNECT."""

import mqtt_raw as m

V = m.V311


def test_MQTT_3_12_4_1_pingreq_answered_with_pingresp(connected):
    c = connected("ping", V)
    resp = c.ping()
    assert resp.raw == bytes([0xD0, 0x00])


def test_MQTT_3_12_4_1_pingresp_for_each_pingreq(connected):
    c = connected("ping3", V)
    c.send(m.pingreq() * 3)
    for _ in range(3):
        c.expect(m.PINGRESP)


def test_MQTT_3_14_1_1_disconnect_reserved_bits_close(connected):
    w = connected("watch", V)
    w.subscribe("will/#", 0)
    c = connected("dbits", V, will={"topic": "will/d", "payload": b"w"})
    c.send(bytes([0xE1, 0x00]))
    c.expect_disconnect()
    # Not a valid DISCONNECT, so the Will is still published.
    w.expect_publish(topic="will/d")


def test_MQTT_3_14_4_1_server_closes_after_disconnect(connected):
    c = connected("bye", V)
    c.send(m.disconnect(version=V))
    c.expect_closed()


def test_MQTT_3_14_4_2_packets_after_disconnect_ignored(connected):
    sub = connected("sub", V)
    sub.subscribe("after/disc", 0)
    c = connected("bye", V)
    c.send_quietly(m.disconnect(version=V)
                   + m.publish("after/disc", b"late", version=V))
    c.expect_closed()
    sub.expect_nothing(0.5)
