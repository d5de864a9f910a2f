#pragma once
// Plain POSIX socket helpers for the transport: an owning fd, the SO_REUSEPORT listening
// sockets of one listener address, and "ip:port" names. No libuv and no MQTT here.
//
// Thread safety: free functions are safe from any thread; a UniqueFd is a value (one owner).
#include <cstdint>
#include <string>
#include <vector>

#include "broker/options.hpp"
#include "broker/status.hpp"

namespace broker::transport {

// Owns one file descriptor and closes it on destruction. -1 means empty.
class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  // Gives up ownership; the caller closes the returned fd.
  int release() noexcept;
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// Listen backlog asked of the kernel (net.core.somaxconn may cap it). Large, so that a burst
// of reconnecting vehicles, or a pause while the process is out of fds, waits in the kernel
// instead of being refused.
inline constexpr int kListenBacklog = 4096;

// Opens `count` non-blocking listening sockets on `listener`'s address, all bound with
// SO_REUSEADDR + SO_REUSEPORT to the same port, so the kernel spreads new connections over
// them (one per worker). With port 0 the kernel picks a free port once and every socket
// binds that port. Before joining the group, one probe socket without SO_REUSEPORT binds the
// address: it fails if anyone holds the port, so a second broker run by the same user cannot
// silently share our port (which SO_REUSEPORT alone would allow).
// @param out receives the sockets on success; left empty on error.
// @param port receives the bound port.
// @param v6_only an IPv6 address takes IPv6 connections only (IPV6_V6ONLY), leaving IPv4 on
//        the same port to another listener; otherwise "[::]" also takes IPv4 (dual stack).
// @return IoError "cannot listen on HOST:PORT: REASON" (e.g. "address already in use");
//         InvalidArgument when host is not a numeric IPv4/IPv6 address or count is 0.
Status open_listen_sockets(const ListenerOptions& listener, unsigned count,
                           std::vector<UniqueFd>& out, std::uint16_t& port, bool v6_only = false);

// "ip:port" ("[v6]:port" for IPv6) of the peer of connected socket `fd`; "?" if unknown.
std::string peer_name(int fd);

}  // namespace broker::transport
