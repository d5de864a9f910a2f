// libFuzzer target for the MQTT decoder. Each input is a byte stream fed to a Decoder three
// ways (version taken from a CONNECT, preset 3.1.1, preset 5.0), once whole and once split into
// chunks derived from the input. Oracles, besides the sanitizers:
//  - whole and chunked feeding give the same packets and the same final error;
//  - every decoded packet re-encodes (encoded_size agrees) and decodes back to an equal packet.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/decoder.hpp"
#include "protocol/encoder.hpp"

namespace {

using broker::protocol::DecodeError;
using broker::protocol::DecodeStatus;
using broker::protocol::Decoder;
using broker::protocol::Packet;
using broker::protocol::ProtocolVersion;

constexpr std::uint32_t kMaxPacket = 1u << 20;

struct Outcome {
  std::vector<Packet> packets;
  std::vector<ProtocolVersion> versions;  // version each packet was decoded in
  bool failed = false;
  DecodeError error;
};

void check(bool ok) {
  if (!ok) std::abort();
}

void drain(Decoder& d, std::span<const std::uint8_t> input, Outcome& out) {
  while (!out.failed) {
    Packet p;
    DecodeStatus st = d.next(input, p, out.error);
    if (st == DecodeStatus::NeedMore) {
      check(input.empty());
      return;
    }
    if (st == DecodeStatus::Error) {
      out.failed = true;
      return;
    }
    const auto* c = std::get_if<broker::protocol::Connect>(&p);
    out.versions.push_back(c ? c->version : d.version().value_or(ProtocolVersion::V311));
    out.packets.push_back(std::move(p));
  }
}

Outcome run(std::span<const std::uint8_t> data, std::optional<ProtocolVersion> version,
            bool chunked) {
  Decoder d(kMaxPacket);
  if (version) d.set_version(*version);
  Outcome out;
  if (!chunked) {
    drain(d, data, out);
    return out;
  }
  // Chunk sizes 1..16 from the data itself, so the fuzzer explores split points too.
  std::size_t pos = 0;
  std::size_t i = 0;
  while (pos < data.size() && !out.failed) {
    const std::size_t n = std::min<std::size_t>(data[i++ % data.size()] % 16 + 1, data.size() - pos);
    drain(d, data.subspan(pos, n), out);
    pos += n;
  }
  return out;
}

void round_trip(const Packet& p, ProtocolVersion v) {
  std::string bytes;
  check(broker::protocol::encode(p, v, bytes));
  check(broker::protocol::encoded_size(p, v) == bytes.size());
  Decoder d(UINT32_MAX);
  d.set_version(v);
  std::span<const std::uint8_t> in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                   bytes.size());
  Packet back;
  DecodeError err;
  check(d.next(in, back, err) == DecodeStatus::Packet);
  check(in.empty());
  check(broker::protocol::same_packet(p, back));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  const std::optional<ProtocolVersion> modes[] = {std::nullopt, ProtocolVersion::V311,
                                                  ProtocolVersion::V5};
  for (const auto& mode : modes) {
    const Outcome whole = run(input, mode, false);
    const Outcome parts = run(input, mode, true);
    check(whole.packets.size() == parts.packets.size());
    check(whole.failed == parts.failed);
    if (whole.failed) {
      check(whole.error.reason == parts.error.reason);
      check(std::string(whole.error.what) == parts.error.what);
    }
    for (std::size_t i = 0; i < whole.packets.size(); ++i) {
      check(broker::protocol::same_packet(whole.packets[i], parts.packets[i]));
      round_trip(whole.packets[i], whole.versions[i]);
    }
  }
  return 0;
}
