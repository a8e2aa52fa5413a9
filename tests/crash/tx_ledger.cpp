// The transformer's payloads and ids, and the end-of-run verification of its transactions
// against crash.events and crash.out. See README.md.

#include "crash/ledger.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <unordered_map>
#include <utility>

#include "crash/violations.h"

namespace sluice::crash {
namespace {

// The input offset an output names, when it has the outputPayload() shape.
std::optional<uint64_t> inputOfPayload(std::string_view payload) {
  if (payload.size() < 4 || payload.substr(0, 2) != "T:") return std::nullopt;
  size_t semi = payload.find(';');
  if (semi == std::string_view::npos || semi == 2) return std::nullopt;
  uint64_t offset = 0;
  for (size_t i = 2; i < semi; ++i) {
    if (payload[i] < '0' || payload[i] > '9' || offset > (UINT64_MAX - 9) / 10) return std::nullopt;
    offset = offset * 10 + static_cast<uint64_t>(payload[i] - '0');
  }
  return offset;
}

std::string listOf(const std::vector<uint64_t>& offsets) {
  std::string out;
  for (size_t i = 0; i < offsets.size() && i < 8; ++i)
    out += (i == 0 ? "" : ",") + std::to_string(offsets[i]);
  if (offsets.size() > 8) out += ",... (" + std::to_string(offsets.size()) + ")";
  return out;
}

std::string describe(const TxAttempt& attempt) {
  return "transaction \"" + attempt.id + "\" (run " + std::to_string(attempt.epoch) + ", inputs " +
         listOf(attempt.inputs) + ")";
}

const char* outcomeName(TxOutcome outcome) {
  switch (outcome) {
    case TxOutcome::kInDoubt:
      return "in doubt";
    case TxOutcome::kApplied:
      return "applied";
    case TxOutcome::kReplayed:
      return "replayed";
    case TxOutcome::kConflict:
      return "conflict";
    case TxOutcome::kStale:
      return "stale delivery";
    case TxOutcome::kFailed:
      return "failed";
  }
  return "?";
}

std::string answerOf(const TxAttempt& attempt) {
  std::string answer = outcomeName(attempt.outcome);
  if (!attempt.outputs.empty()) answer += " at " + listOf(attempt.outputs);
  if (!attempt.error.empty()) answer += ": " + attempt.error;
  return answer;
}

}  // namespace

std::string outputPayload(uint64_t inputOffset, std::optional<uint64_t> inputKey) {
  return "T:" + std::to_string(inputOffset) + ";" + (inputKey ? keyName(*inputKey) : "?");
}

std::string conflictPayload(uint64_t inputOffset) {
  return "C:" + std::to_string(inputOffset) + ";";
}

std::string transactionIdFor(const std::vector<uint64_t>& inputs) {
  if (inputs.empty()) return "tx-none";
  bool consecutive = true;
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a over the offsets.
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] != inputs.front() + i) consecutive = false;
    for (int b = 0; b < 8; ++b) {
      hash ^= (inputs[i] >> (8 * b)) & 0xff;
      hash *= 0x100000001b3ull;
    }
  }
  std::string id = "tx-" + std::to_string(inputs.front());
  if (inputs.size() > 1) id += "-" + std::to_string(inputs.back());
  if (consecutive) return id;
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, "-n%zu-%016" PRIx64, inputs.size(), hash);
  return id + suffix;
}

void verifyTransactions(Violations& violations, const TransformerLog& log,
                        const std::vector<StoredMessage>& stored,
                        const std::vector<StoredOutput>& outputs, uint64_t outputsLastOffset) {
  for (const std::string& anomaly : log.anomalies)
    violations.add("transformer anomaly", anomaly);

  // The inputs (crash.events), by offset.
  uint64_t maxInput = stored.empty() ? 0 : stored.back().offset;
  std::vector<const StoredMessage*> input(maxInput + 1, nullptr);
  for (const StoredMessage& message : stored) {
    if (message.offset <= maxInput) input[message.offset] = &message;
  }

  // crash.out: dense, each output naming a stored input with that input's content.
  std::unordered_map<uint64_t, uint64_t> inputOfOutput;
  std::vector<std::vector<uint64_t>> outputsOf(maxInput + 1);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const StoredOutput& output = outputs[i];
    if (output.offset != i + 1) {
      violations.add(
          "crash.out offsets not dense",
          "output " + std::to_string(i + 1) + " has offset " + std::to_string(output.offset));
    }
    if (output.payload.rfind("C:", 0) == 0) {
      violations.add("conflicting transaction applied",
                     "crash.out offset " + std::to_string(output.offset) + " holds \"" +
                         output.payload + "\", the output of a probe the broker had to refuse");
      continue;
    }
    auto named = inputOfPayload(output.payload);
    if (!named || *named == 0 || *named > maxInput || input[*named] == nullptr) {
      violations.add("output names no stored input", "crash.out offset " +
                                                         std::to_string(output.offset) +
                                                         " holds \"" + output.payload + "\"");
      continue;
    }
    if (output.payload != outputPayload(*named, input[*named]->key)) {
      violations.add("output differs from its input",
                     "crash.out offset " + std::to_string(output.offset) + " holds \"" +
                         output.payload + "\"; expected \"" +
                         outputPayload(*named, input[*named]->key) + "\"");
    }
    inputOfOutput[output.offset] = *named;
    outputsOf[*named].push_back(output.offset);
  }
  if (outputs.size() != outputsLastOffset) {
    violations.add("crash.out offsets not dense",
                   "peek returned " + std::to_string(outputs.size()) +
                       " outputs; the topic's last offset is " + std::to_string(outputsLastOffset));
  }

  // Deliveries to group tx.
  struct PerInput {
    std::vector<uint32_t> epochs;
    uint32_t appliedEpoch = UINT32_MAX;  // First run in which a transaction acking it answered.
    bool committedInDoubt = false;       // Acked by a transaction in doubt that had committed.
  };
  std::vector<PerInput> per(maxInput + 1);
  uint64_t deliveries = 0;
  for (const ConsumerEvent& event : log.deliveries) {
    ++deliveries;
    if (event.offset == 0 || event.offset > maxInput || input[event.offset] == nullptr) {
      violations.add("delivered a message that is not stored",
                     "tx got offset " + std::to_string(event.offset));
      continue;
    }
    if (input[event.offset]->key.value_or(~uint64_t{0}) != event.key) {
      violations.add("delivered content differs from the stored message",
                     "tx offset " + std::to_string(event.offset));
    }
    per[event.offset].epochs.push_back(event.epoch);
  }

  // The answers, against what each kind of request must get.
  std::set<std::pair<uint64_t, uint32_t>> nacked;  // (offset, run) released by a stale probe.
  std::unordered_map<std::string, const TxAttempt*> appliedById;
  uint64_t applies = 0, applied = 0, appliedInputs = 0, retries = 0, retriesApplied = 0;
  uint64_t resends = 0, replays = 0, conflicts = 0, conflictsAfterRestart = 0, refused = 0;
  uint64_t staleProbes = 0, staleRefused = 0, inDoubt = 0, hadCommitted = 0, hadNot = 0;
  for (const TxAttempt& attempt : log.attempts) {
    switch (attempt.kind) {
      case TxKind::kApply:
        ++applies;
        if (attempt.retry) ++retries;
        if (attempt.outcome == TxOutcome::kApplied) {
          ++applied;
          appliedInputs += attempt.inputs.size();
          if (attempt.retry) ++retriesApplied;
          appliedById[attempt.id] = &attempt;
          for (size_t i = 0; i < attempt.inputs.size(); ++i) {
            auto at = inputOfOutput.find(attempt.outputs[i]);
            if (at == inputOfOutput.end() || at->second != attempt.inputs[i]) {
              violations.add("transaction output not at its answered offset",
                             describe(attempt) + ": the output for input " +
                                 std::to_string(attempt.inputs[i]) + " was answered at " +
                                 std::to_string(attempt.outputs[i]) + ", which holds " +
                                 (at == inputOfOutput.end()
                                      ? std::string("no output of a transaction")
                                      : "the output for input " + std::to_string(at->second)));
            }
            if (attempt.inputs[i] <= maxInput) {
              uint32_t& first = per[attempt.inputs[i]].appliedEpoch;
              first = std::min(first, attempt.epoch);
            }
          }
        } else if (attempt.outcome == TxOutcome::kInDoubt) {
          ++inDoubt;
        } else if (attempt.outcome == TxOutcome::kReplayed) {
          violations.add("transaction replayed though its messages were delivered",
                         describe(attempt) + (attempt.retry ? " (a retry after a restart)" : "") +
                             " answered " + answerOf(attempt) +
                             ": an applied transaction's acks must hold");
        } else {
          violations.add("transaction refused",
                         describe(attempt) + " answered " + answerOf(attempt));
        }
        break;
      case TxKind::kResend: {
        ++resends;
        if (attempt.outcome == TxOutcome::kInDoubt) break;
        if (attempt.outcome != TxOutcome::kReplayed) {
          violations.add(attempt.outcome == TxOutcome::kApplied ? "resent transaction applied again"
                                                                : "resent transaction not replayed",
                         describe(attempt) + " sent again answered " + answerOf(attempt));
          break;
        }
        ++replays;
        auto first = appliedById.find(attempt.id);
        if (first == appliedById.end() || first->second->outputs != attempt.outputs) {
          violations.add(
              "replay answered other offsets",
              describe(attempt) + " replayed at " + listOf(attempt.outputs) +
                  (first == appliedById.end() ? std::string(", never applied")
                                              : ", applied at " + listOf(first->second->outputs)));
        }
        break;
      }
      case TxKind::kConflict:
      case TxKind::kConflictAfterRestart:
        ++(attempt.kind == TxKind::kConflict ? conflicts : conflictsAfterRestart);
        if (attempt.outcome == TxOutcome::kConflict) {
          ++refused;
        } else if (attempt.outcome != TxOutcome::kInDoubt) {
          violations.add(
              "conflicting transaction not refused",
              describe(attempt) + " with other content" +
                  (attempt.kind == TxKind::kConflictAfterRestart ? " after a restart" : "") +
                  " answered " + answerOf(attempt));
        }
        break;
      case TxKind::kStale:
        ++staleProbes;
        for (uint64_t offset : attempt.inputs)
          nacked.emplace(offset, attempt.epoch);
        if (attempt.outcome == TxOutcome::kStale) {
          ++staleRefused;
        } else if (attempt.outcome != TxOutcome::kInDoubt) {
          violations.add("superseded delivery not refused",
                         describe(attempt) + " acking a delivery released by a nack answered " +
                             answerOf(attempt));
        }
        break;
    }
  }

  // A transaction in doubt at a kill had committed (none of its messages is delivered again)
  // or had not (all are, and it is retried): never a part of it.
  for (const TxAttempt& attempt : log.attempts) {
    if (attempt.kind != TxKind::kApply || attempt.outcome != TxOutcome::kInDoubt) continue;
    size_t back = 0;
    for (uint64_t offset : attempt.inputs) {
      if (offset > maxInput) continue;
      const auto& epochs = per[offset].epochs;
      if (std::any_of(epochs.begin(), epochs.end(), [&](uint32_t e) { return e > attempt.epoch; }))
        ++back;
    }
    if (back == 0) {
      ++hadCommitted;
      for (uint64_t offset : attempt.inputs) {
        if (offset <= maxInput) per[offset].committedInDoubt = true;
      }
    } else if (back == attempt.inputs.size()) {
      ++hadNot;
    } else {
      violations.add("in-doubt transaction came back in part",
                     describe(attempt) + ": " + std::to_string(back) + " of its " +
                         std::to_string(attempt.inputs.size()) +
                         " messages were delivered again after the kill");
    }
  }

  // Per input: acknowledged by group tx iff exactly one output names it.
  uint64_t exactlyOnce = 0, inputs = 0;
  for (uint64_t offset = 1; offset <= maxInput; ++offset) {
    if (input[offset] == nullptr) continue;
    ++inputs;
    PerInput& entry = per[offset];
    const auto& outs = outputsOf[offset];
    bool acked = entry.appliedEpoch != UINT32_MAX || entry.committedInDoubt;
    std::string which = "input " + std::to_string(offset);
    if (entry.epochs.empty()) violations.add("never delivered to the transformer", which);
    if (outs.empty()) {
      violations.add(acked ? "acknowledged without its output" : "never transformed",
                     which + (acked ? " was acked by a transaction; crash.out names it nowhere"
                                    : " has no output, and no transaction acked it"));
    } else if (outs.size() > 1) {
      violations.add("output published twice",
                     which + " is named by crash.out offsets " + listOf(outs));
    } else if (!acked) {
      violations.add("output without its acknowledgement",
                     which + " has its output at " + std::to_string(outs.front()) +
                         ", but no transaction acking it was applied, and it was delivered "
                         "again after each one in doubt");
    } else {
      ++exactlyOnce;
    }
    std::sort(entry.epochs.begin(), entry.epochs.end());
    for (size_t i = 1; i < entry.epochs.size(); ++i) {
      uint32_t epoch = entry.epochs[i];
      if (epoch > entry.appliedEpoch) {
        violations.add("delivered again after its transaction was applied",
                       which + " applied in run " + std::to_string(entry.appliedEpoch) +
                           ", delivered in run " + std::to_string(epoch));
      } else if (epoch == entry.epochs[i - 1] && nacked.count({offset, epoch}) == 0) {
        violations.add("delivered twice in one broker run",
                       "tx " + which + " in run " + std::to_string(epoch));
      }
    }
  }

  std::printf("  transformer (group tx): deliveries %" PRIu64 ", transactions %" PRIu64
              " (applied %" PRIu64 ", acking %" PRIu64 " messages; in doubt at a kill %" PRIu64
              ": had committed %" PRIu64 ", had not %" PRIu64 "; retried with the same id %" PRIu64
              ", applied %" PRIu64 ", given up %" PRIu64 ")\n",
              deliveries, applies, applied, appliedInputs, inDoubt, hadCommitted, hadNot, retries,
              retriesApplied, log.retriesGivenUp);
  std::printf("  transaction probes: resent %" PRIu64 " (replayed %" PRIu64
              "), same id other content %" PRIu64 " + %" PRIu64 " after a restart (refused %" PRIu64
              "), superseded delivery %" PRIu64 " (refused %" PRIu64 ")\n",
              resends, replays, conflicts, conflictsAfterRestart, refused, staleProbes,
              staleRefused);
  std::printf("  crash.out: %zu outputs, last offset %" PRIu64
              "; inputs acked with exactly one "
              "output %" PRIu64 "/%" PRIu64 "\n",
              outputs.size(), outputsLastOffset, exactlyOnce, inputs);
}

}  // namespace sluice::crash
