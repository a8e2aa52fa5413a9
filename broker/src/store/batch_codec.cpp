#include "store/batch_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/debug.h>

#include <cstring>
#include <type_traits>

#include "common/text.h"
#include "core/auth.h"
#include "core/names.h"
#include "core/subjects.h"
#include "sluice/schemas/records.capnp.h"
#include "store/codec.h"

namespace sluice::store::codec {
namespace {

using records::WriteOp;

capnp::Text::Reader text(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());  // Sized: keeps embedded NULs.
}
capnp::Data::Reader data(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string str(capnp::Text::Reader t) {
  return std::string(t.begin(), t.size());
}
std::string str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

void setMessage(records::LoggedMessage::Builder out, const core::AppendedMessage& m) {
  out.setTimestampMs(m.timestampMs);
  if (m.data.key) {
    out.setHasKey(true);
    out.setKey(data(*m.data.key));
  }
  if (!m.data.headers.empty()) {
    auto headers = out.initHeaders(m.data.headers.size());
    for (size_t i = 0; i < m.data.headers.size(); ++i) {
      headers[i].setKey(text(m.data.headers[i].first));
      headers[i].setValue(text(m.data.headers[i].second));
    }
  }
  out.setPayload(data(m.data.payload));
  if (!m.data.id.empty()) out.setId(text(m.data.id));
  out.setDedupExpiresMs(m.dedupExpiresMs);
  out.setDelayMs(storedDelayMs(m.timestampMs, m.data.deliverAtMs));
  out.setTtlMs(m.data.ttlMs);
  if (!m.data.subject.empty()) out.setSubject(text(m.data.subject));
}

core::AppendedMessage getMessage(records::LoggedMessage::Reader in) {
  core::AppendedMessage m;
  m.timestampMs = in.getTimestampMs();
  if (in.getHasKey()) m.data.key = str(in.getKey());
  for (auto h : in.getHeaders())
    m.data.headers.emplace_back(str(h.getKey()), str(h.getValue()));
  m.data.payload = str(in.getPayload());
  m.data.id = str(in.getId());
  m.dedupExpiresMs = in.getDedupExpiresMs();
  m.data.deliverAtMs = deliverAtOf(m.timestampMs, in.getDelayMs());
  m.data.ttlMs = in.getTtlMs();
  m.data.subject = str(in.getSubject());
  return m;
}

struct Encoder {
  WriteOp::Builder out;
  BatchForm form;

  void operator()(const core::CreateTopicOp& op) {
    auto o = out.initCreateTopic();
    o.setTopicId(op.id);
    o.setName(text(op.name));
    setSettings(o.initSettings(), op.settings);
    o.setCreatedMs(op.createdMs);
  }
  void operator()(const core::DeleteTopicOp& op) {
    auto o = out.initDeleteTopic();
    o.setTopicId(op.id);
    o.setName(text(op.name));
  }
  void operator()(const core::PurgeTopicOp& op) {
    auto o = out.initPurgeTopic();
    o.setTopicId(op.id);
    o.setName(text(op.name));
  }
  void operator()(const core::AppendOp& op) {
    auto o = out.initAppend();
    o.setTopicId(op.id);
    o.setName(text(op.topic));
    o.setFirstOffset(op.firstOffset);
    if (form == BatchForm::kShipped) {
      auto list = o.initMessages(op.messages.size());
      for (size_t i = 0; i < op.messages.size(); ++i)
        setMessage(list[i], op.messages[i]);
      return;
    }
    o.setCount(static_cast<uint32_t>(op.messages.size()));
    bool anyId = false;
    for (const auto& m : op.messages)
      anyId = anyId || m.dedupExpiresMs != 0;
    if (anyId) {
      auto list = o.initDedupExpiresMs(op.messages.size());
      for (size_t i = 0; i < op.messages.size(); ++i)
        list.set(i, op.messages[i].dedupExpiresMs);
    }
  }
  void operator()(const core::TrimOp& op) {
    auto o = out.initTrim();
    o.setTopicId(op.id);
    o.setName(text(op.topic));
    o.setBelow(op.below);
  }
  void operator()(const core::PutGroupOp& op) {
    auto o = out.initPutGroup();
    o.setTopicId(op.group.topicId);
    o.setName(text(op.group.name));
    setGroup(o.initGroup(), op.group);
  }
  void operator()(const core::DeleteGroupOp& op) {
    auto o = out.initDeleteGroup();
    o.setTopicId(op.topic);
    o.setName(text(op.group));
  }
  void operator()(const core::ClearPendingOp& op) {
    auto o = out.initClearPending();
    o.setTopicId(op.topic);
    o.setName(text(op.group));
  }
  void operator()(const core::PutPendingOp& op) {
    auto o = out.initPutPending();
    o.setTopicId(op.topic);
    o.setGroup(text(op.group));
    o.setOffset(op.offset);
    auto p = o.initPending();
    p.setDeliveries(op.deliveries);
    p.setVisibleAtMs(op.visibleAtMs);
    p.setCause(static_cast<uint8_t>(op.cause));
  }
  void operator()(const core::RemovePendingOp& op) {
    auto o = out.initRemovePending();
    o.setTopicId(op.topic);
    o.setGroup(text(op.group));
    o.setOffset(op.offset);
  }
  void operator()(const core::ExpireDedupOp& op) { out.initExpireDedup().setNowMs(op.nowMs); }
  void operator()(const core::PutTxnOp& op) {
    auto o = out.initPutTxn();
    o.setId(text(op.id));
    codec::toRecord(core::TxnEntry{op.fingerprint, op.expiresMs, op.outputs}, o.initTxn());
  }
  void operator()(const core::SetSubjectsOp& op) {
    auto o = out.initSetSubjects();
    o.setTopicId(op.id);
    o.setName(text(op.topic));
    setTexts(o.initSubjects(static_cast<unsigned>(op.subjects.size())), op.subjects);
  }
  void operator()(const core::PutPrincipalOp& op) {
    codec::toRecord(op.principal, out.initPutPrincipal());
  }
  void operator()(const core::DeletePrincipalOp& op) { out.setDeletePrincipal(text(op.name)); }
  void operator()(const core::PutCredentialOp& op) {
    codec::toRecord(op.credential, out.initPutCredential());
  }
  void operator()(const core::RevokeCredentialsOp& op) {
    auto ids = out.initRevokeCredentials(static_cast<unsigned>(op.ids.size()));
    for (unsigned i = 0; i < op.ids.size(); ++i)
      ids.set(i, op.ids[i]);
  }
  void operator()(const core::BeginEpochOp& op) {
    auto o = out.initBeginEpoch();
    o.setEpoch(op.epoch);
    o.setLeader(text(op.leader));
    o.setCluster(text(op.cluster));
  }
};

// Decoding failures are collected as text, so the caller answers one typed error.
struct Bad {
  std::string why;
};

std::string topicName(capnp::Text::Reader name, size_t i) {
  std::string s = str(name);
  if (auto problem = core::validateTopicName(s))
    throw Bad{"op " + std::to_string(i + 1) + ": " + *problem};
  return s;
}
std::string groupName(capnp::Text::Reader name, size_t i) {
  std::string s = str(name);
  if (auto problem = core::validateGroupName(s))
    throw Bad{"op " + std::to_string(i + 1) + ": " + *problem};
  return s;
}
Offset offsetOf(uint64_t offset, size_t i) {
  if (offset == 0) throw Bad{"op " + std::to_string(i + 1) + ": offset 0 (offsets start at 1)"};
  return offset;
}
TopicId topicIdOf(uint32_t id, size_t i) {
  if (id == 0) throw Bad{"op " + std::to_string(i + 1) + ": topic id 0"};
  return id;
}

std::vector<std::string> patternsOf(capnp::List<capnp::Text>::Reader in, size_t limit, size_t i) {
  std::vector<std::string> patterns = getTexts(in);
  if (auto problem = core::validateSubjectPatterns(patterns, limit))
    throw Bad{"op " + std::to_string(i + 1) + ": " + *problem};
  return patterns;
}

void principalName(const std::string& name, size_t i) {
  if (auto problem = core::validatePrincipalName(name))
    throw Bad{"op " + std::to_string(i + 1) + ": " + *problem};
}
void rulesOf(const std::vector<AuthRule>& rules, size_t limit, size_t i) {
  if (auto problem = core::validateRules(rules, limit))
    throw Bad{"op " + std::to_string(i + 1) + ": " + *problem};
}

core::WriteOp decodeOp(WriteOp::Reader in, size_t i, bool* storedAppend, uint32_t* count) {
  *storedAppend = false;
  switch (in.which()) {
    case WriteOp::CREATE_TOPIC: {
      auto o = in.getCreateTopic();
      TopicConfig settings = getSettings(o.getSettings());
      patternsOf(o.getSettings().getSubjects(), core::kMaxPatternsPerTopic, i);
      return core::CreateTopicOp{topicIdOf(o.getTopicId(), i), topicName(o.getName(), i),
                                 std::move(settings), o.getCreatedMs()};
    }
    case WriteOp::DELETE_TOPIC: {
      auto o = in.getDeleteTopic();
      return core::DeleteTopicOp{topicIdOf(o.getTopicId(), i), topicName(o.getName(), i)};
    }
    case WriteOp::PURGE_TOPIC: {
      auto o = in.getPurgeTopic();
      return core::PurgeTopicOp{topicIdOf(o.getTopicId(), i), topicName(o.getName(), i)};
    }
    case WriteOp::APPEND: {
      auto o = in.getAppend();
      core::AppendOp op;
      op.id = topicIdOf(o.getTopicId(), i);
      op.topic = topicName(o.getName(), i);
      op.firstOffset = offsetOf(o.getFirstOffset(), i);
      // Each list is read once: every read counts against the traversal limit.
      auto messages = o.getMessages();
      uint32_t stored = o.getCount();
      if (stored > kMaxAppendMessages || messages.size() > kMaxAppendMessages) {
        throw Bad{"op " + std::to_string(i + 1) + ": an append of more than " +
                  std::to_string(kMaxAppendMessages) + " messages"};
      }
      if (stored > 0) {
        if (messages.size() != 0) {
          throw Bad{"op " + std::to_string(i + 1) + ": an append has both a count and bodies"};
        }
        auto expiries = o.getDedupExpiresMs();
        if (expiries.size() != 0 && expiries.size() != stored) {
          throw Bad{"op " + std::to_string(i + 1) + ": " + std::to_string(expiries.size()) +
                    " dedup expiries for " + std::to_string(stored) + " messages"};
        }
        op.messages.resize(stored);
        for (size_t k = 0; k < expiries.size(); ++k)
          op.messages[k].dedupExpiresMs = expiries[k];
        *storedAppend = true;
        *count = stored;
        return op;
      }
      if (messages.size() == 0) {
        throw Bad{"op " + std::to_string(i + 1) + ": an append of no messages"};
      }
      op.messages.reserve(messages.size());
      for (auto m : messages)
        op.messages.push_back(getMessage(m));
      return op;
    }
    case WriteOp::TRIM: {
      auto o = in.getTrim();
      return core::TrimOp{topicIdOf(o.getTopicId(), i), topicName(o.getName(), i), o.getBelow()};
    }
    case WriteOp::PUT_GROUP: {
      auto o = in.getPutGroup();
      auto g = o.getGroup();
      GroupRecord record;
      record.topicId = topicIdOf(o.getTopicId(), i);
      record.name = groupName(o.getName(), i);
      record.position = offsetOf(g.getPosition(), i);
      record.createdMs = g.getCreatedMs();
      record.redelivered = g.getRedelivered();
      record.deadLettered = g.getDeadLettered();
      record.keyOrdered = g.getKeyOrdered();
      record.filter = patternsOf(g.getFilter(), core::kMaxPatternsPerGroup, i);
      return core::PutGroupOp{record};
    }
    case WriteOp::DELETE_GROUP: {
      auto o = in.getDeleteGroup();
      return core::DeleteGroupOp{topicIdOf(o.getTopicId(), i), groupName(o.getName(), i)};
    }
    case WriteOp::CLEAR_PENDING: {
      auto o = in.getClearPending();
      return core::ClearPendingOp{topicIdOf(o.getTopicId(), i), groupName(o.getName(), i)};
    }
    case WriteOp::PUT_PENDING: {
      auto o = in.getPutPending();
      auto p = o.getPending();
      if (p.getCause() > static_cast<uint8_t>(core::RedeliveryCause::kRestart)) {
        throw Bad{"op " + std::to_string(i + 1) + ": unknown redelivery cause " +
                  std::to_string(p.getCause())};
      }
      return core::PutPendingOp{
          topicIdOf(o.getTopicId(), i), groupName(o.getGroup(), i),
          offsetOf(o.getOffset(), i),   p.getDeliveries(),
          p.getVisibleAtMs(),           static_cast<core::RedeliveryCause>(p.getCause())};
    }
    case WriteOp::REMOVE_PENDING: {
      auto o = in.getRemovePending();
      return core::RemovePendingOp{topicIdOf(o.getTopicId(), i), groupName(o.getGroup(), i),
                                   offsetOf(o.getOffset(), i)};
    }
    case WriteOp::EXPIRE_DEDUP:
      return core::ExpireDedupOp{in.getExpireDedup().getNowMs()};
    case WriteOp::PUT_TXN: {
      auto o = in.getPutTxn();
      if (!o.hasId() || o.getId().size() == 0) {
        throw Bad{"op " + std::to_string(i + 1) + ": a transaction record without an id"};
      }
      core::TxnEntry entry = codec::fromRecord(o.getTxn());
      return core::PutTxnOp{std::string(o.getId().cStr(), o.getId().size()),
                            std::move(entry.fingerprint), entry.expiresMs,
                            std::move(entry.outputs)};
    }
    case WriteOp::SET_SUBJECTS: {
      auto o = in.getSetSubjects();
      return core::SetSubjectsOp{topicIdOf(o.getTopicId(), i), topicName(o.getName(), i),
                                 patternsOf(o.getSubjects(), core::kMaxPatternsPerTopic, i)};
    }
    case WriteOp::PUT_PRINCIPAL: {
      PrincipalRecord principal = codec::fromRecord(in.getPutPrincipal());
      principalName(principal.name, i);
      rulesOf(principal.rules, core::kMaxRulesPerPrincipal, i);
      return core::PutPrincipalOp{std::move(principal)};
    }
    case WriteOp::DELETE_PRINCIPAL: {
      std::string name = str(in.getDeletePrincipal());
      principalName(name, i);
      return core::DeletePrincipalOp{std::move(name)};
    }
    case WriteOp::PUT_CREDENTIAL: {
      CredentialRecord credential = codec::fromRecord(in.getPutCredential());
      principalName(credential.principal, i);
      rulesOf(credential.scope, core::kMaxScopeRules, i);
      if (credential.id == 0 || credential.secretHash.size() != 32)
        throw Bad{"op " + std::to_string(i + 1) + ": a credential without an id or its hash"};
      return core::PutCredentialOp{std::move(credential)};
    }
    case WriteOp::REVOKE_CREDENTIALS: {
      core::RevokeCredentialsOp op;
      for (uint64_t id : in.getRevokeCredentials())
        op.ids.push_back(id);
      return op;
    }
    case WriteOp::BEGIN_EPOCH: {
      auto o = in.getBeginEpoch();
      core::BeginEpochOp op{o.getEpoch(), str(o.getLeader()), str(o.getCluster())};
      if (op.epoch == 0 || !isIdText(op.leader) || !isIdText(op.cluster)) {
        throw Bad{"op " + std::to_string(i + 1) +
                  ": an epoch without a number, a leader id or a cluster id"};
      }
      return op;
    }
  }
  throw Bad{"op " + std::to_string(i + 1) + ": unknown operation (" +
            std::to_string(static_cast<unsigned>(in.which())) + "), written by a newer broker?"};
}

}  // namespace

kj::Array<capnp::word> encodeBatch(uint64_t seq, const core::WriteBatch& batch, BatchForm form,
                                   int64_t loggedAtMs) {
  capnp::MallocMessageBuilder message;
  auto out = message.initRoot<records::WriteBatch>();
  out.setSeq(seq);
  out.setLoggedAtMs(loggedAtMs);
  auto ops = out.initOps(batch.ops.size());
  for (size_t i = 0; i < batch.ops.size(); ++i)
    std::visit(Encoder{ops[i], form}, batch.ops[i]);
  return capnp::messageToFlatArray(message);
}

Result<core::LoggedBatch> decodeBatch(std::string_view bytes, std::vector<StoredAppendRef>* refs) {
  auto bad = [&](const std::string& why) {
    return Status(Code::kInvalidArgument,
                  "write batch of " + std::to_string(bytes.size()) + " bytes rejected: " + why);
  };
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return bad("its size is not a positive multiple of 8");
  }
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  std::vector<StoredAppendRef> found;
  core::LoggedBatch out;
  try {
    capnp::ReaderOptions options;
    // Decoding reads each field of a well-formed batch about once; the factor leaves room for
    // the union's and groups' repeated struct reads while still bounding what a hostile
    // batch (lists of zero-sized elements read as structs) can make the decoder walk.
    options.traversalLimitInWords = words.size() * 8 + 1024;
    options.nestingLimit = 16;
    // The segment table must account for exactly these bytes: a truncated batch is caught
    // here or by the first out-of-bounds pointer below.
    capnp::FlatArrayMessageReader reader(words, options);
    if (reader.getEnd() != words.end()) return bad("trailing bytes after the message");
    auto root = reader.getRoot<records::WriteBatch>();
    out.seq = root.getSeq();
    if (out.seq == 0) return bad("sequence number 0 (sequences start at 1)");
    out.loggedAtMs = root.getLoggedAtMs();
    auto ops = root.getOps();
    out.batch.ops.reserve(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
      bool stored = false;
      uint32_t count = 0;
      out.batch.ops.push_back(decodeOp(ops[i], i, &stored, &count));
      if (stored) {
        const auto& append = std::get<core::AppendOp>(out.batch.ops.back());
        found.push_back(StoredAppendRef{i, append.id, append.firstOffset, count});
      }
    }
  } catch (const Bad& e) {
    return bad(e.why);
  } catch (const kj::Exception& e) {
    return bad(std::string("malformed or truncated: ") + e.getDescription().cStr());
  }
  if (!found.empty() && refs == nullptr) {
    return bad("an append without its message bodies, where complete ops were expected");
  }
  if (refs != nullptr) *refs = std::move(found);
  return out;
}

Result<int64_t> loggedAtMsOf(std::string_view bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status(Code::kInvalidArgument, "write batch of " + std::to_string(bytes.size()) +
                                              " bytes rejected: its size is not a positive "
                                              "multiple of 8");
  }
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  try {
    capnp::FlatArrayMessageReader reader(words);
    return reader.getRoot<records::WriteBatch>().getLoggedAtMs();
  } catch (const kj::Exception& e) {
    return Status(Code::kInvalidArgument,
                  std::string("write batch rejected: ") + e.getDescription().cStr());
  }
}

}  // namespace sluice::store::codec
