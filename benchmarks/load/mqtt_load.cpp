// mqtt_load: an MQTT 3.1.1/5.0 load generator. One thread, one epoll loop, non-blocking
// sockets, thousands of connections per process. Packets go through the project's own codec
// (protocol/encoder.hpp, protocol/decoder.hpp), so it also exercises that codec as a client.
//
// Scenarios (--scenario):
//   idle    N clients, each subscribes to load/<offset+i>, holds D seconds with PINGREQs, then
//           checks every connection still answers a PINGREQ.
//   p2p     P publishers -> P subscribers, one topic per pair.
//   fanout  1 publisher -> N subscribers on one topic.
//   fanin   N publishers -> 1 subscriber (one topic per publisher, one wildcard subscription).
//   shared  P publishers (--publishers) -> $share/<group>/<topic> with N members.
//
// Every message payload starts with (magic, publisher id, sequence, send time CLOCK_MONOTONIC),
// so subscribers count losses, duplicates and reordering exactly per publisher. After the run,
// publishing stops and the tool waits for the missing messages (until none has arrived for
// --drain seconds, at most 120 s) and
// outstanding acks; whatever is still missing then is counted lost, never hidden by a stall.
// The result is one JSON line on stdout.
//
// Flags worth knowing: --rate is the total over all publishers (0 = as fast as the socket and
// the window allow); --window caps each publisher's unacknowledged QoS 1/2 messages (and is cut
// to the broker's 5.0 Receive Maximum); --source-addrs binds each socket round-robin so one
// process can exceed the ports of a single (source, destination) pair; --strict makes any
// loss, duplicate, refused or dropped client an exit status of 3. In `shared`, out_of_order
// counts arrivals across members of the group, where no order is promised.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/decoder.hpp"
#include "protocol/encoder.hpp"
#include "protocol/packet.hpp"

namespace {

namespace proto = broker::protocol;
using broker::ReasonCode;

constexpr std::uint32_t kMagic = 0x4C444731;  // "LDG1"
constexpr std::size_t kStampSize = 24;        // magic u32, publisher u32, seq u64, time u64
constexpr std::uint64_t kNsPerSec = 1'000'000'000ULL;
constexpr double kMaxDrainSeconds = 120;  // the longest wait for in-flight messages

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<std::uint64_t>(ts.tv_nsec);
}

double seconds(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }

void put_u32(char* p, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
}
void put_u64(char* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
}
std::uint32_t get_u32(const unsigned char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return v;
}
std::uint64_t get_u64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

// ---------------------------------------------------------------------------------------------
// Options

enum class Scenario { Idle, P2p, Fanout, Fanin, Shared };

struct Options {
  Scenario scenario = Scenario::P2p;
  std::string scenario_name = "p2p";
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  std::vector<in_addr> source_addrs;
  std::uint32_t clients = 10;
  std::uint32_t publishers = 1;  // shared only
  double duration = 10;
  double drain = 5;
  std::uint8_t qos = 0;
  std::uint32_t window = 64;
  double rate = 0;  // total messages per second over all publishers; 0 = flat out
  std::size_t payload = 64;
  proto::ProtocolVersion protocol = proto::ProtocolVersion::V311;
  double connect_rate = 0;
  std::uint32_t max_pending = 512;  // handshakes in progress at once
  double connect_timeout = 15;      // one client's TCP connect + CONNACK (+ SUBACK)
  std::uint16_t keepalive = 30;
  std::uint32_t id_offset = 0;  // idle: topic and client numbering start, for several processes
  std::string prefix;           // client ids and topics; default from the pid
  bool strict = false;          // exit 3 on any loss, duplicate or failed client
  bool persistent = false;      // persistent sessions (clean session 0 / expiry 300 s): durability's cost
};

[[noreturn]] void usage(const char* msg) {
  if (msg) std::fprintf(stderr, "mqtt_load: %s\n", msg);
  std::fprintf(stderr,
               "usage: mqtt_load --scenario idle|p2p|fanout|fanin|shared [--host H] [--port P]\n"
               "  [--source-addrs 127.0.0.2-127.0.0.9|a,b,c] [--clients N] [--publishers P]\n"
               "  [--duration S] [--drain S] [--qos 0|1|2] [--window W] [--rate MSG_PER_S]\n"
               "  [--payload BYTES] [--protocol 4|5] [--connect-rate PER_S] [--max-pending N]\n"
               "  [--persistent]\n"
               "  [--connect-timeout S] [--keepalive S] [--id-offset N] [--prefix STR] [--strict]\n");
  std::exit(2);
}

template <typename T>
T parse_num(std::string_view s, const char* flag) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) {
    std::fprintf(stderr, "mqtt_load: bad value '%.*s' for %s\n", static_cast<int>(s.size()),
                 s.data(), flag);
    std::exit(2);
  }
  return v;
}

double parse_double(std::string_view s, const char* flag) {
  std::string tmp(s);
  char* end = nullptr;
  double v = std::strtod(tmp.c_str(), &end);
  if (end == tmp.c_str() || *end != '\0' || !(v >= 0)) {
    std::fprintf(stderr, "mqtt_load: bad value '%s' for %s\n", tmp.c_str(), flag);
    std::exit(2);
  }
  return v;
}

in_addr parse_ipv4(std::string_view s) {
  in_addr a{};
  std::string tmp(s);
  if (inet_pton(AF_INET, tmp.c_str(), &a) != 1) usage("--source-addrs wants IPv4 addresses");
  return a;
}

// "a-b" (inclusive range on the last octets) or "a,b,c".
std::vector<in_addr> parse_sources(std::string_view s) {
  std::vector<in_addr> out;
  if (auto dash = s.find('-'); dash != std::string_view::npos) {
    std::uint32_t lo = ntohl(parse_ipv4(s.substr(0, dash)).s_addr);
    std::uint32_t hi = ntohl(parse_ipv4(s.substr(dash + 1)).s_addr);
    if (hi < lo || hi - lo > 1024) usage("bad --source-addrs range");
    for (std::uint32_t a = lo; a <= hi; ++a) out.push_back(in_addr{htonl(a)});
    return out;
  }
  while (!s.empty()) {
    auto comma = s.find(',');
    out.push_back(parse_ipv4(s.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--persistent") {
      o.persistent = true;
      continue;
    }
    if (flag == "--strict") {
      o.strict = true;
      continue;
    }
    if (flag == "-h" || flag == "--help") usage(nullptr);
    if (i + 1 >= argc) usage("missing value");
    std::string_view v = argv[++i];
    const char* f = argv[i - 1];
    if (flag == "--scenario") {
      o.scenario_name = std::string(v);
      if (v == "idle") o.scenario = Scenario::Idle;
      else if (v == "p2p") o.scenario = Scenario::P2p;
      else if (v == "fanout") o.scenario = Scenario::Fanout;
      else if (v == "fanin") o.scenario = Scenario::Fanin;
      else if (v == "shared") o.scenario = Scenario::Shared;
      else usage("unknown scenario");
    } else if (flag == "--host") o.host = std::string(v);
    else if (flag == "--port") o.port = parse_num<std::uint16_t>(v, f);
    else if (flag == "--source-addrs") o.source_addrs = parse_sources(v);
    else if (flag == "--clients") o.clients = parse_num<std::uint32_t>(v, f);
    else if (flag == "--publishers") o.publishers = parse_num<std::uint32_t>(v, f);
    else if (flag == "--duration") o.duration = parse_double(v, f);
    else if (flag == "--drain") o.drain = parse_double(v, f);
    else if (flag == "--qos") o.qos = parse_num<std::uint8_t>(v, f);
    else if (flag == "--window") o.window = parse_num<std::uint32_t>(v, f);
    else if (flag == "--rate") o.rate = parse_double(v, f);
    else if (flag == "--payload") o.payload = parse_num<std::size_t>(v, f);
    else if (flag == "--protocol") {
      auto p = parse_num<int>(v, f);
      if (p != 4 && p != 5) usage("--protocol is 4 or 5");
      o.protocol = p == 5 ? proto::ProtocolVersion::V5 : proto::ProtocolVersion::V311;
    } else if (flag == "--connect-rate") o.connect_rate = parse_double(v, f);
    else if (flag == "--max-pending") o.max_pending = parse_num<std::uint32_t>(v, f);
    else if (flag == "--connect-timeout") o.connect_timeout = parse_double(v, f);
    else if (flag == "--keepalive") o.keepalive = parse_num<std::uint16_t>(v, f);
    else if (flag == "--id-offset") o.id_offset = parse_num<std::uint32_t>(v, f);
    else if (flag == "--prefix") o.prefix = std::string(v);
    else usage("unknown flag");
  }
  if (o.qos > 2) usage("--qos is 0, 1 or 2");
  if (o.clients == 0) usage("--clients must be > 0");
  if (o.publishers == 0) usage("--publishers must be > 0");
  if (o.window == 0 || o.window > 65535) usage("--window is 1..65535");
  if (o.max_pending == 0) usage("--max-pending must be > 0");
  o.payload = std::max(o.payload, kStampSize);  // the stamp must fit
  if (o.prefix.empty()) o.prefix = "ml" + std::to_string(getpid());
  return o;
}

// ---------------------------------------------------------------------------------------------
// Measurement

// Log-linear histogram of nanoseconds: 32 sub-buckets per power of two (about 3% resolution).
class Histogram {
 public:
  void record(std::uint64_t v) {
    ++buckets_[index(v)];
    ++count_;
    max_ = std::max(max_, v);
  }
  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  // Upper bound of the bucket holding quantile q, capped by the maximum seen.
  std::uint64_t percentile(double q) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned kSubBits = 5;
  static std::size_t index(std::uint64_t v) {
    if (v < (1u << kSubBits)) return static_cast<std::size_t>(v);
    unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(v));
    std::uint64_t sub = (v >> (msb - kSubBits)) & ((1u << kSubBits) - 1);
    return static_cast<std::size_t>((msb - kSubBits + 1) * (1u << kSubBits) + sub);
  }
  static std::uint64_t upper(std::size_t i) {
    if (i < (1u << kSubBits)) return i;
    auto msb = static_cast<unsigned>(i >> kSubBits) + kSubBits - 1;
    std::uint64_t sub = i & ((1u << kSubBits) - 1);
    return (((1ULL << kSubBits) + sub + 1) << (msb - kSubBits)) - 1;
  }
  std::vector<std::uint64_t> buckets_ = std::vector<std::uint64_t>(64u << kSubBits, 0);
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

// What one receiver saw of one publisher's sequence.
struct PubTrack {
  std::vector<std::uint64_t> seen;  // bitmap by sequence number
  std::uint64_t distinct = 0;
  std::uint64_t highest = 0;
  bool any = false;
};

// A receiver: one subscriber, or a whole shared-subscription group (each message once per group).
struct Tracker {
  std::uint32_t first_pub = 0;
  std::vector<PubTrack> pubs;  // publishers first_pub .. first_pub + pubs.size() - 1
};

struct Totals {
  std::uint64_t received = 0;  // every PUBLISH with a valid stamp
  std::uint64_t distinct = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t unexpected = 0;  // not ours, or from a publisher this receiver should not get
};

// ---------------------------------------------------------------------------------------------
// Connections

enum class Role : std::uint8_t { Idle, Publisher, Subscriber };
enum class State : std::uint8_t { NotStarted, Connecting, AwaitConnack, AwaitSuback, Ready, Closed, Failed };

struct Conn {
  int fd = -1;
  Role role = Role::Idle;
  State state = State::NotStarted;
  bool epoll_out = false;  // EPOLLOUT armed
  bool dirty = false;      // has output waiting for the end of the loop turn
  bool ping_outstanding = false;
  std::uint32_t index = 0;    // publisher id, or subscriber number
  std::uint32_t tracker = 0;  // subscribers: which Tracker counts for it
  std::string client_id;
  std::string filter;  // subscription (subscribers and idle clients)
  proto::Decoder decoder;
  std::string out;
  std::size_t out_off = 0;
  std::uint64_t started_ns = 0;
  std::uint64_t last_send_ns = 0;
  std::uint64_t ping_sent_ns = 0;
  std::uint64_t received = 0;  // PUBLISHes on this connection
  // Publisher state.
  std::unique_ptr<proto::Publish> publish;  // template: topic, QoS; payload sized to --payload
  std::uint64_t next_seq = 0;
  std::uint64_t acked = 0;
  std::uint32_t inflight = 0;
  std::uint32_t window = 0;
  std::uint16_t next_pid = 1;
  std::vector<std::uint8_t> pid_state;  // 0 free, 1 awaiting PUBACK/PUBREC, 2 awaiting PUBCOMP

  std::size_t pending() const { return out.size() - out_off; }
};

enum class Phase { Connect, Run, FinalPing, Drain, Done };

class LoadGen {
 public:
  explicit LoadGen(Options opts) : opts_(std::move(opts)) {}
  int run();

 private:
  void setup();
  void start_connections(std::uint64_t now);
  void start_one(Conn& c, std::uint64_t now);
  void on_event(Conn& c, std::uint32_t events, std::uint64_t now);
  void on_connected(Conn& c, std::uint64_t now);
  void on_readable(Conn& c, std::uint64_t now);
  void on_packet(Conn& c, proto::Packet& packet, std::uint64_t now);
  void on_publish(Conn& c, const proto::Publish& p, std::uint64_t now);
  void on_ready(Conn& c, std::uint64_t now);
  void fail(Conn& c, const std::string& why);
  void lost_connection(Conn& c, const std::string& why);
  void close_conn(Conn& c);
  void send_packet(Conn& c, const proto::Packet& p, std::uint64_t now);
  void flush(Conn& c);
  void flush_dirty();  // one send per connection per loop turn, as pipelining clients do
  void set_epoll_out(Conn& c, bool on);
  bool pump(Conn& c, std::uint64_t now);  // true when it could send more right away
  // Fixed rate: publisher p's message k is scheduled at (k + p / publishers) / per-publisher
  // rate after the run starts, so the publishers interleave evenly instead of sending together.
  std::uint64_t scheduled_ns(const Conn& c, std::uint64_t seq) const;
  std::uint64_t messages_due(const Conn& c, std::uint64_t now) const;  // scheduled by `now`
  std::uint64_t next_send_ns() const;  // earliest scheduled message of a publisher that may send
  void free_pid(Conn& c, std::uint16_t pid);
  void tick(std::uint64_t now);
  void note_error(const std::string& what) { ++errors_[what]; }
  std::uint64_t expected_total() const;
  bool publishers_settled() const;
  void print_result(std::uint64_t end_ns);

  Options opts_;
  sockaddr_in dest_{};
  int epfd_ = -1;
  std::vector<Conn> conns_;
  std::vector<std::uint32_t> dirty_;  // connections with output queued by send_packet
  std::vector<Tracker> trackers_;
  std::uint32_t num_pubs_ = 0;
  std::string payload_fill_;  // bytes after the stamp
  proto::PayloadPtr payload_size_only_;  // encode_publish_head reads only its size

  Phase phase_ = Phase::Connect;
  std::uint64_t t0_ = 0;
  std::uint64_t connect_deadline_ = 0;
  std::uint64_t last_ready_ns_ = 0;
  std::uint64_t run_start_ = 0;
  std::uint64_t run_end_ = 0;
  std::uint64_t phase_deadline_ = 0;
  std::uint64_t drain_start_ = 0;
  std::uint64_t drain_end_ = 0;
  std::uint64_t next_tick_ = 0;
  std::uint64_t first_recv_ns_ = 0;
  std::uint64_t last_recv_ns_ = 0;

  std::uint32_t started_ = 0;
  std::uint32_t pending_ = 0;  // handshakes in progress
  std::uint32_t ready_ = 0;
  std::uint32_t failed_ = 0;
  std::uint32_t dropped_ = 0;  // lost after being ready
  std::uint32_t src_next_ = 0;
  std::uint64_t pings_sent_ = 0;
  std::uint64_t pongs_ = 0;
  std::uint64_t ping_timeouts_ = 0;
  std::uint32_t final_ping_ok_ = 0;
  std::uint32_t final_ping_sent_ = 0;
  std::uint64_t rejected_ = 0;  // acks with a failure reason
  Totals totals_;
  Histogram latency_;
  Histogram connect_latency_;
  std::map<std::string, std::uint64_t> errors_;
  std::vector<char> rbuf_ = std::vector<char>(256 * 1024);
};

void LoadGen::setup() {
  const auto& o = opts_;
  std::uint32_t subs = 0;
  switch (o.scenario) {
    case Scenario::Idle: break;
    case Scenario::P2p: num_pubs_ = o.clients; subs = o.clients; break;
    case Scenario::Fanout: num_pubs_ = 1; subs = o.clients; break;
    case Scenario::Fanin: num_pubs_ = o.clients; subs = 1; break;
    case Scenario::Shared: num_pubs_ = o.publishers; subs = o.clients; break;
  }
  std::string base = "load/" + o.prefix;
  conns_.reserve(o.scenario == Scenario::Idle ? o.clients : num_pubs_ + subs);
  payload_fill_.assign(o.payload - kStampSize, 'x');
  payload_size_only_ = proto::Payload::copy_of(std::string(o.payload, '\0'));

  if (o.scenario == Scenario::Idle) {
    for (std::uint32_t i = 0; i < o.clients; ++i) {
      auto& c = conns_.emplace_back();
      c.role = Role::Idle;
      c.index = o.id_offset + i;
      c.client_id = o.prefix + "-i" + std::to_string(c.index);
      c.filter = "load/" + std::to_string(c.index);
    }
    return;
  }
  // Subscribers first so they are in place before anyone publishes.
  for (std::uint32_t i = 0; i < subs; ++i) {
    auto& c = conns_.emplace_back();
    c.role = Role::Subscriber;
    c.index = i;
    c.client_id = o.prefix + "-s" + std::to_string(i);
    switch (o.scenario) {
      case Scenario::P2p: c.filter = base + "/p/" + std::to_string(i); break;
      case Scenario::Fanout: c.filter = base + "/fan"; break;
      case Scenario::Fanin: c.filter = base + "/in/+"; break;
      case Scenario::Shared: c.filter = "$share/" + o.prefix + "/" + base + "/shared"; break;
      case Scenario::Idle: break;
    }
    c.tracker = o.scenario == Scenario::Shared ? 0 : i;
  }
  for (std::uint32_t p = 0; p < num_pubs_; ++p) {
    auto& c = conns_.emplace_back();
    c.role = Role::Publisher;
    c.index = p;
    c.client_id = o.prefix + "-p" + std::to_string(p);
    auto pub = std::make_unique<proto::Publish>();
    switch (o.scenario) {
      case Scenario::P2p: pub->topic = base + "/p/" + std::to_string(p); break;
      case Scenario::Fanout: pub->topic = base + "/fan"; break;
      case Scenario::Fanin: pub->topic = base + "/in/" + std::to_string(p); break;
      case Scenario::Shared: pub->topic = base + "/shared"; break;
      case Scenario::Idle: break;
    }
    pub->qos = o.qos;
    pub->payload = payload_size_only_;
    c.publish = std::move(pub);
    c.window = o.window;
    if (o.qos > 0) c.pid_state.assign(65536, 0);
  }
  // Receivers and which publishers each must see.
  std::uint32_t ntrackers = o.scenario == Scenario::Shared ? 1 : subs;
  trackers_.resize(ntrackers);
  for (std::uint32_t t = 0; t < ntrackers; ++t) {
    auto& tr = trackers_[t];
    if (o.scenario == Scenario::P2p) {
      tr.first_pub = t;
      tr.pubs.resize(1);
    } else {
      tr.first_pub = 0;
      tr.pubs.resize(num_pubs_);
    }
  }
}

int LoadGen::run() {
  dest_.sin_family = AF_INET;
  dest_.sin_port = htons(opts_.port);
  if (inet_pton(AF_INET, opts_.host.c_str(), &dest_.sin_addr) != 1) usage("--host wants an IPv4 address");
  setup();
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    std::perror("epoll_create1");
    return 1;
  }
  t0_ = now_ns();
  double connect_budget = opts_.connect_timeout + 30.0 +
      (opts_.connect_rate > 0 ? static_cast<double>(conns_.size()) / opts_.connect_rate : 0.0);
  connect_deadline_ = t0_ + static_cast<std::uint64_t>(connect_budget * 1e9);
  next_tick_ = t0_;

  std::vector<epoll_event> events(1024);
  while (phase_ != Phase::Done) {
    std::uint64_t now = now_ns();
    if (phase_ == Phase::Connect) start_connections(now);

    // Flat-out publishers keep the loop spinning; otherwise sleep briefly.
    bool busy = false;
    if (phase_ == Phase::Run && num_pubs_ > 0) {
      for (auto& c : conns_)
        if (c.role == Role::Publisher && c.state == State::Ready) busy |= pump(c, now);
    }
    // At a fixed rate, sleep exactly until the next message is due (a millisecond tick would
    // add up to a millisecond of the generator's own delay to every latency).
    std::uint64_t timeout_ns = busy ? 0 : 10'000'000;
    if (!busy && phase_ == Phase::Run && opts_.rate > 0) {
      std::uint64_t next = next_send_ns();
      timeout_ns = std::min(timeout_ns, next > now ? next - now : 0);
    }
    flush_dirty();
    timespec timeout{static_cast<time_t>(timeout_ns / kNsPerSec), static_cast<long>(timeout_ns % kNsPerSec)};
    int n = epoll_pwait2(epfd_, events.data(), static_cast<int>(events.size()), &timeout, nullptr);
    if (n < 0 && errno != EINTR) {
      std::perror("epoll_wait");
      return 1;
    }
    now = now_ns();
    for (int i = 0; i < n; ++i) on_event(conns_[events[static_cast<std::size_t>(i)].data.u64],
                                        events[static_cast<std::size_t>(i)].events, now);
    if (now >= next_tick_ || phase_ == Phase::Drain) tick(now);
  }
  std::uint64_t end = now_ns();
  // Polite goodbye; best effort, the sockets close right after.
  for (auto& c : conns_) {
    if (c.state == State::Ready) {
      send_packet(c, proto::Disconnect{}, end);
      flush(c);
    }
    close_conn(c);
  }
  print_result(end);
  ::close(epfd_);
  bool clean = failed_ == 0 && dropped_ == 0 && rejected_ == 0 && totals_.duplicated == 0 &&
               totals_.distinct == expected_total() && totals_.unexpected == 0 &&
               (opts_.scenario != Scenario::Idle || final_ping_ok_ == conns_.size());
  return opts_.strict && !clean ? 3 : 0;
}

void LoadGen::start_connections(std::uint64_t now) {
  std::uint64_t allowed = conns_.size();
  if (opts_.connect_rate > 0) {
    auto by_rate = static_cast<std::uint64_t>(seconds(now - t0_) * opts_.connect_rate) + 1;
    allowed = std::min(allowed, by_rate);
  }
  while (started_ < allowed && pending_ < opts_.max_pending) {
    start_one(conns_[started_], now);
    ++started_;
  }
}

void LoadGen::start_one(Conn& c, std::uint64_t now) {
  c.started_ns = now;
  c.last_send_ns = now;
  c.decoder.set_version(opts_.protocol);
  ++pending_;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail(c, std::string("socket: ") + std::strerror(errno));
    return;
  }
  c.fd = fd;
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!opts_.source_addrs.empty()) {
    // Port chosen at connect() time per 4-tuple, so each source address has its own port range.
    (void)::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr = opts_.source_addrs[src_next_++ % opts_.source_addrs.size()];
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      fail(c, std::string("bind: ") + std::strerror(errno));
      return;
    }
  }
  c.state = State::Connecting;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = static_cast<std::uint64_t>(&c - conns_.data());
  c.epoll_out = true;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    fail(c, std::string("epoll_ctl: ") + std::strerror(errno));
    return;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dest_), sizeof dest_) != 0 && errno != EINPROGRESS) {
    fail(c, std::string("connect: ") + std::strerror(errno));
  }
}

void LoadGen::on_event(Conn& c, std::uint32_t events, std::uint64_t now) {
  if (c.fd < 0) return;
  if (c.state == State::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      fail(c, std::string("connect: ") + std::strerror(err));
      return;
    }
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    on_connected(c, now);
    if (c.fd < 0) return;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    on_readable(c, now);
    if (c.fd < 0) return;
  }
  if (events & EPOLLOUT) flush(c);
}

void LoadGen::on_connected(Conn& c, std::uint64_t now) {
  c.state = State::AwaitConnack;
  proto::Connect connect;
  connect.version = opts_.protocol;
  connect.clean_start = !opts_.persistent;
  if (opts_.persistent && opts_.protocol == proto::ProtocolVersion::V5)
    connect.properties.session_expiry_interval = 300;
  connect.keep_alive = opts_.keepalive;
  connect.client_id = c.client_id;
  send_packet(c, connect, now);
}

void LoadGen::on_readable(Conn& c, std::uint64_t now) {
  // A few reads per event, so one busy socket cannot starve the others.
  for (int round = 0; round < 4 && c.fd >= 0; ++round) {
    ssize_t n = ::recv(c.fd, rbuf_.data(), rbuf_.size(), 0);
    if (n == 0) {
      lost_connection(c, "closed by broker");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      lost_connection(c, std::string("recv: ") + std::strerror(errno));
      return;
    }
    std::span<const std::uint8_t> in(reinterpret_cast<const std::uint8_t*>(rbuf_.data()),
                                     static_cast<std::size_t>(n));
    proto::Packet packet;
    proto::DecodeError error;
    while (c.fd >= 0) {
      auto st = c.decoder.next(in, packet, error);
      if (st == proto::DecodeStatus::NeedMore) break;
      if (st == proto::DecodeStatus::Error) {
        lost_connection(c, std::string("decode: ") + error.what);
        return;
      }
      on_packet(c, packet, now);
    }
    if (static_cast<std::size_t>(n) < rbuf_.size()) return;
  }
}

void LoadGen::on_packet(Conn& c, proto::Packet& packet, std::uint64_t now) {
  if (auto* ack = std::get_if<proto::Ack>(&packet)) {
    bool bad = static_cast<std::uint8_t>(ack->reason) >= 0x80;
    switch (ack->type) {
      case proto::PacketType::Puback:
        if (bad) ++rejected_;
        else ++c.acked;
        free_pid(c, ack->packet_id);
        break;
      case proto::PacketType::Pubrec:
        if (bad) {
          ++rejected_;
          free_pid(c, ack->packet_id);
        } else if (ack->packet_id < c.pid_state.size() && c.pid_state[ack->packet_id] != 0) {
          c.pid_state[ack->packet_id] = 2;
          send_packet(c, proto::Ack{proto::PacketType::Pubrel, ack->packet_id, ReasonCode::Success, {}}, now);
        } else {
          note_error("PUBREC for unknown packet id");
        }
        break;
      case proto::PacketType::Pubcomp:
        if (bad) ++rejected_;
        else ++c.acked;
        free_pid(c, ack->packet_id);
        break;
      case proto::PacketType::Pubrel:
        send_packet(c, proto::Ack{proto::PacketType::Pubcomp, ack->packet_id, ReasonCode::Success, {}}, now);
        break;
      default: break;
    }
    return;
  }
  if (auto* pub = std::get_if<proto::Publish>(&packet)) {
    on_publish(c, *pub, now);
    return;
  }
  if (auto* connack = std::get_if<proto::Connack>(&packet)) {
    if (c.state != State::AwaitConnack) {
      note_error("unexpected CONNACK");
      return;
    }
    if (connack->reason != ReasonCode::Success) {
      fail(c, "CONNACK refused, reason " + std::to_string(static_cast<int>(connack->reason)));
      return;
    }
    // 5.0: never exceed the broker's Receive Maximum.
    if (auto rm = connack->properties.receive_maximum) c.window = std::min<std::uint32_t>(c.window, *rm);
    if (c.role == Role::Publisher) {
      on_ready(c, now);
      return;
    }
    c.state = State::AwaitSuback;
    proto::Subscribe sub;
    sub.packet_id = 1;
    sub.entries.push_back(proto::SubscribeEntry{c.filter, opts_.qos, false, false, 0});
    send_packet(c, sub, now);
    return;
  }
  if (auto* suback = std::get_if<proto::Suback>(&packet)) {
    if (c.state != State::AwaitSuback) return;
    if (suback->reasons.empty() || static_cast<std::uint8_t>(suback->reasons[0]) >= 0x80) {
      fail(c, "SUBACK refused");
      return;
    }
    on_ready(c, now);
    return;
  }
  if (std::holds_alternative<proto::Pingresp>(packet)) {
    if (c.ping_outstanding) {
      c.ping_outstanding = false;
      ++pongs_;
      if (phase_ == Phase::FinalPing) ++final_ping_ok_;
    }
    return;
  }
  if (auto* d = std::get_if<proto::Disconnect>(&packet)) {
    lost_connection(c, "DISCONNECT from broker, reason " + std::to_string(static_cast<int>(d->reason)));
    return;
  }
  note_error("unexpected packet type " + std::to_string(static_cast<int>(proto::packet_type(packet))));
}

void LoadGen::on_publish(Conn& c, const proto::Publish& p, std::uint64_t now) {
  ++c.received;
  if (p.qos == 1) {
    send_packet(c, proto::Ack{proto::PacketType::Puback, p.packet_id, ReasonCode::Success, {}}, now);
  } else if (p.qos == 2) {
    send_packet(c, proto::Ack{proto::PacketType::Pubrec, p.packet_id, ReasonCode::Success, {}}, now);
  }
  const auto& body = *p.payload;
  if (c.role != Role::Subscriber || body.size() < kStampSize ||
      get_u32(reinterpret_cast<const unsigned char*>(body.data())) != kMagic) {
    ++totals_.unexpected;
    return;
  }
  const auto* b = reinterpret_cast<const unsigned char*>(body.data());
  std::uint32_t pub = get_u32(b + 4);
  std::uint64_t seq = get_u64(b + 8);
  std::uint64_t sent = get_u64(b + 16);
  auto& tr = trackers_[c.tracker];
  if (pub < tr.first_pub || pub - tr.first_pub >= tr.pubs.size()) {
    ++totals_.unexpected;
    return;
  }
  ++totals_.received;
  if (first_recv_ns_ == 0) first_recv_ns_ = now;
  last_recv_ns_ = now;
  latency_.record(now >= sent ? now - sent : 0);
  auto& pt = tr.pubs[pub - tr.first_pub];
  std::size_t word = static_cast<std::size_t>(seq >> 6);
  if (word >= pt.seen.size()) pt.seen.resize(std::max(word + 1, pt.seen.size() * 2), 0);
  std::uint64_t bit = 1ULL << (seq & 63);
  if (pt.seen[word] & bit) {
    ++totals_.duplicated;
    return;
  }
  pt.seen[word] |= bit;
  ++pt.distinct;
  ++totals_.distinct;
  if (pt.any && seq < pt.highest) ++totals_.out_of_order;
  if (!pt.any || seq > pt.highest) pt.highest = seq;
  pt.any = true;
}

void LoadGen::on_ready(Conn& c, std::uint64_t now) {
  c.state = State::Ready;
  --pending_;
  ++ready_;
  last_ready_ns_ = now;
  connect_latency_.record(now - c.started_ns);
}

void LoadGen::fail(Conn& c, const std::string& why) {
  note_error(why);
  if (c.state != State::Ready && c.state != State::Failed && c.state != State::Closed) --pending_;
  ++failed_;
  close_conn(c);
  c.state = State::Failed;
}

void LoadGen::lost_connection(Conn& c, const std::string& why) {
  if (c.state != State::Ready) {
    fail(c, why);
    return;
  }
  note_error(why);
  --ready_;
  ++dropped_;
  close_conn(c);
  c.state = State::Closed;
}

void LoadGen::close_conn(Conn& c) {
  if (c.fd < 0) return;
  ::close(c.fd);  // also leaves the epoll set
  c.fd = -1;
  c.out.clear();
  c.out_off = 0;
}

void LoadGen::send_packet(Conn& c, const proto::Packet& p, std::uint64_t now) {
  if (c.fd < 0) return;
  if (!proto::encode(p, opts_.protocol, c.out)) {
    note_error("encode failed");
    return;
  }
  c.last_send_ns = now;
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(static_cast<std::uint32_t>(&c - conns_.data()));
  }
}

void LoadGen::flush_dirty() {
  for (std::uint32_t i : dirty_) {
    conns_[i].dirty = false;
    flush(conns_[i]);
  }
  dirty_.clear();
}

void LoadGen::flush(Conn& c) {
  while (c.fd >= 0 && c.pending() > 0) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.pending(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        set_epoll_out(c, true);
        return;
      }
      lost_connection(c, std::string("send: ") + std::strerror(errno));
      return;
    }
    c.out_off += static_cast<std::size_t>(n);
  }
  if (c.fd < 0) return;
  c.out.clear();
  c.out_off = 0;
  set_epoll_out(c, false);
}

void LoadGen::set_epoll_out(Conn& c, bool on) {
  if (c.epoll_out == on || c.fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.u64 = static_cast<std::uint64_t>(&c - conns_.data());
  if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev) == 0) c.epoll_out = on;
}

void LoadGen::free_pid(Conn& c, std::uint16_t pid) {
  if (pid >= c.pid_state.size() || c.pid_state[pid] == 0) {
    note_error("ack for unknown packet id");
    return;
  }
  c.pid_state[pid] = 0;
  --c.inflight;
}

std::uint64_t LoadGen::scheduled_ns(const Conn& c, std::uint64_t seq) const {
  double per_pub = opts_.rate / static_cast<double>(num_pubs_);
  double phase = static_cast<double>(c.index) / static_cast<double>(num_pubs_);
  return run_start_ + static_cast<std::uint64_t>((static_cast<double>(seq) + phase) * 1e9 / per_pub);
}

std::uint64_t LoadGen::messages_due(const Conn& c, std::uint64_t now) const {
  double per_pub = opts_.rate / static_cast<double>(num_pubs_);
  double phase = static_cast<double>(c.index) / static_cast<double>(num_pubs_);
  double slots = seconds(now - run_start_) * per_pub - phase;
  return slots < 0 ? 0 : static_cast<std::uint64_t>(slots) + 1;
}

std::uint64_t LoadGen::next_send_ns() const {
  std::uint64_t next = UINT64_MAX;
  for (const auto& c : conns_) {
    if (c.role != Role::Publisher || c.state != State::Ready || c.epoll_out) continue;
    if (opts_.qos > 0 && c.inflight >= c.window) continue;  // an ack wakes the loop
    next = std::min(next, scheduled_ns(c, c.next_seq));
  }
  return next;
}

bool LoadGen::pump(Conn& c, std::uint64_t now) {
  constexpr std::size_t kHighWater = 64 * 1024;  // beyond this, wait for the socket
  constexpr int kBatch = 64;                       // messages per publisher per loop turn
  std::uint64_t due = UINT64_MAX;
  double per_pub = 0;
  if (opts_.rate > 0) {
    per_pub = opts_.rate / static_cast<double>(num_pubs_);
    due = messages_due(c, now);
  }
  auto& pub = *c.publish;
  int sent = 0;
  while (sent < kBatch && c.pending() < kHighWater && c.next_seq < due &&
         (opts_.qos == 0 || c.inflight < c.window)) {
    if (opts_.qos > 0) {
      // Skip ids still in flight (acks may come back out of order).
      while (c.pid_state[c.next_pid] != 0 || c.next_pid == 0) c.next_pid = static_cast<std::uint16_t>(c.next_pid + 1);
      pub.packet_id = c.next_pid;
      c.pid_state[c.next_pid] = 1;
      c.next_pid = static_cast<std::uint16_t>(c.next_pid + 1);
      ++c.inflight;
    }
    if (!proto::encode_publish_head(pub, opts_.protocol, c.out)) {
      note_error("encode PUBLISH failed");
      return false;
    }
    char stamp[kStampSize];
    put_u32(stamp, kMagic);
    put_u32(stamp + 4, c.index);
    put_u64(stamp + 8, c.next_seq);
    // At a fixed rate the clock starts at the message's scheduled time, so time spent held back
    // by the window or a full socket counts as latency (no coordinated omission).
    std::uint64_t stamp_ns = now_ns();
    if (per_pub > 0) stamp_ns = std::min(stamp_ns, scheduled_ns(c, c.next_seq));
    put_u64(stamp + 16, stamp_ns);
    c.out.append(stamp, kStampSize);
    c.out.append(payload_fill_);
    ++c.next_seq;
    ++sent;
  }
  if (sent > 0) {
    c.last_send_ns = now;
    flush(c);
  }
  return c.fd >= 0 && !c.epoll_out && c.next_seq < due && (opts_.qos == 0 || c.inflight < c.window);
}

std::uint64_t LoadGen::expected_total() const {
  std::uint64_t total = 0;
  for (const auto& tr : trackers_)
    for (std::size_t i = 0; i < tr.pubs.size(); ++i)
      total += conns_[conns_.size() - num_pubs_ + tr.first_pub + i].next_seq;
  return total;
}

bool LoadGen::publishers_settled() const {
  for (const auto& c : conns_)
    if (c.role == Role::Publisher && c.fd >= 0 && (c.inflight > 0 || c.pending() > 0)) return false;
  return true;
}

void LoadGen::tick(std::uint64_t now) {
  next_tick_ = now + 50'000'000;  // 50 ms
  const std::uint64_t ka = static_cast<std::uint64_t>(opts_.keepalive) * kNsPerSec;
  for (auto& c : conns_) {
    if (c.fd < 0) continue;
    if (c.state != State::Ready) {
      if (now - c.started_ns > static_cast<std::uint64_t>(opts_.connect_timeout * 1e9) &&
          c.state != State::NotStarted)
        fail(c, "handshake timeout");
      continue;
    }
    if (ka == 0 || phase_ == Phase::FinalPing) continue;
    if (c.ping_outstanding && now - c.ping_sent_ns > ka) {
      ++ping_timeouts_;
      c.ping_outstanding = false;
      note_error("PINGRESP not received within keep alive");
    }
    // Half the keep alive of silence: well inside the broker's 1.5x grace.
    if (!c.ping_outstanding && now - c.last_send_ns >= ka / 2) {
      send_packet(c, proto::Pingreq{}, now);
      c.ping_outstanding = true;
      c.ping_sent_ns = now;
      ++pings_sent_;
    }
  }

  switch (phase_) {
    case Phase::Connect:
      if (started_ == conns_.size() && pending_ == 0) {
        run_start_ = now;
        if (opts_.scenario != Scenario::Idle && failed_ > 0) {
          note_error("not every client connected; no messages sent");
          run_end_ = now;
          phase_ = Phase::Done;
          break;
        }
        phase_ = Phase::Run;
        phase_deadline_ = now + static_cast<std::uint64_t>(opts_.duration * 1e9);
      } else if (now > connect_deadline_) {
        note_error("connect phase timed out");
        run_start_ = run_end_ = now;
        phase_ = Phase::Done;
      }
      break;
    case Phase::Run:
      if (now < phase_deadline_) break;
      run_end_ = now;
      if (opts_.scenario == Scenario::Idle) {
        // Proof of life: every connection must answer one more PINGREQ.
        phase_ = Phase::FinalPing;
        phase_deadline_ = now + static_cast<std::uint64_t>(std::max(opts_.drain, 1.0) * 1e9);
        for (auto& c : conns_) {
          if (c.state != State::Ready || c.fd < 0) continue;
          c.ping_outstanding = true;
          c.ping_sent_ns = now;
          ++final_ping_sent_;
          ++pings_sent_;
          send_packet(c, proto::Pingreq{}, now);
        }
      } else {
        phase_ = Phase::Drain;
        drain_start_ = now;
        phase_deadline_ = now + static_cast<std::uint64_t>(opts_.drain * 1e9);
      }
      break;
    case Phase::FinalPing:
      if (final_ping_ok_ >= final_ping_sent_ || now >= phase_deadline_) phase_ = Phase::Done;
      break;
    case Phase::Drain:
      // Messages still arriving are in flight (socket buffers, a broker holding publishers),
      // not lost: the wait ends when everything came, when nothing came for --drain seconds,
      // or after kMaxDrainSeconds in all.
      if ((totals_.distinct >= expected_total() && publishers_settled()) ||
          (now >= phase_deadline_ && now >= last_recv_ns_ + static_cast<std::uint64_t>(opts_.drain * 1e9)) ||
          now >= drain_start_ + static_cast<std::uint64_t>(kMaxDrainSeconds * 1e9)) {
        drain_end_ = now;
        phase_ = Phase::Done;
      }
      break;
    case Phase::Done: break;
  }
}

// ---------------------------------------------------------------------------------------------
// Output

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      out += ' ';
    } else {
      out += ch;
    }
  }
  return out;
}

class JsonLine {
 public:
  JsonLine& num(const char* key, std::uint64_t v) { return raw(key, std::to_string(v)); }
  JsonLine& num(const char* key, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", std::isfinite(v) ? v : 0.0);
    return raw(key, buf);
  }
  JsonLine& str(const char* key, const std::string& v) {
    std::string quoted(1, '"');
    quoted += json_escape(v);
    quoted += '"';
    return raw(key, quoted);
  }
  JsonLine& boolean(const char* key, bool v) { return raw(key, v ? "true" : "false"); }
  JsonLine& raw(const char* key, const std::string& v) {
    body_ += body_.empty() ? "{" : ",";
    body_ += "\"";
    body_ += key;
    body_ += "\":";
    body_ += v;
    return *this;
  }
  std::string done() const { return (body_.empty() ? "{" : body_) + "}"; }

 private:
  std::string body_;
};

void LoadGen::print_result(std::uint64_t end_ns) {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };

  std::uint64_t sent = 0, acked = 0, unacked = 0;
  for (const auto& c : conns_) {
    if (c.role != Role::Publisher) continue;
    sent += c.next_seq;
    acked += c.acked;
    unacked += c.inflight;
  }
  std::uint64_t expected = expected_total();
  std::uint64_t lost = expected > totals_.distinct ? expected - totals_.distinct : 0;
  std::uint32_t attempted = started_;
  double connect_span = last_ready_ns_ > t0_ ? seconds(last_ready_ns_ - t0_) : 0.0;
  double run_s = run_end_ > run_start_ ? seconds(run_end_ - run_start_) : 0.0;
  double deliver_s = last_recv_ns_ > run_start_ ? seconds(last_recv_ns_ - run_start_) : 0.0;
  std::uint32_t connected_end = 0;
  for (const auto& c : conns_) connected_end += c.state == State::Ready ? 1u : 0u;
  // Count members of a shared group that got anything (distribution sanity).
  std::uint64_t min_member = UINT64_MAX, max_member = 0;
  for (const auto& c : conns_) {
    if (c.role != Role::Subscriber) continue;
    min_member = std::min(min_member, c.received);
    max_member = std::max(max_member, c.received);
  }
  if (min_member == UINT64_MAX) min_member = 0;

  std::string errs = "{";
  for (const auto& [what, count] : errors_) {
    if (errs.size() > 1) errs += ",";
    // Appends one piece at a time: GCC 12 warns (-Wrestrict, a false positive) on "x" + str.
    errs += '"';
    errs += json_escape(what);
    errs += "\":";
    errs += std::to_string(count);
  }
  errs += "}";

  bool all_connected = failed_ == 0 && dropped_ == 0 && ready_ == conns_.size();
  JsonLine j;
  j.str("scenario", opts_.scenario_name)
      .num("protocol", static_cast<std::uint64_t>(opts_.protocol))
      .num("qos", static_cast<std::uint64_t>(opts_.qos))
      .num("clients", static_cast<std::uint64_t>(conns_.size()))
      .num("publishers", static_cast<std::uint64_t>(num_pubs_))
      .num("subscribers", static_cast<std::uint64_t>(conns_.size() - num_pubs_))
      .num("payload", static_cast<std::uint64_t>(opts_.payload))
      .num("window", static_cast<std::uint64_t>(opts_.window))
      .num("rate_target", opts_.rate)
      .num("connect_attempted", static_cast<std::uint64_t>(attempted))
      .num("connect_ok", static_cast<std::uint64_t>(ready_ + dropped_))
      .num("connect_failed", static_cast<std::uint64_t>(failed_))
      .num("connect_seconds", connect_span)
      .num("connect_rate", connect_span > 0 ? static_cast<double>(ready_ + dropped_) / connect_span : 0.0)
      .num("connect_p50_ms", static_cast<double>(connect_latency_.percentile(0.50)) / 1e6)
      .num("connect_p99_ms", static_cast<double>(connect_latency_.percentile(0.99)) / 1e6)
      .num("connect_max_ms", static_cast<double>(connect_latency_.max()) / 1e6)
      .num("dropped", static_cast<std::uint64_t>(dropped_))
      .num("connected_at_end", static_cast<std::uint64_t>(connected_end))
      .boolean("all_connected", all_connected)
      .num("pings_sent", pings_sent_)
      .num("pongs", pongs_)
      .num("ping_timeouts", ping_timeouts_);
  if (opts_.scenario == Scenario::Idle) {
    j.num("final_ping_sent", static_cast<std::uint64_t>(final_ping_sent_))
        .num("final_ping_ok", static_cast<std::uint64_t>(final_ping_ok_))
        .boolean("all_alive", all_connected && final_ping_ok_ == conns_.size());
  }
  j.num("run_seconds", run_s)
      .num("drain_seconds", drain_end_ > drain_start_ ? seconds(drain_end_ - drain_start_) : 0.0)
      .num("sent", sent)
      .num("acked", acked)
      .num("unacked", unacked)
      .num("rejected", rejected_)
      .num("expected", expected)
      .num("received", totals_.received)
      .num("received_distinct", totals_.distinct)
      .num("lost", lost)
      .num("duplicated", totals_.duplicated)
      .num("out_of_order", totals_.out_of_order)
      .num("unexpected", totals_.unexpected)
      .num("member_min", min_member)
      .num("member_max", max_member)
      .num("send_rate", run_s > 0 ? static_cast<double>(sent) / run_s : 0.0)
      .num("deliver_rate", deliver_s > 0 ? static_cast<double>(totals_.received) / deliver_s : 0.0)
      .num("latency_p50_us", static_cast<double>(latency_.percentile(0.50)) / 1e3)
      .num("latency_p99_us", static_cast<double>(latency_.percentile(0.99)) / 1e3)
      .num("latency_p999_us", static_cast<double>(latency_.percentile(0.999)) / 1e3)
      .num("latency_max_us", static_cast<double>(latency_.max()) / 1e3)
      .num("gen_cpu_user_s", tv(ru.ru_utime))
      .num("gen_cpu_sys_s", tv(ru.ru_stime))
      .num("gen_cpu_s", tv(ru.ru_utime) + tv(ru.ru_stime))
      .num("gen_maxrss_kb", static_cast<std::uint64_t>(ru.ru_maxrss))
      .num("wall_seconds", seconds(end_ns - t0_))
      .raw("errors", errs);
  std::printf("%s\n", j.done().c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  LoadGen gen(parse_options(argc, argv));
  return gen.run();
}
