#pragma once
// Helpers shared by the codec tests: run bytes through a Decoder whole, byte by byte or in
// chunks, and collect what comes out.
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "protocol/decoder.hpp"

namespace broker::test {

struct Decoded {
  std::vector<protocol::Packet> packets;
  bool failed = false;
  protocol::DecodeError error;
  std::size_t need_more = 0;  // NeedMore answers seen
};

// Feeds `bytes` in chunks of the given sizes (cycled; {} means all at once).
inline Decoded decode_chunks(const std::vector<std::uint8_t>& bytes,
                             std::optional<protocol::ProtocolVersion> version,
                             const std::vector<std::size_t>& chunks = {},
                             std::uint32_t max_packet_size = 268435460u) {
  protocol::Decoder d(max_packet_size);
  if (version) d.set_version(*version);
  Decoded out;
  std::size_t pos = 0;
  std::size_t k = 0;
  while (pos < bytes.size() && !out.failed) {
    std::size_t n = chunks.empty() ? bytes.size() : chunks[k++ % chunks.size()];
    n = std::min(n, bytes.size() - pos);
    std::span<const std::uint8_t> in(bytes.data() + pos, n);
    pos += n;
    while (!out.failed) {
      protocol::Packet p;
      const auto st = d.next(in, p, out.error);
      if (st == protocol::DecodeStatus::NeedMore) {
        ++out.need_more;
        break;
      }
      if (st == protocol::DecodeStatus::Error) {
        out.failed = true;
        break;
      }
      out.packets.push_back(std::move(p));
    }
  }
  return out;
}

inline std::vector<std::size_t> random_chunks(std::mt19937& rng, std::size_t count = 64) {
  std::uniform_int_distribution<std::size_t> dist(1, 9);
  std::vector<std::size_t> sizes(count);
  for (auto& s : sizes) s = dist(rng);
  return sizes;
}

inline std::vector<std::uint8_t> to_bytes(const std::string& s) {
  return std::vector<std::uint8_t>(s.begin(), s.end());
}

}  // namespace broker::test
