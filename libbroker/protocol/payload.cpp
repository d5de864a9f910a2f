#include "protocol/payload.hpp"

#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

namespace broker::protocol {

// The bytes start right after the header, in memory from the default operator new.
static_assert(sizeof(Payload) == 8 && alignof(Payload) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);

PayloadPtr Payload::copy_of(std::string_view bytes) {
  if (bytes.size() > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("payload larger than 4 GiB");
  void* memory = ::operator new(sizeof(Payload) + bytes.size());
  auto* payload = new (memory) Payload(static_cast<std::uint32_t>(bytes.size()));
  if (!bytes.empty()) std::memcpy(payload->bytes(), bytes.data(), bytes.size());
  return PayloadPtr::adopt(payload);
}

void Payload::destroy(const Payload* payload) noexcept {
  payload->~Payload();
  ::operator delete(const_cast<Payload*>(payload));
}

}  // namespace broker::protocol
