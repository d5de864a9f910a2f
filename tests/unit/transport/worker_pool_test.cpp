// WorkerPool and TcpLink over real loopback sockets: 2 workers on 127.0.0.1 port 0, blocking
// client sockets in the test thread with receive/send timeouts, so a failure cannot hang.
#include "transport/worker_pool.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace broker;
using namespace broker::transport;
using namespace std::chrono_literals;

constexpr auto kWait = 5s;

template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = kWait) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A blocking client; every call gives up after kWait.
class Client {
 public:
  explicit Client(std::uint16_t port) : Client() { connect(port); }
  // An unconnected socket: connect() later needs no new fd.
  Client() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  bool connect(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    return connected_;
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  // Reads until `n` bytes arrived, EOF, or the timeout.
  std::string read_exact(std::size_t n) {
    std::string out;
    char buf[65536];
    while (out.size() < n) {
      ssize_t r = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (r <= 0) break;
      out.append(buf, static_cast<std::size_t>(r));
    }
    return out;
  }
  std::string read_line() {
    std::string out;
    char c;
    while (::recv(fd_, &c, 1, 0) == 1) {
      if (c == '\n') return out;
      out.push_back(c);
    }
    return out + "<eof>";
  }
  // True if the server closed (EOF or reset) before the timeout.
  bool wait_eof() {
    char c;
    ssize_t r = ::recv(fd_, &c, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

class TestHandler;

// What the handlers saw, shared with the test thread.
struct Recorder {
  std::mutex mutex;
  std::map<int, int> closed;             // handler id -> on_closed calls
  std::map<int, unsigned> worker_of;     // handler id -> worker that made it
  std::map<int, std::string> first_bytes;
  std::map<unsigned, std::set<TestHandler*>> live;  // per worker
  std::vector<std::string> errors;       // contract violations seen on the worker side
  std::atomic<int> next_id{0};
  std::atomic<int> opened[2] = {0, 0};
  std::atomic<int> draining[2] = {0, 0};
  std::atomic<int> ticks[2] = {0, 0};
  std::atomic<int> turns[2] = {0, 0};
  std::atomic<int> destroyed{0};

  int closed_count(int id) {
    std::lock_guard l(mutex);
    return closed.count(id) ? closed[id] : 0;
  }
  int total_closed() {
    std::lock_guard l(mutex);
    int n = 0;
    for (auto& [id, c] : closed) n += c;
    return n;
  }
  void error(std::string e) {
    std::lock_guard l(mutex);
    errors.push_back(std::move(e));
  }
};

// Line protocol: "WHO" -> "w<k>"; "TO<d>|x" -> hand over to worker d unless already there,
// then "w<k>:TO<d>|x"; "BIG <n>" -> head/payload writes totalling a known pattern; "BYE" ->
// "bye" then close(); anything else -> "w<k>:<line>".
class TestHandler final : public core::ConnectionHandler {
 public:
  TestHandler(Recorder& rec, unsigned worker, core::Link& link)
      : rec_(rec), worker_(worker), link_(link), id_(rec.next_id++) {
    std::lock_guard l(rec_.mutex);
    rec_.worker_of[id_] = worker;
    rec_.live[worker].insert(this);
  }
  ~TestHandler() override {
    {
      std::lock_guard l(rec_.mutex);
      rec_.live[worker_].erase(this);
    }
    ++rec_.destroyed;
  }

  void on_bytes(const char* data, std::size_t size) override {
    if (in_bytes_) rec_.error("on_bytes re-entered");
    if (gone_) rec_.error("bytes after close()/hand_over()");
    if (first_) {
      std::lock_guard l(rec_.mutex);
      rec_.first_bytes[id_] = std::string(data, size);
      first_ = false;
    }
    in_bytes_ = true;
    buffer_.append(data, size);
    std::size_t pos;
    while (!gone_ && (pos = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, pos);
      std::string rest = buffer_.substr(pos + 1);
      handle_line(line, rest);
      buffer_ = rest;
    }
    in_bytes_ = false;
  }

  void on_closed() override {
    if (in_bytes_) rec_.error("on_closed inside on_bytes");
    if (in_close_) rec_.error("on_closed inside close()");
    link_.write("after-close");  // must be discarded, not crash
    std::lock_guard l(rec_.mutex);
    ++rec_.closed[id_];
  }

  // For the draining test (worker thread).
  void say_goodbye() {
    link_.write("bye\n");
    link_.close();
  }

  int id() const { return id_; }

 private:
  void reply(const std::string& s) { link_.write("w" + std::to_string(worker_) + s + "\n"); }

  void handle_line(const std::string& line, const std::string& rest) {
    if (line == "WHO") {
      reply("");
    } else if (line.rfind("TO", 0) == 0 && line.size() > 2) {
      unsigned target = static_cast<unsigned>(line[2] - '0');
      if (target != worker_) {
        gone_ = true;
        link_.hand_over(target, line + "\n" + rest);
        link_.write("must-not-arrive");  // discarded after hand_over
        return;
      }
      reply(":" + line);
    } else if (line.rfind("BIG ", 0) == 0) {
      std::size_t n = std::stoul(line.substr(4));
      // Three packets: owned head + shared payload each, the middle one large enough that
      // the kernel takes it in pieces.
      for (int k = 0; k < 3; ++k) {
        auto payload = protocol::Payload::copy_of(std::string(k == 1 ? n : 10, static_cast<char>('a' + k)));
        link_.write("<" + std::to_string(k) + ">", payload);
      }
      link_.write("<end>\n");
    } else if (line == "BYE") {
      link_.write("bye\n");
      gone_ = true;
      in_close_ = true;
      link_.close();
      link_.close();  // idempotent
      in_close_ = false;
      link_.write("must-not-arrive");
    } else {
      reply(":" + line);
    }
  }

  Recorder& rec_;
  unsigned worker_;
  core::Link& link_;
  int id_;
  std::string buffer_;
  bool first_ = true;
  bool in_bytes_ = false;
  bool in_close_ = false;
  bool gone_ = false;
};

struct Fixture {
  explicit Fixture(PoolOptions opt = {}, bool bind = true) {
    opt.workers = 2;
    WorkerCallbacks cb;
    cb.open = [this](unsigned w, core::Link& link) -> std::unique_ptr<core::ConnectionHandler> {
      ++rec.opened[w];
      if (pool && pool->current_worker() != w) rec.error("open on the wrong thread");
      return std::make_unique<TestHandler>(rec, w, link);
    };
    cb.end_of_turn = [this](unsigned w) {
      ++rec.turns[w];
      return false;
    };
    cb.tick = [this](unsigned w) {
      ++rec.ticks[w];
    };
    cb.draining = [this](unsigned w) {
      ++rec.draining[w];
      if (goodbye_on_drain) {
        std::vector<TestHandler*> handlers;
        {
          std::lock_guard l(rec.mutex);
          handlers.assign(rec.live[w].begin(), rec.live[w].end());
        }
        for (TestHandler* h : handlers) h->say_goodbye();
      }
    };
    pool = std::make_unique<WorkerPool>(opt, std::move(cb));
    if (bind) {
      REQUIRE(pool->bind({ListenerOptions{"127.0.0.1", 0}}).is_ok());
      port = pool->listening_ports().at(0);
      REQUIRE(port != 0);
    }
  }
  ~Fixture() {
    pool.reset();  // stops and joins
    std::lock_guard l(rec.mutex);
    for (auto& e : rec.errors) FAIL_CHECK(e);
  }

  Recorder rec;
  bool goodbye_on_drain = false;
  std::unique_ptr<WorkerPool> pool;
  std::uint16_t port = 0;
};

}  // namespace

TEST_CASE("WorkerPool echoes over a real socket", "[transport]") {
  Fixture f;
  REQUIRE(f.pool->start().is_ok());
  Client c(f.port);
  REQUIRE(c.connected());
  REQUIRE(c.send("hello\n"));
  std::string line = c.read_line();
  CHECK((line == "w0:hello" || line == "w1:hello"));
  REQUIRE(c.send("again\n"));
  CHECK(c.read_line().substr(2) == ":again");
  auto st = f.pool->stats();
  CHECK(st.connections_open == 1);
  CHECK(st.connections_accepted == 1);
  CHECK(st.bytes_read == 12);
}

TEST_CASE("WorkerPool spreads connections over both workers (SO_REUSEPORT)", "[transport]") {
  Fixture f;
  REQUIRE(f.pool->start().is_ok());
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 64; ++i) {
    clients.push_back(std::make_unique<Client>(f.port));
    REQUIRE(clients.back()->connected());
  }
  for (auto& c : clients) {
    REQUIRE(c->send("WHO\n"));
    std::string who = c->read_line();
    CHECK((who == "w0" || who == "w1"));
  }
  CHECK(f.rec.opened[0] > 0);
  CHECK(f.rec.opened[1] > 0);
  CHECK(f.rec.opened[0] + f.rec.opened[1] == 64);
  CHECK(f.pool->stats().connections_open == 64);
}

TEST_CASE("WorkerPool writes head and shared payload in order", "[transport]") {
  Fixture f;
  REQUIRE(f.pool->start().is_ok());
  Client c(f.port);
  REQUIRE(c.connected());
  const std::size_t big = 8u * 1024 * 1024;  // more than a socket buffer: partial writes
  REQUIRE(c.send("BIG " + std::to_string(big) + "\n"));
  std::string expect = "<0>" + std::string(10, 'a') + "<1>" + std::string(big, 'b') + "<2>" +
                       std::string(10, 'c') + "<end>\n";
  std::string got = c.read_exact(expect.size());
  REQUIRE(got.size() == expect.size());
  CHECK(got == expect);
  CHECK(wait_until([&] { return f.pool->stats().bytes_written == expect.size(); }));
}

TEST_CASE("WorkerPool hands a connection over to another worker", "[transport]") {
  Fixture f;
  REQUIRE(f.pool->start().is_ok());
  Client c(f.port);
  REQUIRE(c.connected());
  REQUIRE(c.send("WHO\n"));
  std::string who = c.read_line();
  REQUIRE((who == "w0" || who == "w1"));
  unsigned from = static_cast<unsigned>(who[1] - '0');
  unsigned to = 1 - from;

  // The line and the one right behind it arrive together: both must reach the new handler.
  std::string cmd = "TO" + std::to_string(to) + "|abc\n";
  REQUIRE(c.send(cmd + "tail\n"));
  CHECK(c.read_line() == "w" + std::to_string(to) + ":" + cmd.substr(0, cmd.size() - 1));
  CHECK(c.read_line() == "w" + std::to_string(to) + ":tail");
  // Later reads go to the new worker too.
  REQUIRE(c.send("later\n"));
  CHECK(c.read_line() == "w" + std::to_string(to) + ":later");

  CHECK(f.rec.opened[to] == 1);
  CHECK(f.rec.opened[from] == 1);
  CHECK(f.pool->stats().hand_overs == 1);
  CHECK(f.pool->stats().hand_overs_failed == 0);
  // The old handler is destroyed without on_closed; the new one got the bytes first.
  CHECK(wait_until([&] { return f.rec.destroyed.load() == 1; }));
  CHECK(f.rec.total_closed() == 0);
  {
    std::lock_guard l(f.rec.mutex);
    CHECK(f.rec.first_bytes[1].rfind(cmd, 0) == 0);
    CHECK(f.rec.worker_of[1] == to);
  }
  CHECK(f.pool->stats().connections_open == 1);

  c.close();
  CHECK(wait_until([&] { return f.rec.closed_count(1) == 1; }));
}

TEST_CASE("WorkerPool: server-side close() flushes, then on_closed exactly once",
          "[transport]") {
  Fixture f;
  REQUIRE(f.pool->start().is_ok());
  Client c(f.port);
  REQUIRE(c.connected());
  REQUIRE(c.send("BYE\n"));
  CHECK(c.read_line() == "bye");
  CHECK(c.wait_eof());
  CHECK(wait_until([&] { return f.rec.closed_count(0) == 1; }));
  CHECK(wait_until([&] { return f.pool->stats().connections_open == 0; }));
  std::this_thread::sleep_for(20ms);  // a second on_closed would show up here
  CHECK(f.rec.closed_count(0) == 1);
  CHECK(f.rec.destroyed == 1);
}

TEST_CASE("WorkerPool: peer close gives on_closed once", "[transport]") {
  Fixture f;
  REQUIRE(f.pool->start().is_ok());
  {
    Client c(f.port);
    REQUIRE(c.connected());
    REQUIRE(c.send("x\n"));
    CHECK(c.read_line().substr(2) == ":x");
  }
  CHECK(wait_until([&] { return f.rec.closed_count(0) == 1; }));
  CHECK(wait_until([&] { return f.pool->stats().connections_open == 0; }));
  std::this_thread::sleep_for(20ms);
  CHECK(f.rec.total_closed() == 1);
}

TEST_CASE("WorkerPool: post() runs tasks on the worker's thread, in order", "[transport]") {
  Fixture f;
  REQUIRE(f.pool->start().is_ok());
  CHECK(f.pool->worker_count() == 2);
  CHECK_FALSE(f.pool->current_worker().has_value());

  constexpr int kTasks = 2000;
  std::mutex m;
  std::vector<int> seen[2];
  std::set<std::thread::id> threads[2];
  std::atomic<int> wrong{0};
  for (int i = 0; i < kTasks; ++i) {
    for (unsigned w = 0; w < 2; ++w) {
      REQUIRE(f.pool->post(w, [&, w, i] {
        if (f.pool->current_worker() != w) ++wrong;
        std::lock_guard l(m);
        seen[w].push_back(i);
        threads[w].insert(std::this_thread::get_id());
      }));
    }
  }
  CHECK_FALSE(f.pool->post(2, [] {}));  // no such worker
  REQUIRE(wait_until([&] {
    std::lock_guard l(m);
    return seen[0].size() == kTasks && seen[1].size() == kTasks;
  }));
  std::lock_guard l(m);
  CHECK(wrong == 0);
  for (unsigned w = 0; w < 2; ++w) {
    CHECK(std::is_sorted(seen[w].begin(), seen[w].end()));
    CHECK(threads[w].size() == 1);
  }
  CHECK(*threads[0].begin() != *threads[1].begin());
  CHECK(*threads[0].begin() != std::this_thread::get_id());
}

TEST_CASE("WorkerPool: inbox is bounded and drops are counted", "[transport]") {
  PoolOptions opt;
  opt.max_inbox = 3;
  Fixture f(opt, /*bind=*/false);
  int ran = 0;
  // Not started: tasks wait in the inbox.
  for (int i = 0; i < 3; ++i) CHECK(f.pool->post(0, [&] { ++ran; }));
  CHECK_FALSE(f.pool->post(0, [&] { ++ran; }));
  CHECK(f.pool->stats().inbox_drops == 1);
  REQUIRE(f.pool->start().is_ok());
  CHECK(wait_until([&] { return f.pool->post(0, [] {}); }));  // room again once it ran
  f.pool->stop();
  CHECK(ran == 3);
  CHECK_FALSE(f.pool->post(0, [] {}));  // stopped
}

// One line at a time, each sent after the last echo came back: every turn of the worker has
// one event, and the turns follow each other closely.
int ping_pong(Client& c, int rounds) {
  int echoed = 0;
  for (int i = 0; i < rounds; ++i) {
    if (!c.send("p" + std::to_string(i) + "\n")) break;
    if (c.read_line().substr(2) != ":p" + std::to_string(i)) break;
    ++echoed;
  }
  return echoed;
}

TEST_CASE("WorkerPool: a worker fed events close together sleeps between turns", "[transport]") {
  PoolOptions opt;
  opt.wake_up_coalesce_us = 2000;
  Fixture f(opt);
  REQUIRE(f.pool->start().is_ok());
  Client c(f.port);
  REQUIRE(c.connected());
  CHECK(ping_pong(c, 100) == 100);  // nothing is lost or left unflushed by the pauses
  CHECK(f.pool->stats().coalescing_pauses > 0);
  // A quiet link: the worker blocks in its poll, the first line after the pause is handled.
  std::this_thread::sleep_for(50ms);
  CHECK(ping_pong(c, 1) == 1);
  f.pool->stop();  // stop requests wait at most one pause
}

TEST_CASE("WorkerPool: coalescing off, a worker never sleeps", "[transport]") {
  Fixture f;  // wake_up_coalesce_us = 0
  REQUIRE(f.pool->start().is_ok());
  Client c(f.port);
  REQUIRE(c.connected());
  CHECK(ping_pong(c, 100) == 100);
  CHECK(f.pool->stats().coalescing_pauses == 0);
}

TEST_CASE("automatic_worker_count leaves a core to the kernel, keeps at least one", "[transport]") {
  cpu_set_t all;
  REQUIRE(::sched_getaffinity(0, sizeof all, &all) == 0);
  const unsigned cores = static_cast<unsigned>(CPU_COUNT(&all));
  CHECK(automatic_worker_count() == (cores > 2 ? cores - 1 : 1));
  // A container (or taskset) that grants one core gets one worker, whatever the machine has.
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &all)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  REQUIRE(::sched_setaffinity(0, sizeof one, &one) == 0);
  const unsigned narrowed = automatic_worker_count();
  REQUIRE(::sched_setaffinity(0, sizeof all, &all) == 0);
  CHECK(narrowed == 1);
}

TEST_CASE("WorkerPool: ticks and end-of-turn run on every worker", "[transport]") {
  PoolOptions opt;
  opt.tick_interval_ms = 5;
  Fixture f(opt);
  REQUIRE(f.pool->start().is_ok());
  CHECK(wait_until([&] { return f.rec.ticks[0] >= 2 && f.rec.ticks[1] >= 2; }));
  CHECK(f.rec.turns[0] > 0);
  CHECK(f.rec.turns[1] > 0);
}

TEST_CASE("WorkerPool: stop() with open connections closes them and joins", "[transport]") {
  PoolOptions opt;
  opt.drain_timeout_ms = 200;  // these handlers ignore draining: stop waits, then closes
  Fixture f(opt);
  REQUIRE(f.pool->start().is_ok());
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 16; ++i) {
    clients.push_back(std::make_unique<Client>(f.port));
    REQUIRE(clients.back()->send("WHO\n"));
    REQUIRE(clients.back()->read_line().size() == 2);
  }
  auto t0 = std::chrono::steady_clock::now();
  f.pool->stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);
  CHECK(f.rec.draining[0] == 1);
  CHECK(f.rec.draining[1] == 1);
  CHECK(f.rec.total_closed() == 16);
  CHECK(f.rec.destroyed == 16);
  for (auto& c : clients) CHECK(c->wait_eof());
  f.pool->stop();  // idempotent
  CHECK(f.pool->start().code() == Status::Code::Unavailable);
  // The port is free again.
  Client late(f.port);
  CHECK_FALSE(late.connected());
}

TEST_CASE("WorkerPool: draining lets the core say goodbye before the sockets close",
          "[transport]") {
  Fixture f;
  f.goodbye_on_drain = true;
  REQUIRE(f.pool->start().is_ok());
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<Client>(f.port));
    REQUIRE(clients.back()->send("WHO\n"));
    REQUIRE(clients.back()->read_line().size() == 2);
  }
  auto t0 = std::chrono::steady_clock::now();
  f.pool->stop();
  // Every link closed in phase 1, so stop did not wait for the drain timeout.
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  for (auto& c : clients) {
    CHECK(c->read_line() == "bye");
    CHECK(c->wait_eof());
  }
  CHECK(f.rec.total_closed() == 8);
}

TEST_CASE("WorkerPool: bind reports an address in use", "[transport]") {
  // A plain listener (no SO_REUSEPORT) holds a port.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  std::uint16_t port = ntohs(a.sin_port);

  Fixture f(PoolOptions{}, /*bind=*/false);
  Status st = f.pool->bind({ListenerOptions{"127.0.0.1", port}});
  CHECK(st.code() == Status::Code::IoError);
  CHECK(st.message() ==
        "cannot listen on 127.0.0.1:" + std::to_string(port) + ": address already in use");
  CHECK(f.pool->listening_ports().empty());
  ::close(fd);

  CHECK(f.pool->bind({ListenerOptions{"localhost", 0}}).code() ==
        Status::Code::InvalidArgument);
  // A second broker of ours on a port we hold is refused too, despite SO_REUSEPORT.
  REQUIRE(f.pool->bind({ListenerOptions{"127.0.0.1", 0}}).is_ok());
  Fixture other(PoolOptions{}, /*bind=*/false);
  CHECK(other.pool->bind({ListenerOptions{"127.0.0.1", f.pool->listening_ports()[0]}}).code() ==
        Status::Code::IoError);
}

TEST_CASE("WorkerPool: out of fds, accepting pauses and the connection waits in the backlog",
          "[transport]") {
  Fixture f;
  REQUIRE(f.pool->start().is_ok());
  Client c;  // its socket exists before the limit drops

  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  int lowest_free = ::dup(0);
  REQUIRE(lowest_free >= 0);
  ::close(lowest_free);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);  // no new fd anywhere in the process
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);

  bool connected = c.connect(f.port);  // completes in the kernel backlog
  bool refused = wait_until([&] { return f.pool->stats().accept_errors > 0; });
  std::uint64_t accepted_while_tight = f.pool->stats().connections_accepted;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);

  REQUIRE(connected);
  CHECK(refused);
  CHECK(accepted_while_tight == 0);
  // Once fds are free again the same connection is accepted and served.
  REQUIRE(c.send("still here\n"));
  CHECK(c.read_line().substr(2) == ":still here");
  CHECK(f.pool->stats().connections_accepted == 1);
}
