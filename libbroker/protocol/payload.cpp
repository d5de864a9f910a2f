#include "protocol/payload.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace broker::protocol {

static_assert(sizeof(Payload) == 8);

PayloadPtr Payload::copy_of(std::string_view bytes) {
  if (bytes.size() > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("payload larger than 4 GiB");
  auto* payload = new_with_trailing<Payload>(bytes.size(), static_cast<std::uint32_t>(bytes.size()));
  if (!bytes.empty()) std::memcpy(payload->bytes(), bytes.data(), bytes.size());
  return PayloadPtr::adopt(payload);
}

void Payload::destroy(const Payload* payload) noexcept { delete_with_trailing(payload); }

}  // namespace broker::protocol
