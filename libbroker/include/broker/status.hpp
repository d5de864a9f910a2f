#pragma once
// broker::Status and broker::Result<T>: library errors as values. No exception crosses the
// public API. MQTT reason codes are a separate thing (reason_code.hpp).
//
// Thread safety: values; distinct objects are safe, one object is not.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "broker/export.h"

namespace broker {

class [[nodiscard]] BROKER_EXPORT Status {
 public:
  enum class Code : int {
    Ok = 0,
    InvalidArgument,  // caller's input is wrong (bad option, bad config value)
    NotFound,
    AlreadyExists,
    IoError,          // a system call failed (bind, open, write)
    Corruption,       // stored data cannot be read back
    Unavailable,      // temporarily unable (full map, shutting down); retry may succeed
    Internal,         // a bug: an invariant did not hold
  };

  // OK costs no allocation.
  Status() noexcept = default;
  static Status ok() noexcept { return Status(); }
  static Status invalid_argument(std::string_view msg) { return Status(Code::InvalidArgument, msg); }
  static Status not_found(std::string_view msg) { return Status(Code::NotFound, msg); }
  static Status already_exists(std::string_view msg) { return Status(Code::AlreadyExists, msg); }
  static Status io_error(std::string_view msg) { return Status(Code::IoError, msg); }
  static Status corruption(std::string_view msg) { return Status(Code::Corruption, msg); }
  static Status unavailable(std::string_view msg) { return Status(Code::Unavailable, msg); }
  static Status internal(std::string_view msg) { return Status(Code::Internal, msg); }

  bool is_ok() const noexcept { return code_ == Code::Ok; }
  explicit operator bool() const noexcept { return is_ok(); }
  Code code() const noexcept { return code_; }
  // The message without the code's name; empty for OK.
  const std::string& message() const noexcept;
  // "InvalidArgument: message", or "OK".
  std::string to_string() const;

 private:
  Status(Code code, std::string_view msg)
      : code_(code), msg_(std::make_shared<const std::string>(msg)) {}
  Code code_ = Code::Ok;
  std::shared_ptr<const std::string> msg_;  // null for OK
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                       // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}                // NOLINT: REQUIRES: !status.is_ok()
  bool is_ok() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return is_ok(); }
  // REQUIRES: is_ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  // OK when a value is held.
  Status status() const { return is_ok() ? Status::ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace broker
