#include "transport/socket.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

namespace broker::transport {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() { reset(); }

int UniqueFd::release() noexcept {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

namespace {

struct Address {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = AF_INET;
};

bool parse_address(const std::string& host, std::uint16_t port, Address& out) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.len = sizeof(sockaddr_in);
    out.family = AF_INET;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.len = sizeof(sockaddr_in6);
    out.family = AF_INET6;
    return true;
  }
  return false;
}

void set_port(Address& a, std::uint16_t port) {
  if (a.family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&a.storage)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_port = htons(port);
  }
}

std::string host_port(const std::string& host, std::uint16_t port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

// `err` is a negative errno, which is what libuv error codes are on Unix.
Status listen_error(const ListenerOptions& l, int err) {
  // libuv's messages are the short lower-case ones ("address already in use").
  return Status::io_error(
      fmt::format("cannot listen on {}: {}", host_port(l.host, l.port), uv_strerror(err)));
}

// Returns a bound socket or -errno.
int bound_socket(const Address& a, bool reuse_port, bool v6_only) {
  int fd = ::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  UniqueFd owner(fd);
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return -errno;
  if (v6_only && a.family == AF_INET6 &&
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    return -errno;
  }
  if (reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return -errno;
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.len) != 0) return -errno;
  return owner.release();
}

int local_port(int fd, std::uint16_t& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -errno;
  if (ss.ss_family == AF_INET) {
    port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  } else {
    port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  return 0;
}

}  // namespace

Status open_listen_sockets(const ListenerOptions& listener, unsigned count,
                           std::vector<UniqueFd>& out, std::uint16_t& port, bool v6_only) {
  out.clear();
  if (count == 0) return Status::invalid_argument("listener needs at least one worker");
  Address addr;
  if (!parse_address(listener.host, listener.port, addr)) {
    return Status::invalid_argument(
        fmt::format("listener host '{}' is not a numeric IPv4 or IPv6 address", listener.host));
  }

  // The probe: exclusive bind, so "address in use" is reported even against another
  // SO_REUSEPORT group of our own user; with port 0 it also picks the port.
  std::uint16_t chosen = listener.port;
  {
    int probe = bound_socket(addr, /*reuse_port=*/false, v6_only);
    if (probe < 0) return listen_error(listener, probe);
    UniqueFd probe_owner(probe);
    if (int rc = local_port(probe, chosen); rc < 0) return listen_error(listener, rc);
  }
  set_port(addr, chosen);

  std::vector<UniqueFd> fds;
  fds.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    int fd = bound_socket(addr, /*reuse_port=*/true, v6_only);
    if (fd < 0) return listen_error(listener, fd);
    UniqueFd owner(fd);
    if (::listen(fd, kListenBacklog) != 0) return listen_error(listener, -errno);
    fds.push_back(std::move(owner));
  }
  out = std::move(fds);
  port = chosen;
  return Status::ok();
}

std::string peer_name(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char ip[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (!inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip)) return "?";
    return fmt::format("{}:{}", ip, ntohs(v4->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (!inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof ip)) return "?";
    return fmt::format("[{}]:{}", ip, ntohs(v6->sin6_port));
  }
  return "?";
}

}  // namespace broker::transport
