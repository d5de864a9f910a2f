// The packet-vector table. Valid rows hold the packet a decoder must produce; invalid rows hold
// the reason code, with the specification statement in the name where one applies.
#include "support/packet_vectors.hpp"

#include <cstdio>
#include <memory>
#include <utility>

namespace broker::test {
namespace {

using namespace broker::protocol;
using V = ProtocolVersion;
using R = ReasonCode;

PayloadPtr payload(std::string s) { return Payload::copy_of(s); }

class Table {
 public:
  void ok(std::string name, V v, std::vector<std::uint8_t> bytes, Packet p, bool canonical = true) {
    PacketVector row{std::move(name), v, std::move(bytes), false, std::move(p), R::Success, canonical};
    rows_.push_back(std::move(row));
  }
  void bad(std::string name, V v, std::vector<std::uint8_t> bytes, R reason) {
    PacketVector row{std::move(name), v, std::move(bytes), true, Pingreq{}, reason, false};
    rows_.push_back(std::move(row));
  }
  std::vector<PacketVector> take() { return std::move(rows_); }

 private:
  std::vector<PacketVector> rows_;
};

// A plain 3.1.1 CONNECT body up to (and including) the client id, with `flags`.
Bytes connect_v4(std::uint8_t flags, std::string_view client = "c1") {
  return Bytes().str("MQTT").u8(4).u8(flags).u16(60).str(client);
}
// A 5.0 CONNECT body up to the client id, with `props` as its properties.
Bytes connect_v5(std::uint8_t flags, const Bytes& props, std::string_view client = "c1") {
  return Bytes().str("MQTT").u8(5).u8(flags).u16(60).props(props).str(client);
}
Bytes publish_v5(std::string_view topic, const Bytes& props) {
  return Bytes().str(topic).props(props).raw("x");
}
Bytes subscribe_v5(std::uint8_t options, std::string_view filter = "a/#", const Bytes& props = {}) {
  return Bytes().u16(1).props(props).str(filter).u8(options);
}

void add_v3_rows(Table& t) {
  {
    Connect c;
    c.version = V::V311;
    c.keep_alive = 60;
    c.client_id = "c1";
    t.ok("3.1.1 CONNECT: minimal, clean session", V::V311, connect_v4(0x02).frame(0x10), c);
  }
  {
    Connect c;
    c.version = V::V31;
    c.keep_alive = 10;
    c.clean_start = false;
    c.client_id = "old";
    t.ok("3.1 CONNECT: MQIsdp level 3", V::V311,
         Bytes().str("MQIsdp").u8(3).u8(0x00).u16(10).str("old").frame(0x10), c);
  }
  {
    Connect c;
    c.version = V::V311;
    c.keep_alive = 60;
    c.client_id = "c1";
    c.will = Will{"will/t", payload("bye"), 1, true, {}};
    c.username = "u\xC3\xA9";  // U+00E9 in UTF-8
    c.password = std::string("p\0w", 3);
    t.ok("3.1.1 CONNECT: will QoS 1 retained, user name, binary password", V::V311,
         connect_v4(0xEE).str("will/t").str("bye").str("u\xC3\xA9").str(std::string_view("p\0w", 3)).frame(0x10),
         c);
  }
  {
    Connect c;
    c.version = V::V311;
    c.keep_alive = 60;
    c.client_id = "";
    t.ok("3.1.1 CONNECT: empty client id", V::V311, connect_v4(0x02, "").frame(0x10), c);
  }
  t.ok("3.1.1 CONNACK: accepted, session present", V::V311, {0x20, 0x02, 0x01, 0x00},
       Connack{true, R::Success, {}});
  t.ok("3.1.1 CONNACK: not authorized (5)", V::V311, {0x20, 0x02, 0x00, 0x05},
       Connack{false, R::NotAuthorized, {}});
  t.ok("3.1.1 CONNACK: unacceptable protocol version (1)", V::V311, {0x20, 0x02, 0x00, 0x01},
       Connack{false, R::UnsupportedProtocolVersion, {}});
  t.ok("3.1.1 PUBLISH: QoS 0", V::V311, Bytes().str("a/b").raw("hi").frame(0x30),
       Publish{"a/b", payload("hi"), 0, false, false, 0, {}});
  t.ok("3.1.1 PUBLISH: QoS 1 dup retain", V::V311, Bytes().str("a").u16(10).raw("p").frame(0x3B),
       Publish{"a", payload("p"), 1, true, true, 10, {}});
  t.ok("3.1.1 PUBLISH: QoS 2 empty payload", V::V311, Bytes().str("x/y/z").u16(0xFFFF).frame(0x34),
       Publish{"x/y/z", payload(""), 2, false, false, 0xFFFF, {}});
  t.ok("3.1.1 PUBLISH: $SYS topic with UTF-8", V::V311,
       Bytes().str("$SYS/\xE2\x82\xAC").raw(std::string_view("\0\1", 2)).frame(0x30),
       Publish{"$SYS/\xE2\x82\xAC", payload(std::string("\0\1", 2)), 0, false, false, 0, {}});
  t.ok("3.1.1 PUBACK", V::V311, {0x40, 0x02, 0x00, 0x07}, Ack{PacketType::Puback, 7, R::Success, {}});
  t.ok("3.1.1 PUBREC", V::V311, {0x50, 0x02, 0x01, 0x00}, Ack{PacketType::Pubrec, 256, R::Success, {}});
  t.ok("3.1.1 PUBREL", V::V311, {0x62, 0x02, 0x00, 0x01}, Ack{PacketType::Pubrel, 1, R::Success, {}});
  t.ok("3.1.1 PUBCOMP", V::V311, {0x70, 0x02, 0xFF, 0xFF}, Ack{PacketType::Pubcomp, 0xFFFF, R::Success, {}});
  {
    Subscribe s;
    s.packet_id = 3;
    s.entries = {SubscribeEntry{"a/+", 0, false, false, 0}, SubscribeEntry{"#", 2, false, false, 0}};
    t.ok("3.1.1 SUBSCRIBE: two filters", V::V311,
         Bytes().u16(3).str("a/+").u8(0).str("#").u8(2).frame(0x82), s);
  }
  t.ok("3.1.1 SUBACK: every return code", V::V311, {0x90, 0x06, 0x00, 0x03, 0x00, 0x01, 0x02, 0x80},
       Suback{3, {R::Success, R::GrantedQos1, R::GrantedQos2, R::UnspecifiedError}, {}});
  t.ok("3.1.1 UNSUBSCRIBE: two filters", V::V311, Bytes().u16(4).str("a/+").str("b").frame(0xA2),
       Unsubscribe{4, {"a/+", "b"}, {}});
  t.ok("3.1.1 UNSUBACK", V::V311, {0xB0, 0x02, 0x00, 0x04}, Unsuback{4, {}, {}});
  t.ok("3.1.1 PINGREQ", V::V311, {0xC0, 0x00}, Pingreq{});
  t.ok("3.1.1 PINGRESP", V::V311, {0xD0, 0x00}, Pingresp{});
  t.ok("3.1.1 DISCONNECT", V::V311, {0xE0, 0x00}, Disconnect{});
  t.ok("3.1.1 PINGREQ: non-minimal remaining length is accepted", V::V311, {0xC0, 0x80, 0x00},
       Pingreq{}, false);
}

void add_v5_rows(Table& t) {
  {
    Connect c;
    c.version = V::V5;
    c.clean_start = true;
    c.keep_alive = 60;
    c.client_id = "c1";
    c.properties.session_expiry_interval = 3600;
    c.properties.receive_maximum = 20;
    c.properties.maximum_packet_size = 1024;
    c.properties.topic_alias_maximum = 5;
    c.properties.request_response_information = 1;
    c.properties.request_problem_information = 0;
    c.properties.user_properties = {{"k", "v"}, {"k", "v2"}};
    c.properties.authentication_method = "SCRAM";
    c.properties.authentication_data = std::string("\x01\x00", 2);
    Will w;
    w.topic = "will";
    w.payload = payload("gone");
    w.qos = 2;
    w.retain = false;
    w.properties.will_delay_interval = 5;
    w.properties.payload_format_indicator = 1;
    w.properties.message_expiry_interval = 100;
    w.properties.content_type = "text/plain";
    w.properties.response_topic = "resp";
    w.properties.correlation_data = "id";
    w.properties.user_properties = {{"a", "b"}};
    c.will = w;
    c.username = "user";
    c.password = "pw";
    // Properties in wire order of the encoder (ascending id), so the row is canonical.
    const Bytes props = Bytes()
                            .u8(0x11).u32(3600)
                            .u8(0x15).str("SCRAM")
                            .u8(0x16).str(std::string_view("\x01\x00", 2))
                            .u8(0x17).u8(0)
                            .u8(0x19).u8(1)
                            .u8(0x21).u16(20)
                            .u8(0x22).u16(5)
                            .u8(0x26).str("k").str("v")
                            .u8(0x26).str("k").str("v2")
                            .u8(0x27).u32(1024);
    const Bytes will_props = Bytes()
                                 .u8(0x01).u8(1)
                                 .u8(0x02).u32(100)
                                 .u8(0x03).str("text/plain")
                                 .u8(0x08).str("resp")
                                 .u8(0x09).str("id")
                                 .u8(0x18).u32(5)
                                 .u8(0x26).str("a").str("b");
    t.ok("5.0 CONNECT: every CONNECT and will property", V::V5,
         connect_v5(0xD6, props).props(will_props).str("will").str("gone").str("user").str("pw").frame(0x10),
         c);
  }
  {
    Connect c;
    c.version = V::V5;
    c.clean_start = false;
    c.keep_alive = 60;
    c.client_id = "c1";
    c.password = "secret";
    t.ok("5.0 CONNECT: password without user name is allowed", V::V5,
         connect_v5(0x40, {}).str("secret").frame(0x10), c);
  }
  {
    Connack c;
    c.session_present = false;
    c.reason = R::Success;
    auto& p = c.properties;
    p.session_expiry_interval = 0;
    p.assigned_client_identifier = "auto-1";
    p.server_keep_alive = 30;
    p.authentication_method = "SCRAM";
    p.authentication_data = "d";
    p.response_information = "r/";
    p.server_reference = "other";
    p.reason_string = "welcome";
    p.receive_maximum = 100;
    p.topic_alias_maximum = 10;
    p.maximum_qos = 1;
    p.retain_available = 0;
    p.user_properties = {{"x", "y"}};
    p.maximum_packet_size = 65536;
    p.wildcard_subscription_available = 1;
    p.subscription_identifier_available = 0;
    p.shared_subscription_available = 1;
    const Bytes props = Bytes()
                            .u8(0x11).u32(0)
                            .u8(0x12).str("auto-1")
                            .u8(0x13).u16(30)
                            .u8(0x15).str("SCRAM")
                            .u8(0x16).str("d")
                            .u8(0x1A).str("r/")
                            .u8(0x1C).str("other")
                            .u8(0x1F).str("welcome")
                            .u8(0x21).u16(100)
                            .u8(0x22).u16(10)
                            .u8(0x24).u8(1)
                            .u8(0x25).u8(0)
                            .u8(0x26).str("x").str("y")
                            .u8(0x27).u32(65536)
                            .u8(0x28).u8(1)
                            .u8(0x29).u8(0)
                            .u8(0x2A).u8(1);
    t.ok("5.0 CONNACK: every CONNACK property", V::V5, Bytes().u8(0).u8(0).props(props).frame(0x20), c);
  }
  t.ok("5.0 CONNACK: bad user name or password", V::V5, {0x20, 0x03, 0x00, 0x86, 0x00},
       Connack{false, R::BadUserNameOrPassword, {}});
  {
    Publish p{"t/1", payload("body"), 1, false, false, 9, {}};
    p.properties.payload_format_indicator = 1;
    p.properties.message_expiry_interval = 60;
    p.properties.content_type = "json";
    p.properties.response_topic = "r/1";
    p.properties.correlation_data = std::string("\xFF\x00", 2);
    p.properties.subscription_identifiers = {1, 268435455};
    p.properties.topic_alias = 3;
    p.properties.user_properties = {{"a", "1"}, {"a", "2"}};
    const Bytes props = Bytes()
                            .u8(0x01).u8(1)
                            .u8(0x02).u32(60)
                            .u8(0x03).str("json")
                            .u8(0x08).str("r/1")
                            .u8(0x09).str(std::string_view("\xFF\x00", 2))
                            .u8(0x0B).varint(1)
                            .u8(0x0B).varint(268435455)
                            .u8(0x23).u16(3)
                            .u8(0x26).str("a").str("1")
                            .u8(0x26).str("a").str("2");
    t.ok("5.0 PUBLISH: every PUBLISH property, two subscription ids", V::V5,
         Bytes().str("t/1").u16(9).props(props).raw("body").frame(0x32), p);
  }
  {
    Publish p{"", payload("x"), 0, false, false, 0, {}};
    p.properties.topic_alias = 7;
    t.ok("5.0 PUBLISH: empty topic with topic alias", V::V5,
         publish_v5("", Bytes().u8(0x23).u16(7)).frame(0x30), p);
  }
  t.ok("5.0 PUBLISH: no properties", V::V5, Bytes().str("a").u8(0).frame(0x31),
       Publish{"a", payload(""), 0, true, false, 0, {}});
  t.ok("5.0 PUBACK: short form means Success [3.4.2.1]", V::V5, {0x40, 0x02, 0x00, 0x01},
       Ack{PacketType::Puback, 1, R::Success, {}});
  t.ok("5.0 PUBACK: reason code without properties", V::V5, {0x40, 0x03, 0x00, 0x01, 0x10},
       Ack{PacketType::Puback, 1, R::NoMatchingSubscribers, {}});
  t.ok("5.0 PUBACK: explicit Success and empty properties", V::V5,
       {0x40, 0x04, 0x00, 0x01, 0x00, 0x00}, Ack{PacketType::Puback, 1, R::Success, {}}, false);
  {
    Ack a{PacketType::Pubrec, 2, R::QuotaExceeded, {}};
    a.properties.reason_string = "full";
    a.properties.user_properties = {{"k", "v"}};
    t.ok("5.0 PUBREC: reason string and user property", V::V5,
         Bytes().u16(2).u8(0x97).props(Bytes().u8(0x1F).str("full").u8(0x26).str("k").str("v")).frame(0x50),
         a);
  }
  t.ok("5.0 PUBREL: packet identifier not found", V::V5, {0x62, 0x03, 0x00, 0x02, 0x92},
       Ack{PacketType::Pubrel, 2, R::PacketIdentifierNotFound, {}});
  t.ok("5.0 PUBCOMP: short form", V::V5, {0x70, 0x02, 0x00, 0x02},
       Ack{PacketType::Pubcomp, 2, R::Success, {}});
  {
    Subscribe s;
    s.packet_id = 1;
    s.properties.subscription_identifiers = {42};
    s.properties.user_properties = {{"u", "p"}};
    s.entries = {SubscribeEntry{"a/#", 1, true, true, 2}, SubscribeEntry{"$share/g/b", 2, false, false, 1}};
    t.ok("5.0 SUBSCRIBE: options and subscription identifier", V::V5,
         Bytes().u16(1).props(Bytes().u8(0x0B).varint(42).u8(0x26).str("u").str("p"))
             .str("a/#").u8(0x2D).str("$share/g/b").u8(0x12).frame(0x82),
         s);
  }
  {
    Suback s{1, {R::GrantedQos1, R::SharedSubscriptionsNotSupported, R::TopicFilterInvalid}, {}};
    s.properties.reason_string = "partly";
    t.ok("5.0 SUBACK: reasons and reason string", V::V5,
         Bytes().u16(1).props(Bytes().u8(0x1F).str("partly")).u8(0x01).u8(0x9E).u8(0x8F).frame(0x90), s);
  }
  {
    Unsubscribe u{5, {"a", "b/+"}, {}};
    u.properties.user_properties = {{"k", "v"}};
    t.ok("5.0 UNSUBSCRIBE: user property", V::V5,
         Bytes().u16(5).props(Bytes().u8(0x26).str("k").str("v")).str("a").str("b/+").frame(0xA2), u);
  }
  t.ok("5.0 UNSUBACK: reasons", V::V5, Bytes().u16(5).u8(0).u8(0x00).u8(0x11).frame(0xB0),
       Unsuback{5, {R::Success, R::NoSubscriptionExisted}, {}});
  t.ok("5.0 DISCONNECT: remaining length 0 means Normal", V::V5, {0xE0, 0x00}, Disconnect{});
  t.ok("5.0 DISCONNECT: reason code only", V::V5, {0xE0, 0x01, 0x04},
       Disconnect{R::DisconnectWithWill, {}});
  {
    Disconnect d{R::ServerMoved, {}};
    d.properties.session_expiry_interval = 0;
    d.properties.reason_string = "moving";
    d.properties.server_reference = "b:1883";
    t.ok("5.0 DISCONNECT: server reference, reason string, session expiry", V::V5,
         Bytes().u8(0x9D).props(Bytes().u8(0x11).u32(0).u8(0x1C).str("b:1883").u8(0x1F).str("moving")).frame(0xE0),
         d);
  }
  t.ok("5.0 AUTH: remaining length 0 means Success", V::V5, {0xF0, 0x00}, Auth{});
  {
    Auth a{R::ContinueAuthentication, {}};
    a.properties.authentication_method = "SCRAM";
    a.properties.authentication_data = "step";
    t.ok("5.0 AUTH: continue with method and data", V::V5,
         Bytes().u8(0x18).props(Bytes().u8(0x15).str("SCRAM").u8(0x16).str("step")).frame(0xF0), a);
  }
  t.ok("5.0 PINGREQ", V::V5, {0xC0, 0x00}, Pingreq{});
  t.ok("5.0 PINGRESP", V::V5, {0xD0, 0x00}, Pingresp{});
}

void add_error_rows(Table& t) {
  // Fixed header.
  t.bad("3.1.1 remaining length over four bytes", V::V311, {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, R::MalformedPacket);
  t.bad("5.0 remaining length over four bytes", V::V5, {0xC0, 0x80, 0x80, 0x80, 0x80, 0x00}, R::MalformedPacket);
  t.bad("3.1.1 reserved packet type 0", V::V311, {0x00, 0x00}, R::MalformedPacket);
  t.bad("3.1.1 AUTH is reserved before 5.0", V::V311, {0xF0, 0x00}, R::MalformedPacket);
  t.bad("3.1.1 SUBSCRIBE flags 0000 [MQTT-3.8.1-1]", V::V311, Bytes().u16(1).str("a").u8(0).frame(0x80), R::MalformedPacket);
  t.bad("5.0 SUBSCRIBE flags 0000 [MQTT-3.8.1-1]", V::V5, subscribe_v5(0).frame(0x80), R::MalformedPacket);
  t.bad("3.1.1 UNSUBSCRIBE flags 0000 [MQTT-3.10.1-1]", V::V311, Bytes().u16(1).str("a").frame(0xA0), R::MalformedPacket);
  t.bad("3.1.1 PUBREL flags 0000 [MQTT-3.6.1-1]", V::V311, {0x60, 0x02, 0x00, 0x01}, R::MalformedPacket);
  t.bad("5.0 PUBACK flags 0010 [MQTT-2.1.3-1]", V::V5, {0x42, 0x02, 0x00, 0x01}, R::MalformedPacket);
  t.bad("3.1.1 PINGREQ flags 0001", V::V311, {0xC1, 0x00}, R::MalformedPacket);
  t.bad("3.1.1 CONNECT flags 0001", V::V311, connect_v4(0x02).frame(0x11), R::MalformedPacket);
  // PUBLISH.
  t.bad("3.1.1 PUBLISH QoS 3 [MQTT-3.3.1-4]", V::V311, Bytes().str("a").u16(1).frame(0x36), R::MalformedPacket);
  t.bad("5.0 PUBLISH QoS 3 [MQTT-3.3.1-4]", V::V5, Bytes().str("a").u16(1).u8(0).frame(0x36), R::MalformedPacket);
  t.bad("3.1.1 PUBLISH DUP on QoS 0 [MQTT-3.3.1-2]", V::V311, Bytes().str("a").frame(0x38), R::MalformedPacket);
  t.bad("5.0 PUBLISH DUP on QoS 0 [MQTT-3.3.1-2]", V::V5, Bytes().str("a").u8(0).frame(0x38), R::MalformedPacket);
  t.bad("3.1.1 PUBLISH QoS 1 packet id 0 [MQTT-2.3.1-1]", V::V311, Bytes().str("a").u16(0).frame(0x32), R::ProtocolError);
  t.bad("5.0 PUBLISH QoS 2 packet id 0 [MQTT-2.2.1-3]", V::V5, Bytes().str("a").u16(0).u8(0).frame(0x34), R::ProtocolError);
  t.bad("3.1.1 PUBLISH topic with '+' [MQTT-3.3.2-2]", V::V311, Bytes().str("a/+").frame(0x30), R::TopicNameInvalid);
  t.bad("5.0 PUBLISH topic with '#' [MQTT-3.3.2-2]", V::V5, Bytes().str("a/#").u8(0).frame(0x30), R::TopicNameInvalid);
  t.bad("3.1.1 PUBLISH empty topic", V::V311, Bytes().str("").frame(0x30), R::TopicNameInvalid);
  t.bad("5.0 PUBLISH empty topic without topic alias", V::V5, Bytes().str("").u8(0).frame(0x30), R::ProtocolError);
  t.bad("3.1.1 PUBLISH topic with surrogate U+D800 [MQTT-1.5.3-1]", V::V311,
        Bytes().str("\xED\xA0\x80").frame(0x30), R::MalformedPacket);
  t.bad("5.0 PUBLISH topic with U+0000 [MQTT-1.5.4-2]", V::V5,
        Bytes().str(std::string_view("a\0b", 3)).u8(0).frame(0x30), R::MalformedPacket);
  t.bad("5.0 PUBLISH topic with overlong '/' [MQTT-1.5.4-1]", V::V5,
        Bytes().str("a\xC0\xAF").u8(0).frame(0x30), R::MalformedPacket);
  t.bad("5.0 PUBLISH topic above U+10FFFF", V::V5, Bytes().str("\xF4\x90\x80\x80").u8(0).frame(0x30), R::MalformedPacket);
  t.bad("5.0 PUBLISH topic with truncated UTF-8 sequence", V::V5, Bytes().str("a\xE2\x82").u8(0).frame(0x30), R::MalformedPacket);
  t.bad("3.1.1 PUBLISH topic length past the packet", V::V311, {0x30, 0x03, 0x00, 0x05, 'a'}, R::MalformedPacket);
  t.bad("5.0 PUBLISH topic alias 0", V::V5, publish_v5("a", Bytes().u8(0x23).u16(0)).frame(0x30), R::TopicAliasInvalid);
  t.bad("5.0 PUBLISH payload format indicator 2", V::V5, publish_v5("a", Bytes().u8(0x01).u8(2)).frame(0x30), R::ProtocolError);
  t.bad("5.0 PUBLISH subscription identifier 0", V::V5, publish_v5("a", Bytes().u8(0x0B).varint(0)).frame(0x30), R::ProtocolError);
  t.bad("5.0 PUBLISH session expiry not allowed [2.2.2.2]", V::V5, publish_v5("a", Bytes().u8(0x11).u32(1)).frame(0x30), R::MalformedPacket);
  t.bad("5.0 PUBLISH duplicate message expiry", V::V5,
        publish_v5("a", Bytes().u8(0x02).u32(1).u8(0x02).u32(2)).frame(0x30), R::ProtocolError);
  t.bad("5.0 PUBLISH duplicate topic alias", V::V5,
        publish_v5("a", Bytes().u8(0x23).u16(1).u8(0x23).u16(1)).frame(0x30), R::ProtocolError);
  t.bad("5.0 PUBLISH property length past the packet", V::V5, Bytes().str("a").u8(9).u8(0x01).u8(1).frame(0x30), R::MalformedPacket);
  t.bad("5.0 PUBLISH property value truncated", V::V5, Bytes().str("a").u8(3).u8(0x02).u16(0).frame(0x30), R::MalformedPacket);
  t.bad("5.0 PUBLISH unknown property id", V::V5, publish_v5("a", Bytes().u8(0x7F).u8(0)).frame(0x30), R::MalformedPacket);
  t.bad("5.0 PUBLISH content type not UTF-8", V::V5, publish_v5("a", Bytes().u8(0x03).str("\xFF")).frame(0x30), R::MalformedPacket);
  t.bad("5.0 PUBLISH user property with U+0000", V::V5,
        publish_v5("a", Bytes().u8(0x26).str("k").str(std::string_view("\0", 1))).frame(0x30), R::MalformedPacket);
  // CONNECT.
  t.bad("CONNECT unknown protocol name [MQTT-3.1.2-1]", V::V311, Bytes().str("MQTX").u8(4).u8(2).u16(0).str("c").frame(0x10), R::ProtocolError);
  t.bad("CONNECT MQTT level 6 [MQTT-3.1.2-2]", V::V311, Bytes().str("MQTT").u8(6).u8(2).u16(0).str("c").frame(0x10), R::UnsupportedProtocolVersion);
  t.bad("CONNECT MQTT level 3", V::V311, Bytes().str("MQTT").u8(3).u8(2).u16(0).str("c").frame(0x10), R::UnsupportedProtocolVersion);
  t.bad("CONNECT MQIsdp level 4", V::V311, Bytes().str("MQIsdp").u8(4).u8(2).u16(0).str("c").frame(0x10), R::UnsupportedProtocolVersion);
  t.bad("3.1.1 CONNECT reserved flag [MQTT-3.1.2-3]", V::V311, connect_v4(0x03).frame(0x10), R::MalformedPacket);
  t.bad("5.0 CONNECT reserved flag [MQTT-3.1.2-3]", V::V5, connect_v5(0x03, {}).frame(0x10), R::MalformedPacket);
  t.bad("3.1.1 CONNECT will QoS without will flag [MQTT-3.1.2-13]", V::V311, connect_v4(0x0A).frame(0x10), R::MalformedPacket);
  t.bad("3.1.1 CONNECT will retain without will flag [MQTT-3.1.2-15]", V::V311, connect_v4(0x22).frame(0x10), R::MalformedPacket);
  t.bad("5.0 CONNECT will QoS 3 [MQTT-3.1.2-12]", V::V5,
        connect_v5(0x1E, {}).u8(0).str("w").str("p").frame(0x10), R::MalformedPacket);
  t.bad("3.1.1 CONNECT password without user name [MQTT-3.1.2-22]", V::V311,
        connect_v4(0x42).str("pw").frame(0x10), R::MalformedPacket);
  t.bad("3.1.1 CONNECT trailing bytes", V::V311, connect_v4(0x02).u8(0).frame(0x10), R::MalformedPacket);
  t.bad("3.1.1 CONNECT user name flag but no user name", V::V311, connect_v4(0x82).frame(0x10), R::MalformedPacket);
  t.bad("3.1.1 CONNECT client id not UTF-8", V::V311, connect_v4(0x02, "\xC3").frame(0x10), R::MalformedPacket);
  t.bad("3.1.1 CONNECT will topic with wildcard", V::V311,
        connect_v4(0x06).str("w/#").str("p").frame(0x10), R::TopicNameInvalid);
  t.bad("5.0 CONNECT duplicate session expiry", V::V5,
        connect_v5(0x02, Bytes().u8(0x11).u32(1).u8(0x11).u32(1)).frame(0x10), R::ProtocolError);
  t.bad("5.0 CONNECT receive maximum 0", V::V5, connect_v5(0x02, Bytes().u8(0x21).u16(0)).frame(0x10), R::ProtocolError);
  t.bad("5.0 CONNECT maximum packet size 0", V::V5, connect_v5(0x02, Bytes().u8(0x27).u32(0)).frame(0x10), R::ProtocolError);
  t.bad("5.0 CONNECT request problem information 2", V::V5, connect_v5(0x02, Bytes().u8(0x17).u8(2)).frame(0x10), R::ProtocolError);
  t.bad("5.0 CONNECT request response information 2", V::V5, connect_v5(0x02, Bytes().u8(0x19).u8(2)).frame(0x10), R::ProtocolError);
  t.bad("5.0 CONNECT topic alias not allowed", V::V5, connect_v5(0x02, Bytes().u8(0x23).u16(1)).frame(0x10), R::MalformedPacket);
  t.bad("5.0 CONNECT will delay outside will properties", V::V5, connect_v5(0x02, Bytes().u8(0x18).u32(1)).frame(0x10), R::MalformedPacket);
  t.bad("5.0 CONNECT authentication data without method", V::V5, connect_v5(0x02, Bytes().u8(0x16).str("d")).frame(0x10), R::ProtocolError);
  t.bad("5.0 CONNECT property length past the packet", V::V5,
        Bytes().str("MQTT").u8(5).u8(2).u16(0).u8(0x20).frame(0x10), R::MalformedPacket);
  t.bad("5.0 CONNECT will payload format indicator 2", V::V5,
        connect_v5(0x06, {}).props(Bytes().u8(0x01).u8(2)).str("w").str("p").frame(0x10), R::ProtocolError);
  t.bad("5.0 CONNECT session expiry in will properties", V::V5,
        connect_v5(0x06, {}).props(Bytes().u8(0x11).u32(2)).str("w").str("p").frame(0x10), R::MalformedPacket);
  // CONNACK.
  t.bad("3.1.1 CONNACK reserved acknowledge flags [MQTT-3.2.2-1]", V::V311, {0x20, 0x02, 0x02, 0x00}, R::MalformedPacket);
  t.bad("3.1.1 CONNACK return code 6", V::V311, {0x20, 0x02, 0x00, 0x06}, R::MalformedPacket);
  t.bad("5.0 CONNACK reason code 0x01 not for CONNACK", V::V5, {0x20, 0x03, 0x00, 0x01, 0x00}, R::MalformedPacket);
  t.bad("5.0 CONNACK maximum QoS 2", V::V5, Bytes().u8(0).u8(0).props(Bytes().u8(0x24).u8(2)).frame(0x20), R::ProtocolError);
  t.bad("5.0 CONNACK retain available 2", V::V5, Bytes().u8(0).u8(0).props(Bytes().u8(0x25).u8(2)).frame(0x20), R::ProtocolError);
  t.bad("5.0 CONNACK wildcard subscription available 2", V::V5, Bytes().u8(0).u8(0).props(Bytes().u8(0x28).u8(2)).frame(0x20), R::ProtocolError);
  t.bad("5.0 CONNACK subscription identifier available 2", V::V5, Bytes().u8(0).u8(0).props(Bytes().u8(0x29).u8(2)).frame(0x20), R::ProtocolError);
  t.bad("5.0 CONNACK shared subscription available 2", V::V5, Bytes().u8(0).u8(0).props(Bytes().u8(0x2A).u8(2)).frame(0x20), R::ProtocolError);
  t.bad("5.0 CONNACK receive maximum 0", V::V5, Bytes().u8(0).u8(0).props(Bytes().u8(0x21).u16(0)).frame(0x20), R::ProtocolError);
  t.bad("5.0 CONNACK request problem information not allowed", V::V5, Bytes().u8(0).u8(0).props(Bytes().u8(0x17).u8(1)).frame(0x20), R::MalformedPacket);
  // Acks, SUBSCRIBE, UNSUBSCRIBE, SUBACK, UNSUBACK, DISCONNECT, AUTH.
  t.bad("3.1.1 PUBACK trailing byte", V::V311, {0x40, 0x03, 0x00, 0x01, 0x00}, R::MalformedPacket);
  t.bad("3.1.1 PUBACK truncated", V::V311, {0x40, 0x01, 0x00}, R::MalformedPacket);
  t.bad("5.0 PUBACK packet id 0", V::V5, {0x40, 0x02, 0x00, 0x00}, R::ProtocolError);
  t.bad("5.0 PUBACK reason 0x92 not for PUBACK", V::V5, {0x40, 0x03, 0x00, 0x01, 0x92}, R::MalformedPacket);
  t.bad("5.0 PUBCOMP reason 0x80 not for PUBCOMP", V::V5, {0x70, 0x03, 0x00, 0x01, 0x80}, R::MalformedPacket);
  t.bad("5.0 PUBACK topic alias not allowed", V::V5,
        Bytes().u16(1).u8(0).props(Bytes().u8(0x23).u16(1)).frame(0x40), R::MalformedPacket);
  t.bad("5.0 PUBACK duplicate reason string", V::V5,
        Bytes().u16(1).u8(0).props(Bytes().u8(0x1F).str("a").u8(0x1F).str("b")).frame(0x40), R::ProtocolError);
  t.bad("5.0 PUBACK trailing bytes after properties", V::V5, Bytes().u16(1).u8(0).u8(0).u8(0).frame(0x40), R::MalformedPacket);
  t.bad("3.1.1 SUBSCRIBE without filters [MQTT-3.8.3-3]", V::V311, Bytes().u16(1).frame(0x82), R::ProtocolError);
  t.bad("5.0 SUBSCRIBE without filters [MQTT-3.8.3-2]", V::V5, Bytes().u16(1).u8(0).frame(0x82), R::ProtocolError);
  t.bad("3.1.1 SUBSCRIBE packet id 0 [MQTT-2.3.1-1]", V::V311, Bytes().u16(0).str("a").u8(0).frame(0x82), R::ProtocolError);
  t.bad("3.1.1 SUBSCRIBE upper bits of QoS byte [MQTT-3.8.3-4]", V::V311, Bytes().u16(1).str("a").u8(0x04).frame(0x82), R::MalformedPacket);
  t.bad("3.1.1 SUBSCRIBE QoS 3 [MQTT-3.8.3-4]", V::V311, Bytes().u16(1).str("a").u8(0x03).frame(0x82), R::MalformedPacket);
  t.bad("3.1.1 SUBSCRIBE options byte missing", V::V311, Bytes().u16(1).str("a").frame(0x82), R::MalformedPacket);
  t.bad("5.0 SUBSCRIBE reserved option bits [MQTT-3.8.3-5]", V::V5, subscribe_v5(0x40).frame(0x82), R::MalformedPacket);
  t.bad("5.0 SUBSCRIBE QoS 3 [3.8.3.1]", V::V5, subscribe_v5(0x03).frame(0x82), R::ProtocolError);
  t.bad("5.0 SUBSCRIBE retain handling 3 [3.8.3.1]", V::V5, subscribe_v5(0x30).frame(0x82), R::ProtocolError);
  t.bad("5.0 SUBSCRIBE no local on shared subscription [MQTT-3.8.3-4]", V::V5, subscribe_v5(0x04, "$share/g/a").frame(0x82), R::ProtocolError);
  t.bad("5.0 SUBSCRIBE subscription identifier 0", V::V5, subscribe_v5(0, "a", Bytes().u8(0x0B).varint(0)).frame(0x82), R::ProtocolError);
  t.bad("5.0 SUBSCRIBE two subscription identifiers", V::V5,
        subscribe_v5(0, "a", Bytes().u8(0x0B).varint(1).u8(0x0B).varint(2)).frame(0x82), R::ProtocolError);
  t.bad("5.0 SUBSCRIBE subscription identifier over four bytes", V::V5,
        subscribe_v5(0, "a", Bytes().u8(0x0B).u8(0x80).u8(0x80).u8(0x80).u8(0x80).u8(0x01)).frame(0x82), R::MalformedPacket);
  t.bad("5.0 SUBSCRIBE filter with U+0000", V::V5, subscribe_v5(0, std::string_view("a\0", 2)).frame(0x82), R::MalformedPacket);
  t.bad("3.1.1 UNSUBSCRIBE without filters [MQTT-3.10.3-2]", V::V311, Bytes().u16(1).frame(0xA2), R::ProtocolError);
  t.bad("5.0 UNSUBSCRIBE without filters [MQTT-3.10.3-2]", V::V5, Bytes().u16(1).u8(0).frame(0xA2), R::ProtocolError);
  t.bad("5.0 UNSUBSCRIBE packet id 0", V::V5, Bytes().u16(0).u8(0).str("a").frame(0xA2), R::ProtocolError);
  t.bad("3.1.1 SUBACK return code 3", V::V311, {0x90, 0x03, 0x00, 0x01, 0x03}, R::MalformedPacket);
  t.bad("5.0 SUBACK reason 0x11 not for SUBACK", V::V5, {0x90, 0x04, 0x00, 0x01, 0x00, 0x11}, R::MalformedPacket);
  t.bad("5.0 SUBACK without reason codes", V::V5, {0x90, 0x03, 0x00, 0x01, 0x00}, R::ProtocolError);
  t.bad("3.1.1 UNSUBACK trailing byte", V::V311, {0xB0, 0x03, 0x00, 0x01, 0x00}, R::MalformedPacket);
  t.bad("5.0 UNSUBACK without reason codes", V::V5, {0xB0, 0x03, 0x00, 0x01, 0x00}, R::ProtocolError);
  t.bad("3.1.1 DISCONNECT with a body", V::V311, {0xE0, 0x01, 0x00}, R::MalformedPacket);
  t.bad("5.0 DISCONNECT reason 0x01 not for DISCONNECT", V::V5, {0xE0, 0x01, 0x01}, R::MalformedPacket);
  t.bad("5.0 DISCONNECT reason 0x8C not for DISCONNECT", V::V5, {0xE0, 0x01, 0x8C}, R::MalformedPacket);
  t.bad("5.0 DISCONNECT topic alias not allowed", V::V5,
        Bytes().u8(0).props(Bytes().u8(0x23).u16(1)).frame(0xE0), R::MalformedPacket);
  t.bad("5.0 AUTH reason 0x80 not for AUTH", V::V5, {0xF0, 0x02, 0x80, 0x00}, R::MalformedPacket);
  t.bad("5.0 AUTH session expiry not allowed", V::V5,
        Bytes().u8(0x18).props(Bytes().u8(0x11).u32(1)).frame(0xF0), R::MalformedPacket);
  t.bad("5.0 PINGRESP with a body", V::V5, {0xD0, 0x01, 0x00}, R::MalformedPacket);
}

const char* type_name(PacketType t) {
  static constexpr const char* kNames[] = {"?", "CONNECT", "CONNACK", "PUBLISH", "PUBACK",
                                           "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK",
                                           "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
                                           "DISCONNECT", "AUTH"};
  return kNames[static_cast<int>(t) & 0x0F];
}

}  // namespace

Bytes& Bytes::varint(std::uint32_t v) {
  do {
    auto b = static_cast<std::uint8_t>(v & 0x7F);
    v >>= 7;
    if (v != 0) b = static_cast<std::uint8_t>(b | 0x80);
    u8(b);
  } while (v != 0);
  return *this;
}

std::vector<std::uint8_t> Bytes::frame(std::uint8_t first_byte) const {
  Bytes f;
  f.u8(first_byte).varint(static_cast<std::uint32_t>(v_.size())).raw(v_);
  return f.v_;
}

const std::vector<PacketVector>& packet_vectors() {
  static const std::vector<PacketVector> table = [] {
    Table t;
    add_v3_rows(t);
    add_v5_rows(t);
    add_error_rows(t);
    return t.take();
  }();
  return table;
}

std::string hex(std::string_view bytes) {
  std::string out;
  char buf[4];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof buf, "%02x ", c);
    out += buf;
  }
  if (!out.empty()) out.pop_back();
  return out;
}

std::string hex(const std::vector<std::uint8_t>& bytes) {
  return hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string describe(const Packet& packet) {
  std::string s = type_name(packet_type(packet));
  if (const auto* p = std::get_if<Publish>(&packet)) {
    s += " topic=" + p->topic + " qos=" + std::to_string(p->qos) + " id=" + std::to_string(p->packet_id) +
         " payload=" + (p->payload ? hex(*p->payload) : "null");
  } else if (const auto* c = std::get_if<Connect>(&packet)) {
    s += " v=" + std::to_string(static_cast<int>(c->version)) + " id=" + c->client_id +
         (c->will ? " will=" + c->will->topic : "");
  } else if (const auto* a = std::get_if<Ack>(&packet)) {
    s += " id=" + std::to_string(a->packet_id) + " reason=" + std::to_string(static_cast<int>(a->reason));
  }
  return s;
}

}  // namespace broker::test
