#include "broker/status.hpp"

namespace broker {
namespace {

const char* code_name(Status::Code code) noexcept {
  switch (code) {
    case Status::Code::Ok: return "OK";
    case Status::Code::InvalidArgument: return "InvalidArgument";
    case Status::Code::NotFound: return "NotFound";
    case Status::Code::AlreadyExists: return "AlreadyExists";
    case Status::Code::IoError: return "IoError";
    case Status::Code::Corruption: return "Corruption";
    case Status::Code::Unavailable: return "Unavailable";
    case Status::Code::Internal: return "Internal";
  }
  return "Unknown";
}

}  // namespace

const std::string& Status::message() const noexcept {
  // A function-local static so that OK keeps costing no allocation.
  static const std::string kEmpty;
  return msg_ ? *msg_ : kEmpty;
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  std::string out = code_name(code_);
  if (msg_ && !msg_->empty()) {
    out += ": ";
    out += *msg_;
  }
  return out;
}

}  // namespace broker
