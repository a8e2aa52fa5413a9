// net::BufferedMessageStream, the message framing of every RPC connection, over a socket pair:
// what one end writes the other reads whole and in order, however the bytes are cut, and a
// frame capnp's reader would refuse fails the read.

#include <catch2/catch.hpp>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/async-io.h>

#include <string>
#include <vector>

#include "net/message_stream.h"

using sluice::net::BufferedMessageStream;

namespace {

// A one-segment message whose root is a list of `words` words, each its index plus `tag`.
kj::Array<capnp::word> messageOf(uint64_t tag, uint32_t words) {
  capnp::MallocMessageBuilder builder(words + 8, capnp::AllocationStrategy::FIXED_SIZE);
  auto list = builder.initRoot<capnp::AnyPointer>().initAs<capnp::List<uint64_t>>(words);
  for (uint32_t i = 0; i < words; ++i)
    list.set(i, tag + i);
  return capnp::messageToFlatArray(builder);
}

uint64_t tagOf(capnp::MessageReader& reader, uint32_t words) {
  auto list = reader.getRoot<capnp::AnyPointer>().getAs<capnp::List<uint64_t>>();
  REQUIRE(list.size() == words);
  uint32_t wrong = 0;
  for (uint32_t i = 0; i < words; ++i)
    wrong += list[i] == list[0] + i ? 0 : 1;
  REQUIRE(wrong == 0);
  return list[0];
}

// A message of several segments: a list of four lists, each in a segment of its own.
kj::Array<capnp::word> multiSegmentMessage(uint32_t* segments) {
  capnp::MallocMessageBuilder builder(8, capnp::AllocationStrategy::FIXED_SIZE);
  auto lists = builder.initRoot<capnp::AnyPointer>().initAs<capnp::List<capnp::List<uint64_t>>>(4);
  for (unsigned i = 0; i < 4; ++i) {
    auto list = lists.init(i, 20);
    for (unsigned k = 0; k < 20; ++k)
      list.set(k, i * 100 + k);
  }
  *segments = static_cast<uint32_t>(builder.getSegmentsForOutput().size());
  return capnp::messageToFlatArray(builder);
}

kj::Own<capnp::MessageReader> present(kj::Maybe<kj::Own<capnp::MessageReader>> read) {
  KJ_IF_MAYBE (reader, read) {
    return kj::mv(*reader);
  }
  FAIL("the stream ended where a message was expected");
  return {};
}

kj::ArrayPtr<const kj::byte> bytesOf(const kj::Array<capnp::word>& words) {
  return words.asBytes();
}

struct Pipe {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::TwoWayPipe pipe = io.provider->newTwoWayPipe();
};

}  // namespace

TEST_CASE("a buffered stream reads every message of one write, in order", "[client][stream]") {
  Pipe p;
  std::string bytes;
  for (uint64_t i = 0; i < 100; ++i) {
    auto message = messageOf(i * 1000, 1 + i % 7);
    bytes.append(reinterpret_cast<const char*>(message.begin()), message.asBytes().size());
  }
  p.pipe.ends[0]->write(bytes.data(), bytes.size()).wait(p.io.waitScope);
  BufferedMessageStream in(*p.pipe.ends[1]);
  for (uint64_t i = 0; i < 100; ++i) {
    auto reader = present(in.tryReadMessage().wait(p.io.waitScope));
    CHECK(tagOf(*reader, 1 + i % 7) == i * 1000);
  }
  p.pipe.ends[0]->shutdownWrite();
  CHECK(in.tryReadMessage().wait(p.io.waitScope) == nullptr);  // A clean end.
}

TEST_CASE("a buffered stream reads messages cut into single bytes and larger than its buffer",
          "[client][stream]") {
  Pipe p;
  auto small = messageOf(7, 3);
  auto large = messageOf(1u << 20, 300000);  // 2.4 MB: past the read buffer.
  BufferedMessageStream in(*p.pipe.ends[1]);
  auto reading = in.tryReadMessage();
  for (kj::byte b : bytesOf(small))
    p.pipe.ends[0]->write(&b, 1).wait(p.io.waitScope);
  auto first = present(reading.wait(p.io.waitScope));
  CHECK(tagOf(*first, 3) == 7);
  // Several segments, over an in-memory pipe that hands each byte to the waiting read at
  // once: the segment table itself arrives in pieces.
  uint32_t segments = 0;
  auto multi = multiSegmentMessage(&segments);
  REQUIRE(segments >= 3);
  auto memory = kj::newTwoWayPipe();
  BufferedMessageStream split(*memory.ends[1]);
  auto readingMulti = split.tryReadMessage().eagerlyEvaluate(nullptr);
  for (kj::byte b : bytesOf(multi))
    memory.ends[0]->write(&b, 1).wait(p.io.waitScope);
  auto whole = present(readingMulti.wait(p.io.waitScope));
  auto lists = whole->getRoot<capnp::AnyPointer>().getAs<capnp::List<capnp::List<uint64_t>>>();
  REQUIRE(lists.size() == 4);
  CHECK(lists[3][19] == 319);
  auto writing =
      p.pipe.ends[0]->write(large.begin(), large.asBytes().size()).eagerlyEvaluate(nullptr);
  auto second = present(in.tryReadMessage().wait(p.io.waitScope));
  writing.wait(p.io.waitScope);
  CHECK(tagOf(*second, 300000) == 1u << 20);
}

TEST_CASE("a buffered stream refuses truncated, oversized and many-segment frames",
          "[client][stream]") {
  Pipe p;
  BufferedMessageStream in(*p.pipe.ends[1]);
  SECTION("the stream ends inside a message") {
    auto message = messageOf(1, 10);
    p.pipe.ends[0]->write(message.begin(), 40).wait(p.io.waitScope);
    p.pipe.ends[0]->shutdownWrite();
    auto failed = kj::runCatchingExceptions([&] { in.tryReadMessage().wait(p.io.waitScope); });
    REQUIRE(failed != nullptr);
    CHECK(KJ_ASSERT_NONNULL(failed).getType() == kj::Exception::Type::DISCONNECTED);
    CHECK_THAT(KJ_ASSERT_NONNULL(failed).getDescription().cStr(),
               Catch::Matchers::Contains("Premature EOF"));
  }
  SECTION("a segment table naming more words than the reader allows") {
    uint32_t header[2] = {0, 1000};  // One segment of 1,000 words.
    p.pipe.ends[0]->write(header, sizeof header).wait(p.io.waitScope);
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 100;
    auto failed =
        kj::runCatchingExceptions([&] { in.tryReadMessage(options).wait(p.io.waitScope); });
    REQUIRE(failed != nullptr);
    CHECK_THAT(KJ_ASSERT_NONNULL(failed).getDescription().cStr(),
               Catch::Matchers::Contains("Message is too large"));
  }
  SECTION("a segment table of more than 512 segments") {
    uint32_t header[2] = {600, 1};
    p.pipe.ends[0]->write(header, sizeof header).wait(p.io.waitScope);
    auto failed = kj::runCatchingExceptions([&] { in.tryReadMessage().wait(p.io.waitScope); });
    REQUIRE(failed != nullptr);
    CHECK_THAT(KJ_ASSERT_NONNULL(failed).getDescription().cStr(),
               Catch::Matchers::Contains("too many segments"));
  }
}

TEST_CASE("a buffered stream sends what one turn queues in order, small and large together",
          "[client][stream]") {
  Pipe p;
  BufferedMessageStream out(*p.pipe.ends[0]);
  std::vector<kj::Array<capnp::word>> sent;
  std::vector<uint32_t> sizes;
  std::vector<kj::Promise<void>> written;
  for (uint32_t i = 0; i < 60; ++i) {
    uint32_t words = i % 20 == 19 ? 5000 : 1 + i;  // Every 20th past the copy threshold.
    sent.push_back(messageOf(uint64_t{i} << 32, words));
    sizes.push_back(words);
    kj::ArrayPtr<const capnp::word> segment = sent.back();
    // A flat array is a segment table and one segment: hand over the segment alone.
    auto segments =
        kj::heapArray<kj::ArrayPtr<const capnp::word>>({segment.slice(1, segment.size())});
    written.push_back(out.writeMessage(segments).attach(kj::mv(segments)));
  }
  // Reading turns the loop, which runs the writes too: nothing waits for the socket buffer.
  kj::AsyncIoStream& end = *p.pipe.ends[1];
  for (uint32_t i = 0; i < 60; ++i) {
    auto reader = capnp::readMessage(end).wait(p.io.waitScope);
    CHECK(tagOf(*reader, sizes[i]) == uint64_t{i} << 32);
  }
  for (auto& promise : written)
    promise.wait(p.io.waitScope);
  out.end().wait(p.io.waitScope);
  CHECK(capnp::tryReadMessage(end).wait(p.io.waitScope) == nullptr);
}
