// Message::ack / nack / inProgress and their async forms; the work happens in
// SubscriptionState::settle.

#include <algorithm>
#include <cstdint>

#include "subscription_state.h"

namespace sluice {
namespace {

Error notDelivered() {
  return Error{ErrorCode::kInvalidArgument,
               "message was read by peek; only delivered messages can be acknowledged"};
}

// The wire carries delays and extensions as UInt32 milliseconds (about 49 days); the broker
// rejects what is beyond its own limits.
uint32_t wireMs(std::chrono::milliseconds ms) {
  return static_cast<uint32_t>(std::clamp<int64_t>(ms.count(), 0, UINT32_MAX));
}

detail::Settlement nackOf(std::chrono::milliseconds delay) {
  return {detail::Settlement::Kind::kNack, wireMs(delay)};
}

detail::Settlement inProgressOf(std::chrono::milliseconds extend) {
  return {detail::Settlement::Kind::kInProgress, wireMs(extend)};
}

constexpr detail::Settlement kAck{detail::Settlement::Kind::kAck, 0};

}  // namespace

std::future<Result<void>> Message::settleAsync(const detail::Settlement& settlement) const {
  if (!subscription_) {
    std::promise<Result<void>> refused;
    refused.set_value(notDelivered());
    return refused.get_future();
  }
  return subscription_->settle(offset_, deliveryId_, settlement);
}

Result<void> Message::settle(const char* what, const detail::Settlement& settlement) const {
  if (!subscription_) return notDelivered();
  if (auto problem = subscription_->checkMayBlock(what)) return *problem;
  auto future = subscription_->settle(offset_, deliveryId_, settlement);
  return subscription_->await(future, what);
}

Result<void> Message::ack() const {
  return settle("ack", kAck);
}

std::future<Result<void>> Message::ackAsync() const {
  return settleAsync(kAck);
}

Result<void> Message::nack(std::chrono::milliseconds delay) const {
  return settle("nack", nackOf(delay));
}

std::future<Result<void>> Message::nackAsync(std::chrono::milliseconds delay) const {
  return settleAsync(nackOf(delay));
}

Result<void> Message::inProgress(std::chrono::milliseconds extend) const {
  return settle("inProgress", inProgressOf(extend));
}

std::future<Result<void>> Message::inProgressAsync(std::chrono::milliseconds extend) const {
  return settleAsync(inProgressOf(extend));
}

}  // namespace sluice
