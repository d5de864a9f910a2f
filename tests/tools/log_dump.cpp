// broker_log_dump DATA_DIR: prints the message log of a (stopped) broker's data dir, one
// record a line: "<sequence> <topic> <payload>". Tests use it to check what the log holds.
#include <cstdio>
#include <string>

#include "broker/store.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: broker_log_dump DATA_DIR\n");
    return 2;
  }
  broker::LmdbStoreOptions options;
  options.dir = argv[1];
  options.map_size = 1ull << 30;
  auto opened = broker::open_lmdb_store(options);
  if (!opened) {
    std::fprintf(stderr, "broker_log_dump: %s\n", opened.status().to_string().c_str());
    return 1;
  }
  auto& store = *opened.value();
  std::uint64_t next = 1;
  for (;;) {
    auto records = store.read_log(next, 1000);
    if (!records) {
      std::fprintf(stderr, "broker_log_dump: %s\n", records.status().to_string().c_str());
      return 1;
    }
    if (records.value().empty()) return 0;
    for (const auto& r : records.value()) {
      std::printf("%llu %s %s\n", static_cast<unsigned long long>(r.sequence),
                  r.message.message.topic.c_str(), r.message.message.payload.c_str());
      next = r.sequence + 1;
    }
  }
}
