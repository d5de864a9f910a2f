#pragma once
// brokerd's configuration: a JSON file (comments allowed), BROKER_* environment variables and
// command-line flags, merged into broker::Options. Precedence: defaults < file < env < flags.
//
// Key naming: a config key is the Options field path, nested sections joined by '.'
// ("workers", "limits.receive_maximum"); the file spells it as nested objects.
// Environment: "BROKER_" + the key upper-cased with '.' turned into '_'
// (BROKER_LIMITS_RECEIVE_MAXIMUM). "listeners" takes a comma-separated "[HOST:]PORT" list, and
// BROKER_LISTEN is accepted as a synonym of BROKER_LISTENERS to match the --listen flag.
//
// Every error is one line that names its source, so brokerd can print it as is:
//   config.json:7: "limits.receive_maximum" must be an integer from 1 to 65535, got 0
//   BROKER_WORKERS: "workers" must be an integer from 0 to 1024, got "four"
//   --listen: "listeners[0]" must be "[HOST:]PORT" with a numeric HOST and PORT from 0 to 65535, got "x"
//
// Thread safety: free functions over values; process_environment() reads `environ`.
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "broker/options.hpp"
#include "broker/status.hpp"

namespace broker::server {

// What brokerd does once its command line is understood.
enum class Action { Run, Help, Version, PrintConfig };

struct Config {
  Action action = Action::Run;
  Options options;
  std::string config_path;            // the file read; empty when none
  std::vector<std::string> warnings;  // non-fatal findings, e.g. an unknown BROKER_* variable
};

// Environment variables by name; passed in so tests need not touch the process environment.
using Environment = std::map<std::string, std::string, std::less<>>;
Environment process_environment();

// Parses the command line (without argv[0]), reads the config file named by -c/--config (or by
// BROKER_CONFIG when no flag names one), then applies the environment and the flags.
// Help and Version return at once, without reading anything else.
// Errors: InvalidArgument for a usage or config error, IoError when the file cannot be read;
// the message is one line, without a program-name prefix.
Result<Config> load_config(const std::vector<std::string>& args, const Environment& env);

// Applies a config document on top of `options`. `source_name` starts every error message.
// On error `options` may be partly updated.
Status apply_config_text(std::string_view text, std::string_view source_name, Options& options);

// Applies the BROKER_* variables of `env` on top of `options`. Unknown BROKER_* names are not
// errors (other software shares the prefix) but are reported through `warnings`.
Status apply_environment(const Environment& env, Options& options,
                         std::vector<std::string>& warnings);

// Parses "[HOST:]PORT"; an IPv6 host is written in brackets ("[::1]:1883").
// A bare PORT keeps ListenerOptions' default host. Errors: InvalidArgument.
Result<ListenerOptions> parse_listen_address(std::string_view text);

// The effective configuration as a config document (pretty JSON, trailing newline); reading it
// back with apply_config_text() gives the same Options.
std::string options_to_json(const Options& options);

// Every config key with its environment variable name, in document order (for --help and docs).
std::vector<std::string> config_keys();
std::string env_name_for(std::string_view key);

std::string usage_text(std::string_view program);
std::string version_text(std::string_view program);

}  // namespace broker::server
