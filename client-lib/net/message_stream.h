#pragma once

// BufferedMessageStream: the capnp::MessageStream that the broker and libsluice run their RPC
// connections over. capnp's own AsyncIoMessageStream makes two read() calls for every message
// received (its first word, then the rest) and one write() for every message sent, which on a
// connection carrying many small calls (acks, transactions, publishes one by one) costs more
// than the calls themselves. This one reads whatever the socket holds into one buffer and
// parses every whole message in it, and sends the small messages queued during one turn of the
// event loop with one write, once the loop has nothing else to run. Header-only, so that the
// broker and the installed client library share it without linking each other. Not installed.
//
// Limits are those of capnp's reader: at most 512 segments, at most
// ReaderOptions::traversalLimitInWords words; a message past them fails the read. It carries
// no file descriptors.

#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <capnp/serialize-async.h>
#include <capnp/serialize.h>
#include <kj/async-io.h>
#include <kj/debug.h>

namespace sluice::net {

class BufferedMessageStream final : public capnp::MessageStream, private kj::TaskSet::ErrorHandler {
 public:
  explicit BufferedMessageStream(kj::AsyncIoStream& stream)
      : stream_(stream), in_(kj::heapArray<capnp::word>(kMinReadWords)), tasks_(*this) {}

  using capnp::MessageStream::tryReadMessage;
  using capnp::MessageStream::writeMessage;

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd>, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word>) override {
    return kj::evalNow([this, options] { return readNext(options); });
  }

  kj::Promise<void> writeMessage(
      kj::ArrayPtr<const int> fds,
      kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override {
    KJ_REQUIRE(fds.size() == 0, "this stream carries no file descriptors");
    return queue(segments);
  }

  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override {
    kj::Promise<void> last = kj::READY_NOW;
    // In order: once the last one is written, so are the others.
    for (auto segments : messages)
      last = queue(segments);
    return last;
  }

  kj::Maybe<int> getSendBufferSize() override {
    int size = 0;
    uint length = sizeof(size);
    KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&] {
                   stream_.getsockopt(SOL_SOCKET, SO_SNDBUF, &size, &length);
                 })) {
      return nullptr;
    }
    return size;
  }

  kj::Promise<void> end() override {
    return flushed().then([this] { stream_.shutdownWrite(); });
  }

 private:
  // The read buffer starts at 4 KiB, so that idle connections cost little, and doubles up to
  // 64 KiB while reads fill it.
  static constexpr size_t kMinReadWords = 512;
  static constexpr size_t kMaxReadWords = 8192;
  static constexpr size_t kCopyBytes = 16 * 1024;         // Smaller messages are copied.
  static constexpr size_t kMaxQueuedBytes = 1024 * 1024;  // Then a write waits for the socket.
  static constexpr size_t kEagerBytes = 64 * 1024;        // Written at once, not at turn end.
  static constexpr uint32_t kMaxSegments = 512;

  // One piece of the next write: a copy of small messages, or a large message in place (its
  // segments stay valid until the promise returned for it resolves).
  struct Piece {
    std::string copy;
    kj::ArrayPtr<const kj::byte> ref;
    kj::ArrayPtr<const kj::byte> bytes() const {
      return ref.size() > 0
                 ? ref
                 : kj::arrayPtr(reinterpret_cast<const kj::byte*>(copy.data()), copy.size());
    }
  };

  struct Batch {
    std::vector<Piece> pieces;
    kj::Array<kj::ArrayPtr<const kj::byte>> ptrs;
    kj::Own<kj::PromiseFulfiller<void>> done;  // May be null: nobody waits for this batch.
  };

  static uint32_t readLe32(const kj::byte* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
  }
  static void appendLe32(std::string& out, uint32_t v) {
    char b[4] = {char(v & 0xff), char((v >> 8) & 0xff), char((v >> 16) & 0xff),
                 char((v >> 24) & 0xff)};
    out.append(b, 4);
  }

  kj::byte* inBytes() { return reinterpret_cast<kj::byte*>(in_.begin()); }

  // How many bytes the message at the front of the buffer needs before it can be read: its
  // first word, then its whole segment table, then all of it. So when at least that many are
  // there, it is the message's size. Throws on a table capnp's reader would refuse.
  size_t frontMessageBytes(const capnp::ReaderOptions& options) {
    size_t have = end_ - begin_;
    if (have < 8) return 8;
    const kj::byte* p = inBytes() + begin_;
    uint32_t segments = readLe32(p) + 1;  // 0 after a wrap-around.
    KJ_REQUIRE(segments != 0 && segments <= kMaxSegments, "Message has too many segments.",
               segments);
    size_t tableBytes = (size_t{segments} / 2 + 1) * sizeof(capnp::word);
    if (have < tableBytes) return tableBytes;
    uint64_t words = 0;
    for (uint32_t i = 0; i < segments; ++i)
      words += readLe32(p + 4 + 4 * i);
    KJ_REQUIRE(words <= options.traversalLimitInWords,
               "Message is too large. To increase the limit on the receiving end, see "
               "capnp::ReaderOptions.",
               words);
    return tableBytes + words * sizeof(capnp::word);
  }

  static kj::Own<capnp::MessageReader> readerOver(kj::Array<capnp::word> words,
                                                  const capnp::ReaderOptions& options) {
    auto reader = kj::heap<capnp::FlatArrayMessageReader>(words, options);
    return reader.attach(kj::mv(words));
  }

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> readNext(capnp::ReaderOptions options) {
    size_t need = frontMessageBytes(options);
    size_t have = end_ - begin_;
    if (have >= need) {
      auto words = kj::heapArray<capnp::word>(need / sizeof(capnp::word));
      std::memcpy(words.begin(), inBytes() + begin_, need);
      begin_ += need;
      if (begin_ == end_) begin_ = end_ = 0;
      return kj::Maybe<capnp::MessageReaderAndFds>(
          capnp::MessageReaderAndFds{readerOver(kj::mv(words), options), nullptr});
    }
    if (need > in_.size() * sizeof(capnp::word)) {
      // Larger than the buffer: read the rest of it straight into its own array.
      auto words = kj::heapArray<capnp::word>(need / sizeof(capnp::word));
      kj::byte* out = reinterpret_cast<kj::byte*>(words.begin());
      std::memcpy(out, inBytes() + begin_, have);
      begin_ = end_ = 0;
      auto rest = stream_.tryRead(out + have, need - have, need - have);
      return rest.then([this, have, need, options, words = kj::mv(words)](
                           size_t n) mutable -> kj::Maybe<capnp::MessageReaderAndFds> {
        if (have + n < need) prematureEof();
        return capnp::MessageReaderAndFds{readerOver(kj::mv(words), options), nullptr};
      });
    }
    if (lastReadFilled_ && in_.size() < kMaxReadWords) {
      auto bigger = kj::heapArray<capnp::word>(in_.size() * 2);
      std::memcpy(bigger.begin(), inBytes() + begin_, have);
      in_ = kj::mv(bigger);
      begin_ = 0;
      end_ = have;
    } else if (begin_ > 0) {  // Room at the end for the rest of the front message.
      std::memmove(inBytes(), inBytes() + begin_, have);
      begin_ = 0;
      end_ = have;
    }
    size_t atLeast = need - have;
    size_t room = in_.size() * sizeof(capnp::word) - end_;
    return stream_.tryRead(inBytes() + end_, atLeast, room)
        .then([this, have, atLeast, room,
               options](size_t n) -> kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> {
          lastReadFilled_ = n == room;
          if (n < atLeast) {
            if (have == 0 && n == 0) return kj::Maybe<capnp::MessageReaderAndFds>(nullptr);
            prematureEof();
          }
          end_ += n;
          return readNext(options);
        });
  }

  [[noreturn]] static void prematureEof() {
    kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "Premature EOF: truncated message"));
  }

  kj::Promise<void> queue(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
    KJ_IF_MAYBE (e, failed_) {
      return kj::cp(*e);
    }
    KJ_REQUIRE(segments.size() > 0 && segments.size() <= kMaxSegments, segments.size());
    std::string table;
    appendLe32(table, static_cast<uint32_t>(segments.size() - 1));
    size_t bytes = 0;
    for (auto segment : segments) {
      appendLe32(table, static_cast<uint32_t>(segment.size()));
      bytes += segment.asBytes().size();
    }
    if (table.size() % sizeof(capnp::word) != 0) appendLe32(table, 0);
    scheduleFlush();
    if (bytes <= kCopyBytes) {
      if (pieces_.empty() || pieces_.back().ref.size() > 0) pieces_.emplace_back();
      std::string& copy = pieces_.back().copy;
      copy += table;
      for (auto segment : segments)
        copy.append(reinterpret_cast<const char*>(segment.begin()), segment.asBytes().size());
      queuedBytes_ += table.size() + bytes;
      if (queuedBytes_ >= kEagerBytes) startWrite();
      if (queuedBytes_ < kMaxQueuedBytes) return kj::READY_NOW;
      return flushed();  // The peer is not reading fast enough: wait for the socket.
    }
    pieces_.emplace_back();
    pieces_.back().copy = kj::mv(table);
    for (auto segment : segments) {
      pieces_.emplace_back();
      pieces_.back().ref = segment.asBytes();
    }
    queuedBytes_ += bytes;
    auto done = flushed();
    startWrite();  // Nothing to gain by waiting: it is a write of its own.
    return done;
  }

  // Resolves once everything queued so far is written.
  kj::Promise<void> flushed() {
    KJ_IF_MAYBE (e, failed_) {
      return kj::cp(*e);
    }
    if (pieces_.empty() && !writing_) return kj::READY_NOW;
    if (nextDone_.get() == nullptr) {
      auto paf = kj::newPromiseAndFulfiller<void>();
      nextDonePromise_ = paf.promise.fork();
      nextDone_ = kj::mv(paf.fulfiller);
    }
    return KJ_ASSERT_NONNULL(nextDonePromise_).addBranch();
  }

  void scheduleFlush() {
    if (flushScheduled_) return;
    flushScheduled_ = true;
    // Once the loop has run everything else it holds: what this turn's events send goes out in
    // one write.
    tasks_.add(kj::evalLast([this] {
      flushScheduled_ = false;
      startWrite();
    }));
  }

  void startWrite() {
    if (writing_ || pieces_.empty() || failed_ != nullptr) return;
    auto batch = kj::heap<Batch>();
    batch->pieces = std::move(pieces_);
    pieces_.clear();
    queuedBytes_ = 0;
    batch->ptrs = kj::heapArray<kj::ArrayPtr<const kj::byte>>(batch->pieces.size());
    for (size_t i = 0; i < batch->pieces.size(); ++i)
      batch->ptrs[i] = batch->pieces[i].bytes();
    batch->done = kj::mv(nextDone_);
    nextDonePromise_ = nullptr;
    writing_ = true;
    Batch* written = batch.get();
    tasks_.add(stream_.write(written->ptrs)
                   .then(
                       [this, written]() {
                         writing_ = false;
                         if (written->done.get() != nullptr) written->done->fulfill();
                         if (!pieces_.empty()) {
                           startWrite();
                         } else if (nextDone_.get() != nullptr) {
                           // Waited for the write in progress, with nothing queued after it.
                           nextDone_->fulfill();
                           nextDone_ = nullptr;
                           nextDonePromise_ = nullptr;
                         }
                       },
                       [this, written](kj::Exception&& e) {
                         writing_ = false;
                         if (written->done.get() != nullptr) written->done->reject(kj::cp(e));
                         if (nextDone_.get() != nullptr) nextDone_->reject(kj::cp(e));
                         failed_ = kj::mv(e);
                       })
                   .attach(kj::mv(batch)));
  }

  // A write failed: kept in failed_ and answered to every later write; reads fail on their own.
  void taskFailed(kj::Exception&&) override {}

  kj::AsyncIoStream& stream_;
  kj::Array<capnp::word> in_;
  size_t begin_ = 0;  // Bytes of in_ not yet parsed: [begin_, end_).
  size_t end_ = 0;
  bool lastReadFilled_ = false;
  std::vector<Piece> pieces_;
  size_t queuedBytes_ = 0;
  bool flushScheduled_ = false;
  bool writing_ = false;
  kj::Own<kj::PromiseFulfiller<void>> nextDone_;
  kj::Maybe<kj::ForkedPromise<void>> nextDonePromise_;
  kj::Maybe<kj::Exception> failed_;
  kj::TaskSet tasks_;  // Last: destroyed first, cancelling a write before its buffers go.
};

}  // namespace sluice::net
