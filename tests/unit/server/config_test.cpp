#include "server/config.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

using broker::Options;
using broker::server::Action;
using broker::server::apply_config_text;
using broker::server::apply_environment;
using broker::server::Environment;
using broker::server::load_config;
using broker::server::options_to_json;

namespace {

// Applies `text` to default Options and returns the error message ("" when it loaded).
std::string file_error(const std::string& text, Options* out = nullptr) {
  Options o;
  broker::Status st = apply_config_text(text, "config.json", o);
  if (out) *out = o;
  return st.message();
}

std::string env_error(const Environment& env, Options* out = nullptr) {
  Options o;
  std::vector<std::string> warnings;
  broker::Status st = apply_environment(env, o, warnings);
  if (out) *out = o;
  return st.message();
}

std::string read_all(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A file of our own under the system temp dir, removed at scope exit.
struct TempFile {
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/brokerd_config_test_XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    path = name;
    std::FILE* f = fdopen(fd, "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  ~TempFile() { std::remove(path.c_str()); }
  std::string path;
};

}  // namespace

TEST_CASE("status: OK has an empty message and names itself", "[server][status]") {
  broker::Status ok;
  CHECK(ok.is_ok());
  CHECK(ok.message().empty());
  CHECK(ok.to_string() == "OK");
  auto bad = broker::Status::invalid_argument("no");
  CHECK(bad.to_string() == "InvalidArgument: no");
  CHECK(bad.message() == "no");
}

TEST_CASE("config: the example file loads and states every default", "[server][config]") {
  std::string text = read_all(BROKERD_EXAMPLE_CONFIG);
  REQUIRE(!text.empty());
  Options loaded;
  REQUIRE(file_error(text, &loaded).empty());
  CHECK(options_to_json(loaded) == options_to_json(Options{}));
  // Every key is in the example file, so none is left undocumented.
  for (const auto& key : broker::server::config_keys()) {
    auto dot = key.rfind('.');
    std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
    CHECK(text.find("\"" + leaf + "\"") != std::string::npos);
  }
}

TEST_CASE("config: --print-config output reads back to the same options", "[server][config]") {
  Options o;
  o.workers = 3;
  o.log_level = broker::LogLevel::Debug;
  o.listeners = {{"127.0.0.1", 1884}, {"::1", 0}};
  o.limits.queue_overflow = broker::QueueOverflow::RefuseNewest;
  o.limits.max_qos = 1;
  o.limits.max_queued_bytes = 18446744073709551615ull;
  Options back;
  REQUIRE(file_error(options_to_json(o), &back).empty());
  CHECK(options_to_json(back) == options_to_json(o));
  CHECK(back.listeners.size() == 2);
  CHECK(back.limits.max_qos == 1);
}

TEST_CASE("config: values land in Options", "[server][config]") {
  Options o;
  REQUIRE(file_error(R"({
    // comments are allowed
    "workers": 4, /* and block comments */
    "data_dir": "/var/lib/broker",
    "log_level": "WARN",
    "listeners": ["1884", "127.0.0.1:1885", "[::1]:1886", {"port": 1887}],
    "limits": {"receive_maximum": 10, "queue_qos0_offline": false,
               "queue_overflow": "refuse_newest", "max_retained_bytes": 1048576}
  })",
                     &o)
              .empty());
  CHECK(o.workers == 4);
  CHECK(o.data_dir == "/var/lib/broker");
  CHECK(o.log_level == broker::LogLevel::Warn);
  REQUIRE(o.listeners.size() == 4);
  CHECK(o.listeners[0].host == "0.0.0.0");
  CHECK(o.listeners[0].port == 1884);
  CHECK(o.listeners[1].host == "127.0.0.1");
  CHECK(o.listeners[2].host == "::1");
  CHECK(o.listeners[2].port == 1886);
  CHECK(o.listeners[3].host == "0.0.0.0");
  CHECK(o.limits.receive_maximum == 10);
  CHECK_FALSE(o.limits.queue_qos0_offline);
  CHECK(o.limits.queue_overflow == broker::QueueOverflow::RefuseNewest);
  CHECK(o.limits.max_retained_bytes == 1048576);
  CHECK(o.limits.max_inflight == 64);  // untouched keys keep their defaults
}

TEST_CASE("config: errors name the line, the key and the allowed range", "[server][config]") {
  CHECK(file_error("{\n  \"limits\": {\n    \"receive_maximum\": 0\n  }\n}") ==
        "config.json:3: \"limits.receive_maximum\" must be an integer from 1 to 65535, got 0");
  CHECK(file_error("{\n\"workers\": -1}") ==
        "config.json:2: \"workers\" must be an integer from 0 to 1024, got -1");
  CHECK(file_error("{\"workers\": 1.5}") ==
        "config.json:1: \"workers\" must be an integer from 0 to 1024, got 1.5");
  CHECK(file_error("{\"workers\": \"4\"}") ==
        "config.json:1: \"workers\" must be an integer from 0 to 1024, got \"4\"");
  CHECK(file_error("{\"wake_up_coalesce_us\": 5000}") ==
        "config.json:1: \"wake_up_coalesce_us\" must be an integer from 0 to 1000, got 5000");
  CHECK(file_error("{\"limits\": {\"max_qos\": 3}}") ==
        "config.json:1: \"limits.max_qos\" must be an integer from 0 to 2, got 3");
  CHECK(file_error("{\"limits\": {\"retain_available\": 1}}") ==
        "config.json:1: \"limits.retain_available\" must be true or false, got 1");
  CHECK(file_error("{\"log_level\": \"verbose\"}") ==
        "config.json:1: \"log_level\" must be one of \"trace\", \"debug\", \"info\", \"warn\", "
        "\"error\" or \"off\", got \"verbose\"");
  CHECK(file_error("{\"data_dir\": \"\"}") ==
        "config.json:1: \"data_dir\" must be a non-empty string without NUL, got \"\"");
  CHECK(file_error("{\"limits\": 5}") == "config.json:1: \"limits\" must be an object, got 5");
  CHECK(file_error("[1]") == "config.json: the top level must be a JSON object {...}, got array");
}

TEST_CASE("config: unknown keys suggest the likely one", "[server][config]") {
  CHECK(file_error("{\n\"limits\": {\n\n\"recieve_maximum\": 5}}") ==
        "config.json:4: unknown key \"limits.recieve_maximum\" (did you mean "
        "\"limits.receive_maximum\"?)");
  // A key in the wrong section is found by its last component.
  CHECK(file_error("{\"max_packet_size\": 1000}") ==
        "config.json:1: unknown key \"max_packet_size\" (did you mean "
        "\"limits.max_packet_size\"?)");
  CHECK(file_error("{\"colour\": 1}") == "config.json:1: unknown key \"colour\"");
  CHECK(file_error("{\"listeners\": [\n{\"hots\": \"a\"}]}") ==
        "config.json:2: unknown key \"listeners[0].hots\" (did you mean "
        "\"listeners[0].host\"?)");
}

TEST_CASE("config: listener errors point at the item", "[server][config]") {
  CHECK(file_error("{\"listeners\": []}").find("must be a non-empty array") !=
        std::string::npos);
  CHECK(file_error("{\"listeners\": [\"1883\",\n \"host:99999\"]}") ==
        "config.json:2: \"listeners[1]\" must be \"[HOST:]PORT\" with a numeric HOST and PORT from 0 to 65535, got "
        "\"host:99999\"");
  CHECK(file_error("{\"listeners\": [{\"port\": 70000}]}") ==
        "config.json:1: \"listeners[0].port\" must be an integer from 0 to 65535, got 70000");
  CHECK(file_error("{\"listeners\": [\"1883\", {\"port\": 1883}]}") ==
        "config.json:1: \"listeners[1]\" repeats 0.0.0.0:1883");
  CHECK(file_error("{\"listeners\": [\"0\", \"0\"]}").empty());  // port 0 never collides
}

TEST_CASE("config: syntax errors give line and column", "[server][config]") {
  std::string msg = file_error("{\n  \"workers\": 4\n  \"data_dir\": \"x\"\n}");
  // The position is where the offending token ends, as nlohmann reads it.
  CHECK(msg.rfind("config.json:3:12: JSON syntax error: ", 0) == 0);
  CHECK(file_error("").rfind("config.json:1:1: JSON syntax error: ", 0) == 0);
  CHECK(file_error("{\"a\": 1,\n\"a\": 2}") == "config.json:2: duplicate key \"a\"");
}

TEST_CASE("config: a deeply nested document is an error, not a crash", "[server][config]") {
  // Refused while parsing: a rule list nested 200,000 deep overflowed the stack when copied.
  for (const char* key : {"limits", "durability_rules", "message_ttl_rules"}) {
    std::string deep = "{\"" + std::string(key) + "\": [" + std::string(200000, '[') +
                       std::string(200000, ']') + "]}";
    CHECK(file_error(deep) == "config.json: nested deeper than 16 levels");
  }
  std::string wide = "{\"workers\": [0";
  for (int i = 0; i < 1000; ++i) wide += ", 0";
  wide += "]}";
  std::string msg = file_error(wide);
  CHECK(msg.find("got [0, 0, 0, 0,") != std::string::npos);
  CHECK(msg.size() < 150);
}

TEST_CASE("config: hostile files get an error, not a hang, a crash or a silent cut", "[server][config]") {
  // JSON stops at a NUL: what follows it was ignored, and the line index looped forever.
  CHECK(file_error(std::string("{\"workers\": 1}\n\0{\"workers\": 2}", 31)) ==
        "config.json:2: a NUL byte is not JSON");
  CHECK(file_error("{\"data_dir\": \"d\\u0000tail\"}") ==
        "config.json:1: \"data_dir\" must be a non-empty string without NUL, got \"d\\u0000tail\"");
  CHECK(file_error("{\"listeners\": [{\"host\": \"localhost\", \"port\": 1}]}") ==
        "config.json:1: \"listeners[0].host\" must be a numeric IPv4 or IPv6 address, got \"localhost\"");
  CHECK(file_error("{\"workers\": 1e309}") == "config.json: number overflow parsing '1e309'");
  CHECK(file_error("{\"workers\": 1, \"work\\u0065rs\": 2}") == "config.json: duplicate key \"workers\"");
  CHECK(file_error("{\"limits.max_qos\": 1}") == "config.json:1: unknown key \"limits.max_qos\"");
  CHECK(file_error("{\"listeners\": [{}]}") == "config.json:1: \"listeners[0]\" needs a \"port\", got {}");
  // Keys are printed on one line, control bytes escaped, long ones cut.
  CHECK(file_error("{\"a\\nb\\u001b[31m\": 1}") == "config.json: unknown key \"a\\x0ab\\x1b[31m\"");
  const std::string long_key(100000, 'k');
  CHECK(file_error("{\"" + long_key + "\": 1}") ==
        "config.json:1: unknown key \"" + std::string(80, 'k') + "...\"");
  // A file far larger than any config is refused before it is all read.
  TempFile huge(std::string(5u << 20, ' ') + "{}");
  CHECK(load_config({"-c", huge.path}, {}).status().message() ==
        "config file \"" + huge.path + "\" is larger than 4 MiB");
}

TEST_CASE("config: a UTF-8 byte order mark does not shift line numbers", "[server][config]") {
  CHECK(file_error("\xEF\xBB\xBF{\n\"workers\": 2000}") ==
        "config.json:2: \"workers\" must be an integer from 0 to 1024, got 2000");
}

TEST_CASE("config: --print-config survives non-UTF-8 text from the environment",
          "[server][config]") {
  Options o;
  REQUIRE(env_error({{"BROKER_DATA_DIR", "/d\xFF"}}, &o).empty());
  CHECK(options_to_json(o).find("\"data_dir\": \"/d") != std::string::npos);
}

TEST_CASE("config: environment names follow the key path", "[server][config]") {
  CHECK(broker::server::env_name_for("limits.max_packet_size") == "BROKER_LIMITS_MAX_PACKET_SIZE");
  Options o;
  REQUIRE(env_error({{"BROKER_WORKERS", "4"},
                     {"BROKER_DATA_DIR", "/d"},
                     {"BROKER_LOG_LEVEL", "debug"},
                     {"BROKER_LISTEN", "0.0.0.0:1883, 127.0.0.1:1884"},
                     {"BROKER_LIMITS_MAX_PACKET_SIZE", "1024"},
                     {"BROKER_LIMITS_RETAIN_AVAILABLE", "false"},
                     {"PATH", "/bin"}},
                    &o)
              .empty());
  CHECK(o.workers == 4);
  CHECK(o.data_dir == "/d");
  CHECK(o.log_level == broker::LogLevel::Debug);
  REQUIRE(o.listeners.size() == 2);
  CHECK(o.listeners[1].port == 1884);
  CHECK(o.limits.max_packet_size == 1024);
  CHECK_FALSE(o.limits.retain_available);

  CHECK(env_error({{"BROKER_WORKERS", "four"}}) ==
        "BROKER_WORKERS: \"workers\" must be an integer from 0 to 1024, got \"four\"");
  CHECK(env_error({{"BROKER_LIMITS_RECEIVE_MAXIMUM", "0"}}) ==
        "BROKER_LIMITS_RECEIVE_MAXIMUM: \"limits.receive_maximum\" must be an integer from 1 to "
        "65535, got 0");
  CHECK(env_error({{"BROKER_LISTEN", "1883"}, {"BROKER_LISTENERS", "1884"}})
            .find("set only one") != std::string::npos);

  std::vector<std::string> warnings;
  Options w;
  REQUIRE(apply_environment({{"BROKER_WORKRES", "2"}}, w, warnings).is_ok());
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == "ignoring unknown environment variable BROKER_WORKRES (did you mean "
                       "BROKER_WORKERS?)");
}

TEST_CASE("config: precedence is defaults < file < env < flags", "[server][config]") {
  TempFile file("{\"workers\": 2, \"data_dir\": \"/file\", \"log_level\": \"error\"}");
  Environment env{{"BROKER_DATA_DIR", "/env"}, {"BROKER_LOG_LEVEL", "warn"}};
  auto r = load_config({"-c", file.path, "--log-level=trace"}, env);
  REQUIRE(r.is_ok());
  CHECK(r.value().action == Action::Run);
  CHECK(r.value().options.workers == 2);
  CHECK(r.value().options.data_dir == "/env");
  CHECK(r.value().options.log_level == broker::LogLevel::Trace);
  CHECK(r.value().options.limits.max_qos == 2);

  // BROKER_CONFIG names the file when no flag does.
  auto by_env = load_config({}, {{"BROKER_CONFIG", file.path}});
  REQUIRE(by_env.is_ok());
  CHECK(by_env.value().options.workers == 2);
  CHECK(by_env.value().config_path == file.path);
}

TEST_CASE("config: repeated --listen replaces the list", "[server][config]") {
  auto r = load_config({"--listen", "1884", "--listen", "[::]:1885", "--print-config"},
                       {{"BROKER_LISTEN", "9999"}});
  REQUIRE(r.is_ok());
  CHECK(r.value().action == Action::PrintConfig);
  const auto& l = r.value().options.listeners;
  REQUIRE(l.size() == 2);
  CHECK(l[0].port == 1884);
  CHECK(l[1].host == "::");
  CHECK(l[1].port == 1885);
}

TEST_CASE("config: usage errors are precise", "[server][config]") {
  CHECK(load_config({"--wokers", "2"}, {}).status().message() ==
        "unknown option \"--wokers\" (did you mean --workers?) (see --help)");
  CHECK(load_config({"--workers"}, {}).status().message() == "option --workers needs a value");
  // A value left out is not taken from the next option.
  CHECK(load_config({"--data-dir", "--print-config"}, {}).status().message() ==
        "option --data-dir needs a value");
  CHECK(load_config({"--workers", "x"}, {}).status().message() ==
        "--workers: \"workers\" must be an integer from 0 to 1024, got \"x\"");
  CHECK(load_config({"--listen", "a:b"}, {}).status().message() ==
        "--listen: \"listeners[0]\" must be \"[HOST:]PORT\" with a numeric HOST and PORT from 0 to 65535, got "
        "\"a:b\"");
  CHECK(load_config({"extra"}, {}).status().message() ==
        "unexpected argument \"extra\" (see --help)");
  CHECK(load_config({"--help", "--bogus"}, {}).value().action == Action::Help);
  CHECK(load_config({"--version"}, {}).value().action == Action::Version);
  auto missing = load_config({"-c", "/nonexistent/brokerd.json"}, {});
  CHECK(missing.status().code() == broker::Status::Code::IoError);
  CHECK(missing.status().message() ==
        "cannot open config file \"/nonexistent/brokerd.json\": No such file or directory");
}

TEST_CASE("config: listen addresses", "[server][config]") {
  using broker::server::parse_listen_address;
  CHECK(parse_listen_address("1883").value().host == "0.0.0.0");
  CHECK(parse_listen_address("127.0.0.2:0").value().host == "127.0.0.2");
  // Numeric addresses only: a name would need a resolver at start-up.
  CHECK(parse_listen_address("localhost:0").status().message() ==
        "\"localhost:0\": HOST must be a numeric IPv4 or IPv6 address");
  CHECK_FALSE(parse_listen_address(" 127.0.0.1:1883").is_ok());
  CHECK_FALSE(parse_listen_address(std::string("127.0.0.1\0junk:1883", 20)).is_ok());
  CHECK(parse_listen_address("[fe80::1]:8883").value().port == 8883);
  CHECK_FALSE(parse_listen_address("::1:1883").is_ok());
  CHECK_FALSE(parse_listen_address(":1883").is_ok());
  CHECK_FALSE(parse_listen_address("host:").is_ok());
  CHECK_FALSE(parse_listen_address("[::1]1883").is_ok());
  CHECK_FALSE(parse_listen_address("65536").is_ok());
  CHECK_FALSE(parse_listen_address("-1").is_ok());
}
