// storage/record_codec: round trips, golden records of every format version, and hostile bytes.
#include "storage/record_codec.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "unit/storage/golden_samples.hpp"
#include "unit/storage/store_test_util.hpp"

namespace {

using namespace broker;
using namespace broker::storage;
namespace g = broker::test::golden;

using g::fixtures_dir;
using g::read_golden;

// Every golden record of every format version, named "v<N>.<name>".
std::map<std::string, std::string> all_golden() {
  std::map<std::string, std::string> out;
  for (unsigned v = 1; v <= kFormatVersion; ++v)
    for (auto& [name, bytes] : read_golden(v)) out["v" + std::to_string(v) + "." + name] = bytes;
  return out;
}

// Decodes `bytes` as every kind; returns how many decoders accepted it. Used on hostile input,
// where the point is that none crashes or over-reads (ASan watches).
int decode_all(std::string_view bytes) {
  int ok = 0;
  ok += decode_meta(bytes).is_ok();
  ok += decode_message(bytes).is_ok();
  ok += decode_session(bytes).is_ok();
  ok += decode_delivery(bytes).is_ok();
  ok += decode_log_record(bytes).is_ok();
  ok += decode_counter(bytes).is_ok();
  ok += decode_chunked_ref(bytes).is_ok();
  return ok;
}

// An envelope around `body` with a correct checksum: garbage that gets past the CRC.
std::string sealed(std::uint8_t version, RecordKind kind, std::string body) {
  std::string out;
  out.push_back(static_cast<char>(version));
  out.push_back(static_cast<char>(kind));
  out += body;
  std::uint32_t crc = crc32c(out);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xFFu));
  return out;
}

}  // namespace

TEST_CASE("record codec: crc32c matches the standard check value", "[storage]") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
}

TEST_CASE("record codec: every record kind round-trips", "[storage]") {
  auto m = decode_message(encode_message(g::message_full()));
  REQUIRE(m);
  CHECK(test::equal(m.value(), g::message_full()));
  auto mm = decode_message(encode_message(g::message_minimal()));
  REQUIRE(mm);
  CHECK(test::equal(mm.value(), g::message_minimal()));
  auto s = decode_session(encode_session(g::session_full()));
  REQUIRE(s);
  CHECK(test::equal(s.value(), g::session_full()));
  auto d = decode_delivery(encode_delivery(g::delivery()));
  REQUIRE(d);
  CHECK(test::equal(d.value(), g::delivery()));
  auto l = decode_log_record(encode_log_record(g::log_record()));
  REQUIRE(l);
  CHECK(l.value().sequence == 99);
  CHECK(test::equal(l.value().message, g::message_full()));
  CHECK(decode_counter(encode_counter(g::kCounter)).value() == g::kCounter);
  auto meta = decode_meta(encode_meta(MetaRecord{"x", 3}));
  REQUIRE(meta);
  CHECK(meta.value().magic == "x");
  CHECK(meta.value().format_version == 3);
}

TEST_CASE("record codec: golden records of every format version decode", "[storage]") {
  for (unsigned version = 1; version <= kFormatVersion; ++version) {
    auto golden = read_golden(version);
    INFO("format version " << version << ", fixtures in " << fixtures_dir().string());
    REQUIRE(golden.size() == (version >= 4 ? 10u : version >= 2 ? 9u : 8u));

    auto meta = decode_meta(golden["meta"]);
    REQUIRE(meta);
    CHECK(meta.value().magic == kStoreMagic);
    CHECK(meta.value().format_version == version);
    auto mf = decode_message(golden["message_full"]);
    REQUIRE(mf);
    CHECK(test::equal(mf.value(), g::message_full()));
    auto mm = decode_message(golden["message_minimal"]);
    REQUIRE(mm);
    CHECK(test::equal(mm.value(), g::message_minimal()));
    auto sf = decode_session(golden["session_full"]);
    REQUIRE(sf);
    CHECK(test::equal(sf.value(), g::session_full()));
    auto sm = decode_session(golden["session_minimal"]);
    REQUIRE(sm);
    CHECK(test::equal(sm.value(), g::session_minimal()));
    auto d = decode_delivery(golden["delivery"]);
    REQUIRE(d);
    CHECK(test::equal(d.value(), g::delivery()));
    if (version >= 2) {
      auto tagged = decode_delivery(golden["delivery_tagged"]);
      REQUIRE(tagged);
      CHECK(test::equal(tagged.value(), g::tagged_delivery()));
    }
    auto l = decode_log_record(golden["log_record"]);
    REQUIRE(l);
    CHECK(l.value().sequence == 99);
    CHECK(test::equal(l.value().message, g::message_full()));
    CHECK(decode_counter(golden["counter"]).value() == g::kCounter);
    if (version >= 4) {
      auto ref = decode_chunked_ref(golden["chunked_ref"]);
      REQUIRE(ref);
      CHECK(ref.value().id == g::chunked_ref().id);
      CHECK(ref.value().bytes == g::chunked_ref().bytes);
      CHECK(ref.value().count == g::chunked_ref().count);
      CHECK(is_chunked_ref(golden["chunked_ref"]));
      CHECK_FALSE(is_chunked_ref(golden["message_full"]));
    }

    // The current version's encoding must reproduce its file byte for byte: a layout change
    // without a version bump fails here.
    if (version == kFormatVersion) {
      CHECK(encode_message(g::message_full()) == golden["message_full"]);
      CHECK(encode_session(g::session_full()) == golden["session_full"]);
      CHECK(encode_delivery(g::delivery()) == golden["delivery"]);
      CHECK(encode_delivery(g::tagged_delivery()) == golden["delivery_tagged"]);
      CHECK(encode_log_record(g::log_record()) == golden["log_record"]);
      CHECK(encode_chunked_ref(g::chunked_ref()) == golden["chunked_ref"]);
    }
  }
}

TEST_CASE("record codec: the tags of copies that are not shared read back", "[storage]") {
  // The RETAIN 0 copy (subscriptions that differ in Retain As Published; refusing it kept the
  // broker from starting again) and the copies a SUBSCRIBE queues from the retained messages.
  const std::uint32_t tag = GENERATE(kRetainZeroCopyTag, kFirstRetainedCopyTag, 0xFFFFFFFFu);
  StoredDelivery d = g::delivery();
  d.shared = false;
  d.shared_tag = tag;
  auto back = decode_delivery(encode_delivery(d));
  REQUIRE(back.is_ok());
  CHECK(back.value().shared_tag == tag);
  CHECK_FALSE(back.value().shared);
}

TEST_CASE("record codec: truncated and bit-flipped golden records are Corruption", "[storage]") {
  auto golden = read_golden(kFormatVersion);
  REQUIRE(!golden.empty());
  int accepted = 0;
  for (const auto& [name, bytes] : all_golden()) {
    for (std::size_t n = 0; n < bytes.size(); ++n) accepted += decode_all(bytes.substr(0, n));
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string flipped = bytes;
        flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
        accepted += decode_all(flipped);
      }
    }
  }
  CHECK(accepted == 0);  // CRC32C catches every single-bit error and every cut
  auto st = decode_session(golden["session_full"].substr(0, 20)).status();
  CHECK(st.code() == Status::Code::Corruption);
  std::string flipped = golden["delivery"];
  flipped[5] = static_cast<char>(flipped[5] ^ 0x10);
  CHECK(decode_delivery(flipped).status().message() == "delivery record: checksum mismatch");
}

TEST_CASE("record codec: hostile bodies behind a valid checksum", "[storage]") {
  // A string length far past the end.
  std::string huge_len("\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff", 12);
  auto m = decode_message(sealed(1, RecordKind::Message, huge_len));
  CHECK(m.status().message() == "message record: truncated string");
  // A list count that would make reserve() allocate gigabytes.
  std::string s = encode_session(g::session_minimal());
  std::string body = s.substr(2, s.size() - 6);
  std::string huge_count = body.substr(0, 4 + 1 + 1 + 4 + 8) + std::string("\xff\xff\xff\x7f", 4);
  CHECK(decode_session(sealed(1, RecordKind::Session, huge_count)).status().message() ==
        "session record: list count exceeds record size");
  // Trailing bytes, bad enums, wrong kind, newer and zero versions.
  std::string counter_body(8, '\0');
  CHECK(decode_counter(sealed(1, RecordKind::Counter, counter_body + "x")).status().message() ==
        "counter record: 1 trailing bytes");
  std::string d = encode_delivery(g::delivery());
  std::string dbody = d.substr(2, d.size() - 6);
  dbody[dbody.size() - 7] = 9;  // state (then packet id and shared tag)
  CHECK(decode_delivery(sealed(kFormatVersion, RecordKind::Delivery, dbody)).status().message() ==
        "delivery record: bad delivery state");
  CHECK(decode_session(encode_delivery(g::delivery())).status().message() ==
        "session record: found record kind 4");
  CHECK(decode_counter(sealed(7, RecordKind::Counter, counter_body)).status().message() ==
        "unsupported format version 7");
  CHECK(decode_counter(sealed(0, RecordKind::Counter, counter_body)).status().code() ==
        Status::Code::Corruption);
  // A chunk reference to no chunks, or to more chunks than bytes.
  std::string no_chunks = std::string(16, '\x01') + std::string(4, '\0');
  CHECK(decode_chunked_ref(sealed(kFormatVersion, RecordKind::ChunkedRef, no_chunks)).status().message() ==
        "chunk reference record: bad chunk count");
  std::string more_chunks = std::string(8, '\x01') + std::string("\x02\0\0\0\0\0\0\0\x03\0\0\0", 12);
  CHECK(decode_chunked_ref(sealed(kFormatVersion, RecordKind::ChunkedRef, more_chunks)).status().message() ==
        "chunk reference record: bad chunk count");
  // The meta record stays readable at any version, to say which version wrote a directory.
  std::string meta = encode_meta(MetaRecord{std::string(kStoreMagic), 7});
  std::string newer = sealed(7, RecordKind::Meta, meta.substr(2, meta.size() - 6));
  REQUIRE(decode_meta(newer));
  CHECK(decode_meta(newer).value().format_version == 7);
}

TEST_CASE("record codec: random bytes never crash a decoder", "[storage]") {
  std::mt19937_64 rng(12345);
  std::vector<std::string> seeds;
  for (const auto& [name, bytes] : all_golden()) seeds.push_back(bytes);
  for (int i = 0; i < 20000; ++i) {
    // Mutate a golden body and reseal it, so the garbage reaches the field decoders.
    std::string base = seeds[rng() % seeds.size()];
    std::string body = base.substr(2, base.size() - 6);
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      std::size_t at = rng() % body.size();
      switch (rng() % 3) {
        case 0: body[at] = static_cast<char>(rng()); break;
        case 1: body.erase(at, 1 + rng() % 8); break;
        default: body.insert(at, std::string(1 + rng() % 4, static_cast<char>(rng()))); break;
      }
    }
    auto kind = static_cast<RecordKind>(static_cast<std::uint8_t>(base[1]));
    decode_all(sealed(1, kind, body));
  }
  SUCCEED("no crash, no over-read");
}

TEST_CASE("record codec: keys sort as their numbers and group deliveries", "[storage]") {
  CHECK(u64_key(1) < u64_key(256));
  CHECK(u64_key(255) < u64_key(256));
  CHECK(u64_key(0xFFFFFFFFull) < u64_key(0x100000000ull));
  CHECK(parse_u64_key(u64_key(0x0102030405060708ull)).value() == 0x0102030405060708ull);
  CHECK_FALSE(parse_u64_key("short").has_value());
  CHECK(delivery_key("a", 2) < delivery_key("a", 300));
  CHECK(delivery_key("a", ~0ull) < delivery_key("ab", 0));
  CHECK(delivery_key("a", 5).substr(0, 2) == delivery_prefix("a"));
  CHECK(to_hex(std::string("\x00\xab", 2)) == "00ab");
  CHECK(from_hex("00AB").value() == std::string("\x00\xab", 2));
  CHECK_FALSE(from_hex("0").has_value());
  CHECK_FALSE(from_hex("zz").has_value());
}
