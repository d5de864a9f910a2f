// Wakeup: signals from another thread reach the loop, none is lost, and they coalesce.
#include <catch2/catch.hpp>

#include <uv.h>

#include <atomic>
#include <thread>

#include "transport/wakeup.hpp"

using broker::transport::Wakeup;

namespace {

struct Fixture {
  uv_loop_t loop{};
  uv_timer_t deadline{};
  Wakeup wakeup;
  std::atomic<int> produced{0};
  int seen = 0;      // what the callback saw last
  int callbacks = 0;
  int target = 0;
  bool timed_out = false;
};

void on_wakeup(void* data) {
  auto* f = static_cast<Fixture*>(data);
  ++f->callbacks;
  f->seen = f->produced.load();
  if (f->seen == f->target) {
    f->wakeup.close();
    uv_close(reinterpret_cast<uv_handle_t*>(&f->deadline), nullptr);
  }
}

void on_deadline(uv_timer_t* timer) {
  auto* f = static_cast<Fixture*>(timer->data);
  f->timed_out = true;
  f->wakeup.close();
  uv_close(reinterpret_cast<uv_handle_t*>(&f->deadline), nullptr);
}

}  // namespace

TEST_CASE("every signal from another thread is seen by the loop, coalesced", "[wakeup]") {
  Fixture f;
  f.target = 20000;
  REQUIRE(uv_loop_init(&f.loop) == 0);
  REQUIRE(f.wakeup.init(f.loop, on_wakeup, &f) == 0);
  uv_timer_init(&f.loop, &f.deadline);
  f.deadline.data = &f;
  uv_timer_start(&f.deadline, on_deadline, 10000, 0);

  std::thread producer([&f] {
    for (int i = 0; i < f.target; ++i) {
      f.produced.fetch_add(1);  // what the callback must see after this signal
      f.wakeup.signal();
    }
  });
  uv_run(&f.loop, UV_RUN_DEFAULT);
  producer.join();
  CHECK_FALSE(f.timed_out);
  CHECK(f.seen == f.target);
  CHECK(f.callbacks >= 1);
  CHECK(f.callbacks <= f.target);
  CHECK(uv_loop_close(&f.loop) == 0);
  f.wakeup.signal();  // after close: the eventfd is still open, nothing happens
}
