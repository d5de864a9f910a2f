"""MQTT 5.0 sections 3.3.2.3.5-3.3.2.3.9 and 4.10: request / response and
properties forwarded unchanged."""

import pytest

import mqtt_raw as m

V = m.V5


def roundtrip(connected, props, payload=b"req"):
    sub = connected("responder")
    sub.subscribe("req/t", 1)
    connected("requester").publish("req/t", payload, qos=1, props=props)
    return sub.receive(1)[0]


def test_MQTT_3_3_2_15_response_topic_forwarded(connected):
    p = roundtrip(connected, {m.RESPONSE_TOPIC: "resp/client-\u00e9/1"})
    assert p.prop(m.RESPONSE_TOPIC) == "resp/client-\u00e9/1"


def test_MQTT_3_3_2_16_correlation_data_forwarded(connected):
    data = bytes(range(256))
    p = roundtrip(connected, {m.CORRELATION_DATA: data})
    assert p.prop(m.CORRELATION_DATA) == data


def test_MQTT_3_3_2_17_user_properties_forwarded_unaltered(connected):
    props = [(m.USER_PROPERTY, ("k", "v")), (m.USER_PROPERTY, ("k", "v")),
             (m.USER_PROPERTY, ("\u00fcnic\u00f8de", "")),
             (m.USER_PROPERTY, ("", "empty key"))]
    p = roundtrip(connected, props)
    assert p.prop(m.USER_PROPERTY) == [v for _, v in props]


def test_MQTT_3_3_2_18_user_property_order_kept(connected):
    pairs = [("z", "1"), ("a", "2"), ("m", "3"), ("a", "4"), ("z", "5")]
    p = roundtrip(connected, [(m.USER_PROPERTY, kv) for kv in pairs])
    assert p.prop(m.USER_PROPERTY) == pairs


def test_request_response_exchange(connected):
    responder = connected("responder")
    responder.subscribe("svc/req", 1)
    requester = connected("requester")
    requester.subscribe("svc/resp/requester", 1)
    requester.publish("svc/req", b"ping", qos=1,
                      props={m.RESPONSE_TOPIC: "svc/resp/requester",
                             m.CORRELATION_DATA: b"id-42"})
    req = responder.receive(1)[0]
    responder.publish(req.prop(m.RESPONSE_TOPIC), b"pong", qos=1,
                      props={m.CORRELATION_DATA: req.prop(m.CORRELATION_DATA)})
    resp = requester.receive(1)[0]
    assert resp.payload == b"pong"
    assert resp.prop(m.CORRELATION_DATA) == b"id-42"


def test_request_response_information_is_a_string_if_given(mqtt):
    c = mqtt(V)
    ack = c.connect("rri", props={m.REQUEST_RESPONSE_INFORMATION: 1})
    info = ack.prop(m.RESPONSE_INFORMATION)
    assert info is None or isinstance(info, str)


@pytest.mark.deviates_mosquitto(
    "MQTT-3.3.2-14: 2.0.11 accepts a Response Topic containing wildcards")
def test_MQTT_3_3_2_14_wildcard_in_response_topic_is_protocol_error(connected):
    c = connected("req")
    c.send(m.publish("req/t", b"x", props={m.RESPONSE_TOPIC: "resp/#"}))
    c.expect_disconnect(m.RC_PROTOCOL_ERROR)
