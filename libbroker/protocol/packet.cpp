#include "protocol/packet.hpp"

#include <string_view>
#include <type_traits>

namespace broker::protocol {
namespace {

std::string_view view(const PayloadPtr& p) noexcept {
  return p ? std::string_view(*p) : std::string_view();
}

bool same(const Will& a, const Will& b) noexcept {
  return a.topic == b.topic && view(a.payload) == view(b.payload) && a.qos == b.qos &&
         a.retain == b.retain && a.properties == b.properties;
}
bool same(const Connect& a, const Connect& b) noexcept {
  if (a.will.has_value() != b.will.has_value()) return false;
  if (a.will && !same(*a.will, *b.will)) return false;
  return a.version == b.version && a.clean_start == b.clean_start &&
         a.keep_alive == b.keep_alive && a.client_id == b.client_id &&
         a.username == b.username && a.password == b.password && a.properties == b.properties;
}
bool same(const Connack& a, const Connack& b) noexcept {
  return a.session_present == b.session_present && a.reason == b.reason &&
         a.properties == b.properties;
}
bool same(const Publish& a, const Publish& b) noexcept {
  return a.topic == b.topic && view(a.payload) == view(b.payload) && a.qos == b.qos &&
         a.retain == b.retain && a.dup == b.dup && a.packet_id == b.packet_id &&
         a.properties == b.properties;
}
bool same(const Ack& a, const Ack& b) noexcept {
  return a.type == b.type && a.packet_id == b.packet_id && a.reason == b.reason &&
         a.properties == b.properties;
}
bool same(const SubscribeEntry& a, const SubscribeEntry& b) noexcept {
  return a.filter == b.filter && a.qos == b.qos && a.no_local == b.no_local &&
         a.retain_as_published == b.retain_as_published &&
         a.retain_handling == b.retain_handling;
}
bool same(const Subscribe& a, const Subscribe& b) noexcept {
  if (a.packet_id != b.packet_id || a.entries.size() != b.entries.size() ||
      !(a.properties == b.properties)) {
    return false;
  }
  for (std::size_t i = 0; i < a.entries.size(); ++i) {
    if (!same(a.entries[i], b.entries[i])) return false;
  }
  return true;
}
bool same(const Suback& a, const Suback& b) noexcept {
  return a.packet_id == b.packet_id && a.reasons == b.reasons && a.properties == b.properties;
}
bool same(const Unsubscribe& a, const Unsubscribe& b) noexcept {
  return a.packet_id == b.packet_id && a.filters == b.filters && a.properties == b.properties;
}
bool same(const Unsuback& a, const Unsuback& b) noexcept {
  return a.packet_id == b.packet_id && a.reasons == b.reasons && a.properties == b.properties;
}
bool same(const Pingreq&, const Pingreq&) noexcept { return true; }
bool same(const Pingresp&, const Pingresp&) noexcept { return true; }
bool same(const Disconnect& a, const Disconnect& b) noexcept {
  return a.reason == b.reason && a.properties == b.properties;
}
bool same(const Auth& a, const Auth& b) noexcept {
  return a.reason == b.reason && a.properties == b.properties;
}

}  // namespace

PacketType packet_type(const Packet& packet) noexcept {
  return std::visit(
      [](const auto& p) -> PacketType {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, Connect>) return PacketType::Connect;
        else if constexpr (std::is_same_v<T, Connack>) return PacketType::Connack;
        else if constexpr (std::is_same_v<T, Publish>) return PacketType::Publish;
        else if constexpr (std::is_same_v<T, Ack>) return p.type;
        else if constexpr (std::is_same_v<T, Subscribe>) return PacketType::Subscribe;
        else if constexpr (std::is_same_v<T, Suback>) return PacketType::Suback;
        else if constexpr (std::is_same_v<T, Unsubscribe>) return PacketType::Unsubscribe;
        else if constexpr (std::is_same_v<T, Unsuback>) return PacketType::Unsuback;
        else if constexpr (std::is_same_v<T, Pingreq>) return PacketType::Pingreq;
        else if constexpr (std::is_same_v<T, Pingresp>) return PacketType::Pingresp;
        else if constexpr (std::is_same_v<T, Disconnect>) return PacketType::Disconnect;
        else return PacketType::Auth;
      },
      packet);
}

bool same_packet(const Packet& a, const Packet& b) noexcept {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&b](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        return same(x, *std::get_if<T>(&b));
      },
      a);
}

}  // namespace broker::protocol
