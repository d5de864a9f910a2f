// Embeds a broker in a host program: starts it on a port, publishes a retained configuration
// message from the host, and stops after a few seconds (or on Ctrl-C).
//
//   ./embed_cpp [port]        then, in another shell:
//   mosquitto_sub -p 1883 -t 'vehicle/+/config' -v
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "broker/broker.hpp"

int main(int argc, char** argv) {
  broker::Options options;
  options.listeners[0].host = "127.0.0.1";
  options.listeners[0].port = argc > 1 ? static_cast<std::uint16_t>(std::atoi(argv[1])) : 1883;
  options.workers = 2;

  auto created = broker::Broker::create(options);
  if (!created) {
    std::fprintf(stderr, "create: %s\n", created.status().to_string().c_str());
    return 2;
  }
  auto& broker = *created.value();
  if (auto st = broker.start(); !st) {
    std::fprintf(stderr, "start: %s\n", st.to_string().c_str());
    return 1;
  }

  broker::Message config;
  config.topic = "vehicle/VIN0001/config";
  config.payload = R"({"telemetry_interval_s": 10})";
  config.qos = 1;
  config.retain = true;  // a vehicle that subscribes later still gets it
  if (auto st = broker.publish(config); !st) std::fprintf(stderr, "publish: %s\n", st.to_string().c_str());

  std::this_thread::sleep_for(std::chrono::seconds(3));
  auto stats = broker.stats();
  std::printf("retained messages: %llu, connections: %llu\n",
              static_cast<unsigned long long>(stats.retained_messages),
              static_cast<unsigned long long>(stats.connections));
  broker.stop();
  return 0;
}
