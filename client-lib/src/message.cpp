// Message::ack / ackAsync / nack / nackAsync; the work happens in SubscriptionState::settle.

#include <optional>

#include "subscription_state.h"

namespace sluice {
namespace {

Error notDelivered() {
  return Error{ErrorCode::kInvalidArgument,
               "message was read by peek; only delivered messages can be acknowledged"};
}

}  // namespace

Result<void> Message::ack() const {
  if (!subscription_) return notDelivered();
  if (auto problem = subscription_->checkMayBlock("ack")) return *problem;
  auto future = subscription_->settle(offset_, deliveryId_, std::nullopt);
  return subscription_->await(future, "ack");
}

std::future<Result<void>> Message::ackAsync() const {
  if (!subscription_) {
    std::promise<Result<void>> refused;
    refused.set_value(notDelivered());
    return refused.get_future();
  }
  return subscription_->settle(offset_, deliveryId_, std::nullopt);
}

std::future<Result<void>> Message::nackAsync(std::chrono::milliseconds delay) const {
  if (!subscription_) {
    std::promise<Result<void>> refused;
    refused.set_value(notDelivered());
    return refused.get_future();
  }
  return subscription_->settle(offset_, deliveryId_, delay);
}

Result<void> Message::nack(std::chrono::milliseconds delay) const {
  if (!subscription_) return notDelivered();
  if (auto problem = subscription_->checkMayBlock("nack")) return *problem;
  auto future = subscription_->settle(offset_, deliveryId_, delay);
  return subscription_->await(future, "nack");
}

}  // namespace sluice
