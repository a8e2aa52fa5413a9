#pragma once

// Record values: capnp messages (schemas/records.capnp) serialized flat. LMDB values are not
// 8-byte aligned, so decoding copies unaligned values into an aligned buffer first. Decoding a
// malformed value throws kj::Exception. Internal to store/.

#include <capnp/common.h>
#include <kj/array.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/records.h"
#include "core/storage.h"
#include "sluice/schemas/records.capnp.h"

namespace sluice::store::codec {

struct DedupEntry {
  Offset offset = 0;
  int64_t expiresMs = 0;
};

inline std::string_view bytesOf(const kj::Array<capnp::word>& words) {
  return std::string_view(reinterpret_cast<const char*>(words.begin()), words.asBytes().size());
}

void setSettings(records::StoredSettings::Builder out, const TopicConfig& settings);
TopicConfig getSettings(records::StoredSettings::Reader in);
// Lists of texts (subject patterns), sized: embedded NULs are kept.
void setTexts(capnp::List<capnp::Text>::Builder out, const std::vector<std::string>& texts);
std::vector<std::string> getTexts(capnp::List<capnp::Text>::Reader in);

kj::Array<capnp::word> encodeTopic(const TopicRecord& topic);
TopicRecord decodeTopic(std::string_view name, std::string_view value);

kj::Array<capnp::word> encodeMessage(int64_t timestampMs, const MessageData& message);
// As encodeMessage, without allocating: builds the record in a reused, per-thread buffer, asks
// `reserve` for room for its flat bytes (e.g. an MDB_RESERVE'd value) and writes them there.
// A null `reserve` result skips the write. Returns the size in bytes.
size_t encodeMessageInto(int64_t timestampMs, const MessageData& message,
                         const std::function<kj::byte*(size_t bytes)>& reserve);
StoredMessageData decodeMessage(Offset offset, std::string_view value);
// What retention needs, without copying the payload.
using core::MessageMeta;
MessageMeta decodeMessageMeta(std::string_view value);
using core::MessageHead;
MessageHead decodeMessageHead(Offset offset, std::string_view value);
// The message whole if `whole(its head)` says so, read in one pass.
std::optional<StoredMessageData> decodeMessageIf(
    Offset offset, std::string_view value, const std::function<bool(const MessageHead&)>& whole);

// The group's fields but its pending count (which the store keeps).
void setGroup(records::StoredGroup::Builder out, const GroupRecord& group);
kj::Array<capnp::word> encodeGroup(const GroupRecord& group);
GroupRecord decodeGroup(TopicId topic, std::string_view name, std::string_view value);

kj::Array<capnp::word> encodePending(const PendingRecord& pending);
PendingRecord decodePending(TopicId topic, std::string_view group, Offset offset,
                            std::string_view value);

kj::Array<capnp::word> encodeDedup(const DedupEntry& entry);
DedupEntry decodeDedup(std::string_view value);

// Also the form a PutTxnOp carries in the write log (batch_codec.cpp).
void toRecord(const core::TxnEntry& entry, records::StoredTxn::Builder out);
core::TxnEntry fromRecord(records::StoredTxn::Reader in);
kj::Array<capnp::word> encodeTxn(const core::TxnEntry& entry);
core::TxnEntry decodeTxn(std::string_view value);

// Principals and credentials (the `auth` database); also their form in the write log.
void toRecord(const PrincipalRecord& principal, records::StoredPrincipal::Builder out);
PrincipalRecord fromRecord(records::StoredPrincipal::Reader in);
void toRecord(const CredentialRecord& credential, records::StoredCredential::Builder out);
CredentialRecord fromRecord(records::StoredCredential::Reader in);
kj::Array<capnp::word> encodePrincipal(const PrincipalRecord& principal);
PrincipalRecord decodePrincipal(std::string_view value);
kj::Array<capnp::word> encodeCredential(const CredentialRecord& credential);
CredentialRecord decodeCredential(std::string_view value);

}  // namespace sluice::store::codec
