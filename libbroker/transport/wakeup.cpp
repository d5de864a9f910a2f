#include "transport/wakeup.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace broker::transport {

namespace {
void ignore_close(uv_handle_t*) {}
}  // namespace

int Wakeup::init(uv_loop_t& loop, Callback callback, void* data) {
  callback_ = callback;
  data_ = data;
  fd_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd_.valid()) return uv_translate_sys_error(errno);
  if (int rc = uv_poll_init(&loop, &poll_, fd_.get()); rc < 0) return rc;
  polling_ = true;
  poll_.data = this;
  return uv_poll_start(&poll_, UV_READABLE, on_readable);
}

void Wakeup::signal() noexcept {
  // One write until the loop takes it: the callback serves every signal made before then.
  if (pending_.exchange(true)) return;
  const std::uint64_t one = 1;
  while (write(fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
  // EAGAIN (the counter is full) cannot happen: it is read back to 0 before pending_ clears.
}

void Wakeup::close() {
  auto* handle = reinterpret_cast<uv_handle_t*>(&poll_);
  if (polling_ && !uv_is_closing(handle)) uv_close(handle, ignore_close);  // embedded in us
}

void Wakeup::on_readable(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<Wakeup*>(handle->data);
  if (status < 0) return;  // an eventfd does not fail; nothing to retry
  std::uint64_t count = 0;
  while (read(self->fd_.get(), &count, sizeof count) < 0 && errno == EINTR) {
  }
  // Cleared before the callback runs: a signal() from now on writes again, so whatever it
  // adds after the callback has looked is not left waiting.
  self->pending_.store(false);
  self->callback_(self->data_);
}

}  // namespace broker::transport
