#include "core/transaction.h"

#include <openssl/evp.h>

#include <set>
#include <stdexcept>

#include "core/context.h"
#include "core/names.h"

namespace sluice::core {
namespace {

Status invalid(std::string message) {
  return Status(Code::kInvalidArgument, "transaction: " + std::move(message));
}

// Length-prefixed fields, so that no two different requests encode alike.
class Digest {
 public:
  Digest() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1)
      throw std::runtime_error("SHA-256 is not available");
  }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void u64(uint64_t v) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; ++i)
      bytes[i] = static_cast<unsigned char>(v >> (56 - 8 * i));
    EVP_DigestUpdate(ctx_, bytes, sizeof bytes);
  }
  void text(std::string_view s) {
    u64(s.size());
    EVP_DigestUpdate(ctx_, s.data(), s.size());
  }
  std::string finish() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned size = 0;
    EVP_DigestFinal_ex(ctx_, out, &size);
    return std::string(reinterpret_cast<const char*>(out), size);
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

std::optional<Status> checkTransaction(const TransactionRequest& request, const Limits& limits) {
  if (auto problem = validateMessageId(request.id)) {
    return invalid(std::string("its id follows the rules of a message id: ") + *problem);
  }
  if (request.offsets.empty() && request.publishes.empty()) {
    return invalid("it needs at least one ack or one message to publish, got neither");
  }
  if (request.offsets.size() > limits.maxPrefetch) {
    return Status(Code::kLimitExceeded, "transaction: it may acknowledge at most " +
                                            std::to_string(limits.maxPrefetch) + " messages, got " +
                                            std::to_string(request.offsets.size()));
  }
  if (!request.deliveryIds.empty() && request.deliveryIds.size() != request.offsets.size()) {
    return invalid("name one delivery id per offset (or none), got " +
                   std::to_string(request.deliveryIds.size()) + " for " +
                   std::to_string(request.offsets.size()) + " offsets");
  }
  std::set<Offset> offsets;
  for (Offset offset : request.offsets) {
    if (!offsets.insert(offset).second)
      return invalid("offset " + std::to_string(offset) + " is acknowledged twice");
  }
  if (request.publishes.size() > kMaxTransactionTopics) {
    return Status(Code::kLimitExceeded, "transaction: it may publish to at most " +
                                            std::to_string(kMaxTransactionTopics) +
                                            " topics, got " +
                                            std::to_string(request.publishes.size()));
  }
  std::set<std::string_view> topics;
  size_t messages = 0;
  for (const TopicBatch& batch : request.publishes) {
    if (!topics.insert(batch.topic).second) {
      return invalid("topic " + quoted(batch.topic) +
                     " is named twice; put all its messages in one entry");
    }
    if (batch.messages.empty()) {
      return invalid("the entry for topic " + quoted(batch.topic) + " has no messages");
    }
    messages += batch.messages.size();
  }
  if (messages > limits.maxBatchMessages) {
    return Status(Code::kLimitExceeded, "transaction: it may publish at most " +
                                            std::to_string(limits.maxBatchMessages) +
                                            " messages, got " + std::to_string(messages));
  }
  return std::nullopt;
}

std::string fingerprint(std::string_view topic, std::string_view group,
                        const TransactionRequest& request) {
  Digest digest;
  digest.text("sluice transaction 1");
  digest.text(topic);
  digest.text(group);
  digest.u64(request.offsets.size());
  for (Offset offset : request.offsets)
    digest.u64(offset);
  digest.u64(request.publishes.size());
  for (const TopicBatch& batch : request.publishes) {
    digest.text(batch.topic);
    digest.u64(batch.messages.size());
    for (const MessageData& m : batch.messages) {
      digest.text(m.payload);
      digest.u64(m.key ? 1 : 0);
      if (m.key) digest.text(*m.key);
      digest.u64(m.headers.size());
      for (const auto& [key, value] : m.headers) {
        digest.text(key);
        digest.text(value);
      }
      digest.text(m.id);
      digest.u64(static_cast<uint64_t>(m.deliverAtMs));
      digest.u64(m.delayMs);
      digest.u64(m.hasTtl ? uint64_t{m.ttlMs} + 1 : 0);
    }
  }
  return digest.finish();
}

}  // namespace sluice::core
