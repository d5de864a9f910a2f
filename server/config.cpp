#include "server/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "broker/topic.hpp"
#include "broker/version.h"

extern char** environ;  // POSIX; not declared by any standard header in C++ mode

namespace broker::server {
namespace {

// ordered_json keeps document order, so the first error reported is the first in the file and
// --print-config lists keys in the order of brokerd.example.json.
using Json = nlohmann::ordered_json;

constexpr std::uint64_t kU16Max = std::numeric_limits<std::uint16_t>::max();
constexpr std::uint64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();
// Largest packet MQTT can express: 268,435,455 bytes of remaining length + 5 header bytes.
constexpr std::uint64_t kProtocolMaxPacket = 268435460;
// Below this a CONNACK with properties or a modest PUBLISH no longer fits.
constexpr std::uint64_t kMinPacket = 128;
// More workers than this is a typo, not a machine.
constexpr std::uint64_t kMaxWorkers = 1024;
// The specification requires client ids of 1 to 23 characters to be accepted.
constexpr std::uint64_t kMinClientIdLength = 23;
constexpr std::string_view kEnvPrefix = "BROKER_";

// ---------------------------------------------------------------------------------------------
// Line numbers of keys. nlohmann 3.11 does not report positions for keys or values, so once it
// has accepted the text, this scanner walks the same (now known valid) text and records the
// line of every key path ("limits.max_qos", "listeners[1].port"). It is iterative so a deeply
// nested document cannot exhaust the stack.
class LineIndex {
 public:
  // REQUIRES: `text` is valid JSON with comments.
  explicit LineIndex(std::string_view text) : text_(text) {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // nlohmann skips a UTF-8 BOM too
    scan();
  }

  // 0 when the path was not seen (e.g. a key written with escapes).
  int line_of(std::string_view path) const {
    auto it = lines_.find(path);
    return it == lines_.end() ? 0 : it->second;
  }
  // The first key repeated within one object, if any.
  const std::string& duplicate() const { return duplicate_; }
  int duplicate_line() const { return duplicate_line_; }

 private:
  struct Frame {
    std::string path;
    bool is_array;
    std::size_t index;
  };

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_space() {
    while (!at_end()) {
      char c = text_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
        while (!at_end() && text_[pos_] != '\n') ++pos_;
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '*') {
        pos_ += 2;
        while (!at_end() && !(text_[pos_] == '*' && pos_ + 1 < text_.size() &&
                              text_[pos_ + 1] == '/')) {
          if (text_[pos_] == '\n') ++line_;
          ++pos_;
        }
        pos_ += 2;
      } else {
        return;
      }
    }
  }

  // Valid JSON strings hold no raw newline, so the line does not change inside one.
  std::string read_string() {
    ++pos_;  // opening quote
    std::size_t start = pos_;
    while (!at_end() && text_[pos_] != '"') pos_ += text_[pos_] == '\\' ? 2 : 1;
    std::string s(text_.substr(start, pos_ - start));
    ++pos_;  // closing quote
    return s;
  }

  void record(const std::string& path, int line) {
    auto [it, inserted] = lines_.emplace(path, line);
    if (!inserted && duplicate_.empty()) {
      duplicate_ = path;
      duplicate_line_ = line;
    }
  }

  // Positioned at the first character of an array element or object member.
  void begin_member(Frame& frame) {
    // Options nest three levels deep; deeper paths would only cost memory (quadratic in depth).
    constexpr std::size_t kMaxRecordedDepth = 8;
    if (stack_.size() > kMaxRecordedDepth) {
      if (!frame.is_array) {
        read_string();
        skip_space();
        ++pos_;  // ':'
      }
      pending_.clear();
      return;
    }
    if (frame.is_array) {
      pending_ = fmt::format("{}[{}]", frame.path, frame.index);
      record(pending_, line_);
    } else {
      int line = line_;
      std::string key = read_string();
      pending_ = frame.path.empty() ? key : frame.path + "." + key;
      record(pending_, line);
      skip_space();
      ++pos_;  // ':'
    }
    ++frame.index;
  }

  void after_value() {
    skip_space();
    if (stack_.empty() || peek() != ',') return;
    ++pos_;
    skip_space();
    begin_member(stack_.back());
  }

  void scan() {
    for (;;) {
      skip_space();
      if (at_end()) return;
      char c = text_[pos_];
      if (c == '{' || c == '[') {
        ++pos_;
        stack_.push_back(Frame{pending_, c == '[', 0});
        skip_space();
        if (peek() != '}' && peek() != ']') begin_member(stack_.back());
      } else if (c == '}' || c == ']') {
        ++pos_;
        if (!stack_.empty()) stack_.pop_back();
        after_value();
      } else if (c == '"') {
        read_string();
        after_value();
      } else {
        while (!at_end() && std::strchr(",:[]{}\" \t\r\n/", text_[pos_]) == nullptr) ++pos_;
        after_value();
      }
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  int line_ = 1;
  std::string pending_;
  std::vector<Frame> stack_;
  std::map<std::string, int, std::less<>> lines_;
  std::string duplicate_;
  int duplicate_line_ = 0;
};

// Where a value came from, for the prefix of an error message.
struct Source {
  std::string name;                  // "config.json", "BROKER_WORKERS", "--workers"
  const LineIndex* lines = nullptr;  // set for files only

  std::string locate(std::string_view path) const {
    int line = lines ? lines->line_of(path) : 0;
    return line > 0 ? fmt::format("{}:{}", name, line) : name;
  }
};

// A key as the user wrote it, safe for one log line: control bytes escaped, cut at 80.
std::string printable_key(std::string_view key) {
  constexpr std::size_t kMaxShown = 80;
  std::string out;
  for (char c : key.substr(0, kMaxShown)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  if (key.size() > kMaxShown) out += "...";
  return out;
}

Status fail(const Source& src, std::string_view path, std::string_view what) {
  return Status::invalid_argument(fmt::format("{}: \"{}\" {}", src.locate(path), printable_key(path), what));
}

// A value as the user wrote it, cut short so one line stays one line. Written by hand with a
// depth cap, because nlohmann's dump() recurses once per nesting level.
void show_into(std::string& out, const Json& v, int depth) {
  constexpr std::size_t kMaxShown = 60;
  if (out.size() > kMaxShown) return;
  if (v.is_array() || v.is_object()) {
    out += v.is_array() ? '[' : '{';
    bool first = true;
    for (auto it = v.begin(); it != v.end() && out.size() <= kMaxShown; ++it) {
      if (!first) out += ", ";
      first = false;
      if (v.is_object()) out += Json(it.key()).dump() + ": ";
      if (depth > 8) {
        out += "...";
        break;
      }
      show_into(out, it.value(), depth + 1);
    }
    out += v.is_array() ? ']' : '}';
  } else {
    out += v.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

std::string shown(const Json& v) {
  constexpr std::size_t kMaxShown = 60;
  std::string out;
  show_into(out, v, 0);
  if (out.size() > kMaxShown) out = out.substr(0, kMaxShown) + "...";
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The candidate closest to `word`, or empty when none is close enough to be a likely typo.
std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 4) + 1;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string_view leaf(std::string_view path) {
  auto dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

// ---------------------------------------------------------------------------------------------
// The schema: one row per option, driving the file, the environment, the flags, --print-config
// and the "did you mean" hints, so a new Options field is added in one place.

enum class Kind { Unsigned, Bool, String, Enum, ListenerList, FilterList, TtlRules, DurabilityRules };

struct Field {
  std::string_view key;
  Kind kind;
  std::uint64_t min = 0;
  std::uint64_t max = 0;
  Json (*read)(const Options&);
  // Called with a value already checked against kind/min/max (and normalized).
  void (*write)(Options&, const Json&);
  std::span<const std::string_view> names = {};  // Kind::Enum: the accepted names, in enum order
};

constexpr std::string_view kLogLevelNames[] = {"trace", "debug", "info", "warn", "error", "off"};
constexpr std::string_view kOverflowNames[] = {"drop_oldest", "refuse_newest"};
constexpr std::string_view kDurabilityNames[] = {"durable", "async", "memory"};

template <typename Enum, std::size_t N>
std::optional<Enum> enum_from_name(const std::string_view (&names)[N], std::string_view name) {
  std::string l = lower(name);
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == l) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

template <typename Enum, std::size_t N>
std::string_view enum_name(const std::string_view (&names)[N], Enum value) {
  auto i = static_cast<std::size_t>(value);
  return i < N ? names[i] : std::string_view("?");
}

std::string enum_choices(std::span<const std::string_view> names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += fmt::format("\"{}\"", names[i]);
  }
  return out;
}

bool is_enum_name(std::span<const std::string_view> names, std::string_view name) {
  std::string l = lower(name);
  for (auto n : names) {
    if (n == l) return true;
  }
  return false;
}

// The static_cast is safe: write() only sees values within the row's min..max.
#define BROKER_UNSIGNED_FIELD(key, member, lo, hi)                                      \
  Field {                                                                               \
    key, Kind::Unsigned, lo, hi, [](const Options& o) { return Json(o.member); },       \
        [](Options& o, const Json& v) {                                                 \
          o.member = static_cast<decltype(o.member)>(v.get<std::uint64_t>());           \
        }                                                                               \
  }
#define BROKER_BOOL_FIELD(key, member)                                                        \
  Field {                                                                                     \
    key, Kind::Bool, 0, 1, [](const Options& o) { return Json(o.member); },                   \
        [](Options& o, const Json& v) { o.member = v.get<bool>(); }                           \
  }

const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      Field{"listeners", Kind::ListenerList, 0, kU16Max,
            [](const Options& o) {
              Json list = Json::array();
              for (const auto& l : o.listeners) list.push_back({{"host", l.host}, {"port", l.port}});
              return list;
            },
            [](Options& o, const Json& v) {
              o.listeners.clear();
              for (const auto& item : v) {
                o.listeners.push_back(ListenerOptions{item.at("host").get<std::string>(),
                                                      item.at("port").get<std::uint16_t>()});
              }
            }},
      BROKER_UNSIGNED_FIELD("workers", workers, 0, kMaxWorkers),
      BROKER_UNSIGNED_FIELD("wake_up_coalesce_us", wake_up_coalesce_us, 0, 1000),
      Field{"data_dir", Kind::String, 0, 0, [](const Options& o) { return Json(o.data_dir); },
            [](Options& o, const Json& v) { o.data_dir = v.get<std::string>(); }},
      BROKER_UNSIGNED_FIELD("store_map_size", store_map_size, 1ull << 20, kU64Max),
      BROKER_BOOL_FIELD("store_move_aside_unreadable", store_move_aside_unreadable),
      Field{"persisted_filters", Kind::FilterList, 0, 0,
            [](const Options& o) { return Json(o.persisted_filters); },
            [](Options& o, const Json& v) { o.persisted_filters = v.get<std::vector<std::string>>(); }},
      Field{"message_ttl_rules", Kind::TtlRules, 0, 0,
            [](const Options& o) {
              Json rules = Json::array();
              for (const auto& r : o.message_ttl_rules)
                rules.push_back({{"filter", r.filter}, {"seconds", r.seconds}});
              return rules;
            },
            [](Options& o, const Json& v) {
              o.message_ttl_rules.clear();
              for (const auto& r : v)
                o.message_ttl_rules.push_back(
                    TtlRule{r["filter"].get<std::string>(), r["seconds"].get<std::uint32_t>()});
            }},
      Field{"durability_rules", Kind::DurabilityRules, 0, 0,
            [](const Options& o) {
              Json rules = Json::array();
              for (const auto& r : o.durability_rules)
                rules.push_back({{"filter", r.filter}, {"mode", enum_name(kDurabilityNames, r.mode)}});
              return rules;
            },
            [](Options& o, const Json& v) {
              o.durability_rules.clear();
              for (const auto& r : v)
                o.durability_rules.push_back(DurabilityRule{
                    r["filter"].get<std::string>(),
                    *enum_from_name<Durability>(kDurabilityNames, r["mode"].get<std::string>())});
            }},
      BROKER_UNSIGNED_FIELD("log_retention_seconds", log_retention_seconds, 1, kU64Max / 1000),
      BROKER_UNSIGNED_FIELD("log_max_bytes", log_max_bytes, 1, kU64Max),
      Field{"log_level", Kind::Enum, 0, 0,
            [](const Options& o) { return Json(enum_name(kLogLevelNames, o.log_level)); },
            [](Options& o, const Json& v) {
              o.log_level = *enum_from_name<LogLevel>(kLogLevelNames, v.get<std::string>());
            },
            kLogLevelNames},
      Field{"durability", Kind::Enum, 0, 0,
            [](const Options& o) { return Json(enum_name(kDurabilityNames, o.durability)); },
            [](Options& o, const Json& v) {
              o.durability = *enum_from_name<Durability>(kDurabilityNames, v.get<std::string>());
            },
            kDurabilityNames},
      BROKER_UNSIGNED_FIELD("limits.max_packet_size", limits.max_packet_size, kMinPacket,
                            kProtocolMaxPacket),
      BROKER_UNSIGNED_FIELD("limits.max_connect_packet_size", limits.max_connect_packet_size,
                            kMinPacket, kProtocolMaxPacket),
      BROKER_UNSIGNED_FIELD("limits.receive_maximum", limits.receive_maximum, 1, kU16Max),
      BROKER_UNSIGNED_FIELD("limits.max_inflight", limits.max_inflight, 1, kU16Max),
      BROKER_UNSIGNED_FIELD("limits.max_queued_messages", limits.max_queued_messages, 1, kU32Max),
      BROKER_UNSIGNED_FIELD("limits.max_queued_bytes", limits.max_queued_bytes, 1, kU64Max),
      Field{"limits.queue_overflow", Kind::Enum, 0, 0,
            [](const Options& o) {
              return Json(enum_name(kOverflowNames, o.limits.queue_overflow));
            },
            [](Options& o, const Json& v) {
              o.limits.queue_overflow =
                  *enum_from_name<QueueOverflow>(kOverflowNames, v.get<std::string>());
            },
            kOverflowNames},
      BROKER_BOOL_FIELD("limits.queue_qos0_offline", limits.queue_qos0_offline),
      BROKER_UNSIGNED_FIELD("limits.max_worker_inbox", limits.max_worker_inbox, 1, kU32Max),
      BROKER_UNSIGNED_FIELD("limits.max_pending_output_bytes", limits.max_pending_output_bytes, 0,
                            kU64Max),
      BROKER_UNSIGNED_FIELD("limits.output_high_water_bytes", limits.output_high_water_bytes, 0,
                            kU64Max),
      BROKER_UNSIGNED_FIELD("limits.output_low_water_bytes", limits.output_low_water_bytes, 0,
                            kU64Max),
      BROKER_UNSIGNED_FIELD("limits.max_publisher_pause_ms", limits.max_publisher_pause_ms, 0,
                            kU32Max),
      BROKER_UNSIGNED_FIELD("limits.topic_alias_maximum", limits.topic_alias_maximum, 0, kU16Max),
      BROKER_UNSIGNED_FIELD("limits.max_keep_alive", limits.max_keep_alive, 0, kU16Max),
      BROKER_UNSIGNED_FIELD("limits.max_session_expiry", limits.max_session_expiry, 0, kU32Max),
      BROKER_UNSIGNED_FIELD("limits.persistent_session_expiry", limits.persistent_session_expiry,
                            0, kU32Max),
      BROKER_UNSIGNED_FIELD("limits.max_client_id_length", limits.max_client_id_length,
                            kMinClientIdLength, kU16Max),
      BROKER_UNSIGNED_FIELD("limits.max_subscriptions_per_session",
                            limits.max_subscriptions_per_session, 1, kU32Max),
      BROKER_UNSIGNED_FIELD("limits.max_subscription_bytes_per_session",
                            limits.max_subscription_bytes_per_session, 1, kU64Max),
      BROKER_UNSIGNED_FIELD("limits.max_topic_levels", limits.max_topic_levels, 1, kU16Max),
      BROKER_UNSIGNED_FIELD("limits.max_connections", limits.max_connections, 0, kU32Max),
      BROKER_UNSIGNED_FIELD("limits.max_qos", limits.max_qos, 0, 2),
      BROKER_BOOL_FIELD("limits.retain_available", limits.retain_available),
      BROKER_UNSIGNED_FIELD("limits.max_retained_messages", limits.max_retained_messages, 0,
                            kU64Max),
      BROKER_UNSIGNED_FIELD("limits.max_retained_bytes", limits.max_retained_bytes, 0, kU64Max),
  };
  return kFields;
}

#undef BROKER_UNSIGNED_FIELD
#undef BROKER_BOOL_FIELD

const Field* find_field(std::string_view key) {
  for (const auto& f : fields()) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

// Section names ("limits"): the parts of a key before its last '.'.
bool is_section(std::string_view path) {
  for (const auto& f : fields()) {
    if (f.key.size() > path.size() && f.key.substr(0, path.size()) == path &&
        f.key[path.size()] == '.')
      return true;
  }
  return false;
}

std::string unknown_key(const Source& src, std::string_view path) {
  // Compare whole paths (typos) and last components (a key put in the wrong section).
  std::vector<std::string> keys;
  std::vector<std::string> leaves;
  for (const auto& f : fields()) {
    keys.emplace_back(f.key);
    leaves.emplace_back(leaf(f.key));
  }
  // A long key is no typo of ours (and comparing it would cost its length squared).
  constexpr std::size_t kMaxHinted = 100;
  std::string hint = path.size() > kMaxHinted ? std::string() : closest(path, keys);
  if (hint.empty() && path.size() <= kMaxHinted) {
    std::string by_leaf = closest(leaf(path), leaves);
    if (!by_leaf.empty()) {
      for (const auto& f : fields()) {
        if (leaf(f.key) == by_leaf) hint = std::string(f.key);
      }
    }
  }
  std::string msg = fmt::format("{}: unknown key \"{}\"", src.locate(path), printable_key(path));
  if (!hint.empty() && hint != path) msg += fmt::format(" (did you mean \"{}\"?)", hint);
  return msg;
}

// ---------------------------------------------------------------------------------------------
// Checking one value. Each returns OK and leaves a normalized value in `out`, or the error.

std::optional<std::uint64_t> as_unsigned(const Json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  return std::nullopt;
}

// Listeners bind numeric addresses only: a name would need a resolver at start-up, and could
// mean several addresses.
bool numeric_host(const std::string& host) {
  if (host.find('\0') != std::string::npos) return false;
  unsigned char address[16];
  return inet_pton(AF_INET, host.c_str(), address) == 1 || inet_pton(AF_INET6, host.c_str(), address) == 1;
}

Status check_listener(const Source& src, const std::string& path, const Json& item, Json& out) {
  constexpr std::string_view kAddressRule = "must be \"[HOST:]PORT\" with a numeric HOST and PORT from 0 to 65535";
  if (item.is_string()) {
    auto parsed = parse_listen_address(item.get<std::string>());
    if (!parsed) return fail(src, path, fmt::format("{}, got {}", kAddressRule, shown(item)));
    out = {{"host", parsed.value().host}, {"port", parsed.value().port}};
    return Status::ok();
  }
  if (!item.is_object()) {
    return fail(src, path,
                fmt::format("{} or an object {{\"host\": ..., \"port\": ...}}, got {}",
                            kAddressRule, shown(item)));
  }
  ListenerOptions defaults;
  out = {{"host", defaults.host}, {"port", defaults.port}};
  for (const auto& [key, value] : item.items()) {
    std::string sub = path + "." + key;
    if (key == "host") {
      if (!value.is_string() || !numeric_host(value.get<std::string>()))
        return fail(src, sub, fmt::format("must be a numeric IPv4 or IPv6 address, got {}", shown(value)));
      out["host"] = value;
    } else if (key == "port") {
      auto port = as_unsigned(value);
      if (!port || *port > kU16Max)
        return fail(src, sub, fmt::format("must be an integer from 0 to 65535, got {}",
                                          shown(value)));
      out["port"] = *port;
    } else {
      std::string hint = key.size() > 16 ? std::string() : closest(key, {"host", "port"});
      std::string msg = fmt::format("{}: unknown key \"{}\"", src.locate(sub), printable_key(sub));
      if (!hint.empty()) msg += fmt::format(" (did you mean \"{}.{}\"?)", path, hint);
      return Status::invalid_argument(msg);
    }
  }
  // The host may default to all interfaces; the port is what the listener is.
  if (!item.contains("port")) return fail(src, path, fmt::format("needs a \"port\", got {}", shown(item)));
  return Status::ok();
}

bool valid_filter(const Json& v) {
  return v.is_string() && broker::is_valid_topic_filter(v.get<std::string>()) &&
         !broker::is_shared_filter(v.get<std::string>());
}

// A rule mapping a topic filter to a value: {"filter": F, "<key>": V}, or "F=V" from the
// environment (V becomes a number when it is one). `value_ok` checks V; `rule_text` says what
// a rule must look like.
Status check_filter_rule(const Source& src, const std::string& path, const Json& item,
                         const std::string& key, std::string_view rule_text,
                         bool (*value_ok)(const Json&), Json& out) {
  Json rule = item;
  if (item.is_string()) {
    const std::string text = item.get<std::string>();
    auto eq = text.rfind('=');
    if (eq == std::string::npos) return fail(src, path, fmt::format("{}, got {}", rule_text, shown(item)));
    std::string value = text.substr(eq + 1);
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    bool numeric = ec == std::errc() && end == value.data() + value.size() && !value.empty();
    rule = Json{{"filter", text.substr(0, eq)}, {key, numeric ? Json(n) : Json(value)}};
  }
  if (!rule.is_object() || rule.size() != 2 || !rule.contains("filter") || !rule.contains(key))
    return fail(src, path, fmt::format("{}, got {}", rule_text, shown(item)));
  if (!valid_filter(rule["filter"]))
    return fail(src, path + ".filter", fmt::format("must be a topic filter, got {}", shown(rule["filter"])));
  if (!value_ok(rule[key])) return fail(src, path + "." + key, fmt::format("{}, got {}", rule_text, shown(rule[key])));
  out = {{"filter", rule["filter"]}, {key, rule[key]}};
  return Status::ok();
}

bool ttl_seconds_ok(const Json& v) {
  auto n = as_unsigned(v);
  return n && *n >= 1 && *n <= kU32Max;
}

bool durability_name_ok(const Json& v) {
  return v.is_string() && is_enum_name(kDurabilityNames, v.get<std::string>());
}

Status check_rules(const Source& src, const std::string& path, const Json& v, Kind kind, Json& out) {
  const bool ttl = kind == Kind::TtlRules;
  const std::string key = ttl ? "seconds" : "mode";
  const std::string_view rule_text =
      ttl ? "must be {\"filter\": TOPIC-FILTER, \"seconds\": 1..4294967295} or \"FILTER=SECONDS\""
          : "must be {\"filter\": TOPIC-FILTER, \"mode\": \"durable\"|\"async\"|\"memory\"} or \"FILTER=MODE\"";
  if (!v.is_array()) return fail(src, path, fmt::format("must be an array of rules, got {}", shown(v)));
  out = Json::array();
  for (std::size_t i = 0; i < v.size(); ++i) {
    Json rule;
    if (Status st = check_filter_rule(src, fmt::format("{}[{}]", path, i), v[i], key, rule_text,
                                      ttl ? ttl_seconds_ok : durability_name_ok, rule);
        !st)
      return st;
    if (!ttl) rule[key] = lower(rule[key].get<std::string>());
    out.push_back(std::move(rule));
  }
  return Status::ok();
}

Status check_value(const Source& src, const Field& f, const Json& v, Json& out) {
  const std::string path(f.key);
  switch (f.kind) {
    case Kind::Unsigned: {
      auto n = as_unsigned(v);
      if (!n || *n < f.min || *n > f.max)
        return fail(src, path, fmt::format("must be an integer from {} to {}, got {}", f.min,
                                           f.max, shown(v)));
      out = *n;
      return Status::ok();
    }
    case Kind::Bool:
      if (!v.is_boolean())
        return fail(src, path, fmt::format("must be true or false, got {}", shown(v)));
      out = v;
      return Status::ok();
    case Kind::String:
      // A NUL would cut the string short where the system reads it (a path).
      if (!v.is_string() || v.get<std::string>().empty() ||
          v.get<std::string>().find('\0') != std::string::npos)
        return fail(src, path, fmt::format("must be a non-empty string without NUL, got {}", shown(v)));
      out = v;
      return Status::ok();
    case Kind::Enum: {
      if (!v.is_string() || !is_enum_name(f.names, v.get<std::string>())) {
        return fail(src, path,
                    fmt::format("must be one of {}, got {}", enum_choices(f.names), shown(v)));
      }
      out = lower(v.get<std::string>());
      return Status::ok();
    }
    case Kind::FilterList: {
      if (!v.is_array()) return fail(src, path, fmt::format("must be an array of topic filters, got {}", shown(v)));
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (!valid_filter(v[i]))
          return fail(src, fmt::format("{}[{}]", path, i),
                      fmt::format("must be a topic filter, got {}", shown(v[i])));
      }
      out = v;
      return Status::ok();
    }
    case Kind::TtlRules:
    case Kind::DurabilityRules:
      return check_rules(src, path, v, f.kind, out);
    case Kind::ListenerList: {
      if (!v.is_array() || v.empty())
        return fail(src, path,
                    fmt::format("must be a non-empty array of \"[HOST:]PORT\" strings or "
                                "{{\"host\": ..., \"port\": ...}} objects, got {}",
                                shown(v)));
      out = Json::array();
      for (std::size_t i = 0; i < v.size(); ++i) {
        std::string item_path = fmt::format("{}[{}]", path, i);
        Json item;
        if (Status st = check_listener(src, item_path, v[i], item); !st) return st;
        // The second bind would fail at start with a vaguer message; port 0 never collides.
        for (const auto& earlier : out) {
          if (item["port"] != 0 && earlier == item)
            return fail(src, item_path,
                        fmt::format("repeats {}:{}", item["host"].get<std::string>(),
                                    item["port"].get<std::uint16_t>()));
        }
        out.push_back(std::move(item));
      }
      return Status::ok();
    }
  }
  return Status::internal("unhandled option kind");
}

Status apply_value(const Source& src, const Field& f, const Json& v, Options& options) {
  Json normalized;
  if (Status st = check_value(src, f, v, normalized); !st) return st;
  f.write(options, normalized);
  return Status::ok();
}

// Text from the environment or a flag, turned into the JSON value a file would hold, so one
// checker serves every source. Text that does not fit the kind stays a string and is reported.
Json json_from_text(Kind kind, std::string_view text) {
  switch (kind) {
    case Kind::Unsigned: {
      std::uint64_t u = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), u);
      if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) return u;
      std::int64_t s = 0;
      auto [end2, ec2] = std::from_chars(text.data(), text.data() + text.size(), s);
      if (ec2 == std::errc() && end2 == text.data() + text.size() && !text.empty()) return s;
      return std::string(text);
    }
    case Kind::Bool: {
      std::string l = lower(text);
      if (l == "true" || l == "1" || l == "yes" || l == "on") return true;
      if (l == "false" || l == "0" || l == "no" || l == "off") return false;
      return std::string(text);
    }
    case Kind::FilterList:
    case Kind::TtlRules:
    case Kind::DurabilityRules:
    case Kind::ListenerList: {
      Json list = Json::array();
      if (text.empty()) return list;
      std::size_t start = 0;
      for (;;) {
        std::size_t comma = text.find(',', start);
        std::string_view piece = text.substr(start, comma == std::string_view::npos
                                                        ? std::string_view::npos
                                                        : comma - start);
        while (!piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
        while (!piece.empty() && piece.back() == ' ') piece.remove_suffix(1);
        list.push_back(std::string(piece));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
      return list;
    }
    case Kind::String:
    case Kind::Enum:
      break;
  }
  return std::string(text);
}

Status apply_object(const Source& src, const Json& object, const std::string& prefix,
                    Options& options) {
  for (const auto& [key, value] : object.items()) {
    std::string path = prefix.empty() ? key : prefix + "." + key;
    // Sections nest as objects; "limits.max_qos" as one key is not a spelling we document.
    if (key.find('.') != std::string::npos) return Status::invalid_argument(unknown_key(src, path));
    if (const Field* f = find_field(path)) {
      if (Status st = apply_value(src, *f, value, options); !st) return st;
    } else if (is_section(path)) {
      if (!value.is_object())
        return fail(src, path, fmt::format("must be an object, got {}", shown(value)));
      if (Status st = apply_object(src, value, path, options); !st) return st;
    } else {
      return Status::invalid_argument(unknown_key(src, path));
    }
  }
  return Status::ok();
}

Result<std::string> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    return Status::io_error(
        fmt::format("cannot open config file \"{}\": {}", path, std::strerror(errno)));
  // A config is a few KB: a bound keeps -c /dev/zero (or a wrong file) from eating memory.
  constexpr std::size_t kMaxConfigBytes = 4u << 20;
  std::string text;
  char buf[8192];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxConfigBytes) {
      std::fclose(f);
      return Status::invalid_argument(fmt::format("config file \"{}\" is larger than 4 MiB", path));
    }
  }
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0)
    return Status::io_error(
        fmt::format("cannot read config file \"{}\": {}", path, std::strerror(err)));
  return text;
}

// ---------------------------------------------------------------------------------------------
// Flags.

struct Flag {
  std::string_view long_name;  // "--workers"
  std::string_view short_name; // "-c" or empty
  std::string_view key;        // the option it sets; empty for actions and --config
  bool takes_value;
};

constexpr Flag kFlags[] = {
    {"--config", "-c", "", true},          {"--listen", "", "listeners", true},
    {"--data-dir", "", "data_dir", true},  {"--workers", "", "workers", true},
    {"--log-level", "", "log_level", true}, {"--print-config", "", "", false},
    {"--help", "-h", "", false},           {"--version", "", "", false},
};

const Flag* find_flag(std::string_view name) {
  for (const auto& f : kFlags) {
    if (f.long_name == name || (!f.short_name.empty() && f.short_name == name)) return &f;
  }
  return nullptr;
}

struct FlagValue {
  const Flag* flag;
  std::string value;
};

}  // namespace

Environment process_environment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

Result<ListenerOptions> parse_listen_address(std::string_view text) {
  ListenerOptions out;
  std::string_view port_text = text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close == 1 || close + 1 >= text.size() ||
        text[close + 1] != ':')
      return Status::invalid_argument(fmt::format("\"{}\": expected [IPV6]:PORT", text));
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    if (text.find(':') != colon)
      return Status::invalid_argument(
          fmt::format("\"{}\": write an IPv6 address in brackets, as [::1]:1883", text));
    if (colon == 0) return Status::invalid_argument(fmt::format("\"{}\": empty host", text));
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > kU16Max)
    return Status::invalid_argument(
        fmt::format("\"{}\": PORT must be an integer from 0 to 65535", text));
  out.port = static_cast<std::uint16_t>(port);
  if (!numeric_host(out.host))
    return Status::invalid_argument(fmt::format("\"{}\": HOST must be a numeric IPv4 or IPv6 address", text));
  return out;
}

Status apply_config_text(std::string_view text, std::string_view source_name,
                         Options& options) {
  // JSON has no NUL: the parser would stop there and ignore the rest, silently.
  if (auto nul = text.find('\0'); nul != std::string_view::npos) {
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n');
    return Status::invalid_argument(fmt::format("{}:{}: a NUL byte is not JSON", source_name, line));
  }
  // No option nests deeper than a few levels; far deeper input would only cost stack later.
  constexpr int kMaxDepth = 16;
  // Keys of the objects being parsed, innermost last: a key written twice is found however it
  // is spelt ("work\u0065rs" is "workers"); LineIndex below finds plain repeats with their line.
  std::vector<std::set<std::string>> open_objects;
  std::string repeated_key;
  const Json::parser_callback_t watch_parse = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth > kMaxDepth) throw std::length_error("nested deeper than 16 levels");
    if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == Json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    if (event == Json::parse_event_t::key && !open_objects.empty() &&
        !open_objects.back().insert(parsed.get<std::string>()).second && repeated_key.empty())
      repeated_key = parsed.get<std::string>();
    return true;
  };
  Json doc;
  try {
    doc = Json::parse(text, watch_parse, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const std::length_error& e) {
    return Status::invalid_argument(fmt::format("{}: {}", source_name, e.what()));
  } catch (const Json::out_of_range& e) {
    // A number past what any option holds (1e309); nlohmann gives no position for it.
    std::string reason = e.what();
    if (auto bracket = reason.find("] "); bracket != std::string::npos) reason.erase(0, bracket + 2);
    return Status::invalid_argument(fmt::format("{}: {}", source_name, reason));
  } catch (const Json::parse_error& e) {
    // e.byte is the 1-based offset of the character that broke the parse.
    std::size_t end = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    std::size_t line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    // nlohmann's text is "[json.exception.parse_error.101] parse error at line L, column C:
    // <reason>"; keep only the reason, since the position is printed our way.
    std::string reason = e.what();
    if (auto colon = reason.find(": "); colon != std::string::npos) reason.erase(0, colon + 2);
    return Status::invalid_argument(fmt::format("{}:{}:{}: JSON syntax error: {}", source_name,
                                                line, end - line_start + 1, reason));
  } catch (const Json::exception& e) {
    return Status::invalid_argument(fmt::format("{}: {}", source_name, e.what()));
  }

  LineIndex lines(text);
  Source src{std::string(source_name), &lines};
  if (!lines.duplicate().empty()) {
    return Status::invalid_argument(fmt::format("{}:{}: duplicate key \"{}\"", source_name,
                                                lines.duplicate_line(), lines.duplicate()));
  }
  if (!repeated_key.empty()) {
    return Status::invalid_argument(
        fmt::format("{}: duplicate key \"{}\"", source_name, printable_key(repeated_key)));
  }
  if (!doc.is_object()) {
    return Status::invalid_argument(fmt::format(
        "{}: the top level must be a JSON object {{...}}, got {}", source_name, doc.type_name()));
  }
  try {
    return apply_object(src, doc, "", options);
  } catch (const Json::exception& e) {
    // Values are type-checked before use, so this is a bug, reported rather than thrown.
    return Status::internal(fmt::format("{}: {}", source_name, e.what()));
  }
}

Status apply_environment(const Environment& env, Options& options,
                         std::vector<std::string>& warnings) {
  auto listen = env.find("BROKER_LISTEN");
  auto listeners = env.find("BROKER_LISTENERS");
  if (listen != env.end() && listeners != env.end())
    return Status::invalid_argument(
        "BROKER_LISTEN and BROKER_LISTENERS are the same setting; set only one");

  std::vector<std::string> known;
  for (const auto& f : fields()) known.push_back(env_name_for(f.key));
  try {
    for (const auto& f : fields()) {
      std::string name = env_name_for(f.key);
      auto it = env.find(name);
      if (it == env.end() && f.kind == Kind::ListenerList) {
        it = listen;
        name = "BROKER_LISTEN";
      }
      if (it == env.end()) continue;
      Source src{name, nullptr};
      if (Status st = apply_value(src, f, json_from_text(f.kind, it->second), options); !st)
        return st;
    }
  } catch (const Json::exception& e) {
    return Status::internal(e.what());
  }
  for (const auto& [name, value] : env) {
    if (name.compare(0, kEnvPrefix.size(), kEnvPrefix) != 0) continue;
    if (name == "BROKER_LISTEN" || name == "BROKER_CONFIG" ||
        std::find(known.begin(), known.end(), name) != known.end())
      continue;
    std::string hint = closest(name, known);
    warnings.push_back(
        fmt::format("ignoring unknown environment variable {}{}", name,
                    hint.empty() ? "" : fmt::format(" (did you mean {}?)", hint)));
  }
  return Status::ok();
}

Result<Config> load_config(const std::vector<std::string>& args, const Environment& env) {
  Config cfg;
  std::vector<FlagValue> settings;
  std::optional<std::string> config_path;

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::string_view name = arg;
    std::optional<std::string> inline_value;
    if (arg.size() > 2 && arg.substr(0, 2) == "--") {
      if (auto eq = arg.find('='); eq != std::string_view::npos) {
        name = arg.substr(0, eq);
        inline_value = std::string(arg.substr(eq + 1));
      }
    }
    const Flag* flag = find_flag(name);
    if (flag == nullptr) {
      if (arg.empty() || arg.front() != '-')
        return Status::invalid_argument(
            fmt::format("unexpected argument \"{}\" (see --help)", arg));
      std::vector<std::string> names;
      for (const auto& f : kFlags) names.emplace_back(f.long_name);
      std::string hint = closest(name, names);
      return Status::invalid_argument(
          fmt::format("unknown option \"{}\"{} (see --help)", name,
                      hint.empty() ? "" : fmt::format(" (did you mean {}?)", hint)));
    }
    std::string value;
    if (flag->takes_value) {
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < args.size() && !find_flag(args[i + 1])) {
        value = args[++i];  // (a value that is itself an option means this one's was left out)
      } else {
        return Status::invalid_argument(fmt::format("option {} needs a value", flag->long_name));
      }
    } else if (inline_value) {
      return Status::invalid_argument(fmt::format("option {} takes no value", flag->long_name));
    }

    if (flag->long_name == "--help") {
      cfg.action = Action::Help;
      return cfg;
    }
    if (flag->long_name == "--version") {
      cfg.action = Action::Version;
      return cfg;
    }
    if (flag->long_name == "--print-config") {
      cfg.action = Action::PrintConfig;
    } else if (flag->long_name == "--config") {
      config_path = value;
    } else {
      settings.push_back(FlagValue{flag, std::move(value)});
    }
  }

  if (!config_path) {
    if (auto it = env.find("BROKER_CONFIG"); it != env.end() && !it->second.empty())
      config_path = it->second;
  }
  if (config_path) {
    if (config_path->empty()) return Status::invalid_argument("--config needs a file name");
    auto text = read_file(*config_path);
    if (!text) return text.status();
    if (Status st = apply_config_text(text.value(), *config_path, cfg.options); !st) return st;
    cfg.config_path = *config_path;
  }

  if (Status st = apply_environment(env, cfg.options, cfg.warnings); !st) return st;

  // Repeated --listen flags build one list that replaces the configured listeners.
  Json listen_list = Json::array();
  for (const auto& s : settings) {
    if (s.flag->key == "listeners") listen_list.push_back(s.value);
  }
  try {
    for (const auto& s : settings) {
      const Field* f = find_field(s.flag->key);
      if (f == nullptr) return Status::internal("flag without an option");
      if (f->kind == Kind::ListenerList) continue;
      Source src{std::string(s.flag->long_name), nullptr};
      if (Status st = apply_value(src, *f, json_from_text(f->kind, s.value), cfg.options); !st)
        return st;
    }
    if (!listen_list.empty()) {
      Source src{"--listen", nullptr};
      if (Status st = apply_value(src, *find_field("listeners"), listen_list, cfg.options); !st)
        return st;
    }
  } catch (const Json::exception& e) {
    return Status::internal(e.what());
  }
  return cfg;
}

std::string options_to_json(const Options& options) {
  Json doc = Json::object();
  for (const auto& f : fields()) {
    Json* node = &doc;
    std::string_view key = f.key;
    for (auto dot = key.find('.'); dot != std::string_view::npos; dot = key.find('.')) {
      node = &(*node)[std::string(key.substr(0, dot))];
      key.remove_prefix(dot + 1);
    }
    (*node)[std::string(key)] = f.read(options);
  }
  // Strings from the environment or flags may not be UTF-8; print them rather than throw.
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& f : fields()) keys.emplace_back(f.key);
  return keys;
}

std::string env_name_for(std::string_view key) {
  std::string name = std::string(kEnvPrefix) + upper(key);
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

std::string usage_text(std::string_view program) {
  return fmt::format(
      "Usage: {0} [options]\n"
      "\n"
      "An MQTT 3.1.1/5.0 broker (3.1 clients are served too). Settings come from\n"
      "defaults < config file < BROKER_* environment variables < flags.\n"
      "\n"
      "Options:\n"
      "  -c, --config FILE       JSON config file (comments allowed); default: $BROKER_CONFIG\n"
      "      --listen [HOST:]PORT\n"
      "                          MQTT listener on a numeric address; repeat for several;\n"
      "                          replaces the configured list (IPv6: [::]:1883).\n"
      "                          Default: 0.0.0.0:1883\n"
      "      --data-dir DIR      directory for durable state. Default: ./data\n"
      "      --workers N         worker threads; 0 = one per core, less one. Default: 0\n"
      "      --log-level LEVEL   trace|debug|info|warn|error|off. Default: info\n"
      "      --print-config      print the effective config as JSON and exit\n"
      "  -h, --help              print this help and exit\n"
      "      --version           print the version and exit\n"
      "\n"
      "Every config key can also be set from the environment: BROKER_ + the key path\n"
      "upper-cased, '.' becoming '_' (limits.max_qos -> BROKER_LIMITS_MAX_QOS).\n"
      "BROKER_LISTEN takes a comma-separated [HOST:]PORT list.\n"
      "\n"
      "Exit status: 0 after a clean stop, 1 on a runtime failure, 2 on a usage or config error.\n",
      program);
}

std::string version_text(std::string_view program) {
  return fmt::format("{} {}\n", program, BROKER_VERSION_STRING);
}

}  // namespace broker::server
