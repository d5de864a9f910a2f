// Writes every row of the packet-vector table (tests/support/packet_vectors.cpp) to a file in
// the directory given as argument, to seed decoder_fuzz. Rows of one version are also written
// concatenated, so the fuzzer starts from multi-packet streams too.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "support/packet_vectors.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  std::map<int, std::string> streams;
  int n = 0;
  for (const auto& v : broker::test::packet_vectors()) {
    std::ofstream(dir + "/seed-" + std::to_string(n++), std::ios::binary)
        .write(reinterpret_cast<const char*>(v.bytes.data()),
               static_cast<std::streamsize>(v.bytes.size()));
    if (!v.expect_error) {
      streams[static_cast<int>(v.version)].append(v.bytes.begin(), v.bytes.end());
    }
  }
  for (const auto& [version, bytes] : streams) {
    std::ofstream(dir + "/stream-v" + std::to_string(version), std::ios::binary) << bytes;
  }
  return 0;
}
