// brokerd: the config becomes broker::Options, then the library does the rest. Anything an
// embedder would also need belongs in libbroker, not here.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "broker/broker.hpp"
#include "broker/version.h"
#include "server/config.hpp"
#include "server/heap_trimmer.hpp"
#include "util/log.hpp"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr const char* kProgram = "brokerd";
// How often freed heap goes back to the system (heap_trimmer.hpp).
constexpr std::chrono::seconds kHeapTrimInterval{30};

// Read by the signal handler; a lock-free atomic pointer is async-signal-safe to load.
std::atomic<broker::Broker*> g_broker{nullptr};
static_assert(std::atomic<broker::Broker*>::is_always_lock_free);

extern "C" void on_stop_signal(int /*signo*/) {
  if (broker::Broker* b = g_broker.load()) b->request_stop();
}

void set_stop_handler(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// A supervisor may start the daemon with stdin, stdout or stderr closed. The broker's first
// files would then take fds 0-2, which libuv will not close (it aborts at stop), and log lines
// would go into them: the missing ones become /dev/null first.
void open_missing_standard_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) != -1) continue;
    int opened = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);  // the lowest free fd: `fd`
    if (opened >= 0 && opened != fd) {
      dup2(opened, fd);
      close(opened);
    }
  }
}

void print_error(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", kProgram, message.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  open_missing_standard_fds();
  std::signal(SIGPIPE, SIG_IGN);  // a peer closing mid-write must be an error code, not death
  // A closing terminal (SIGHUP) or an operator's habit from other brokers (SIGHUP to reload,
  // SIGUSR1/2) must not kill a broker outright: nothing is reloadable from a signal, so they
  // are ignored; SIGINT and SIGTERM stop it gracefully.
  for (int signo : {SIGHUP, SIGUSR1, SIGUSR2}) std::signal(signo, SIG_IGN);

  std::vector<std::string> args(argv + 1, argv + argc);
  auto loaded = broker::server::load_config(args, broker::server::process_environment());
  if (!loaded) {
    print_error(loaded.status().message());
    return kExitUsage;
  }
  broker::server::Config& config = loaded.value();
  for (const auto& w : config.warnings) print_error("warning: " + w);

  switch (config.action) {
    case broker::server::Action::Help:
      std::fputs(broker::server::usage_text(kProgram).c_str(), stdout);
      return kExitOk;
    case broker::server::Action::Version:
      std::fputs(broker::server::version_text(kProgram).c_str(), stdout);
      return kExitOk;
    case broker::server::Action::PrintConfig:
      // What start would refuse is refused here too (limits checked against each other).
      if (broker::Status st = broker::Broker::check(config.options); !st) {
        print_error(st.message());
        return kExitUsage;
      }
      std::fputs(broker::server::options_to_json(config.options).c_str(), stdout);
      return kExitOk;
    case broker::server::Action::Run:
      break;
  }

  broker::log::set_level(config.options.log_level);

  // Threads the broker starts inherit this mask, so SIGINT/SIGTERM reach only this thread:
  // the handler then never runs while the broker is being torn down elsewhere.
  sigset_t stops = stop_signals();
  pthread_sigmask(SIG_BLOCK, &stops, nullptr);

  auto created = broker::Broker::create(config.options);
  if (!created) {
    print_error(created.status().message());
    bool bad_config = created.status().code() == broker::Status::Code::InvalidArgument;
    return bad_config ? kExitUsage : kExitRuntime;
  }
  std::unique_ptr<broker::Broker> broker = std::move(created).value();

  g_broker.store(broker.get());
  set_stop_handler(on_stop_signal);
  if (broker::Status st = broker->start(); !st) {
    set_stop_handler(SIG_DFL);
    g_broker.store(nullptr);
    print_error(st.to_string());
    return kExitRuntime;
  }

  std::string ports;
  for (std::uint16_t p : broker->listening_ports()) {
    ports += (ports.empty() ? "" : ", ") + std::to_string(p);
  }
  broker::log::info("{} {} running; MQTT on port(s) {}; data in {}", kProgram,
                    BROKER_VERSION_STRING, ports, config.options.data_dir);

  broker::server::HeapTrimmer trimmer;
  trimmer.start(kHeapTrimInterval);  // inherits the blocked stop signals, as the broker's threads

  // A signal that came during start() is delivered here, to a running broker.
  pthread_sigmask(SIG_UNBLOCK, &stops, nullptr);
  broker->wait();
  trimmer.stop();

  // Handlers run on this thread only, so after this no handler can see the pointer.
  set_stop_handler(SIG_IGN);
  g_broker.store(nullptr);
  broker::log::info("{} stopped", kProgram);
  return kExitOk;
}
