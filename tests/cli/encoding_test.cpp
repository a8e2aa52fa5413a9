#include "encoding.h"

#include <catch2/catch.hpp>

using namespace sluice::cli;

TEST_CASE("base64 matches the RFC 4648 test vectors", "[cli][encoding]") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    INFO(plain);
    CHECK(base64Encode(plain) == encoded);
    CHECK(base64Decode(encoded) == std::optional<std::string>(plain));
  }
}

TEST_CASE("base64 round-trips every byte value", "[cli][encoding]") {
  std::string bytes;
  for (int i = 0; i < 256; ++i)
    bytes += static_cast<char>(i);
  for (size_t length : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{255}, size_t{256}}) {
    std::string slice = bytes.substr(0, length);
    CHECK(base64Decode(base64Encode(slice)) == std::optional<std::string>(slice));
  }
  CHECK(base64Encode(std::string("\xff\xfe\x00", 3)) == "//4A");
}

TEST_CASE("malformed base64 is rejected", "[cli][encoding]") {
  CHECK_FALSE(base64Decode("Zg=").has_value());
  CHECK_FALSE(base64Decode("Zm9v!A==").has_value());
  CHECK_FALSE(base64Decode("Z===").has_value());
}

TEST_CASE("UTF-8 validity", "[cli][encoding]") {
  SECTION("valid text, including multi-byte characters and control characters") {
    CHECK(isValidUtf8(""));
    CHECK(isValidUtf8("hello"));
    CHECK(isValidUtf8(std::string("a\0b", 3)));
    CHECK(isValidUtf8("caf\xc3\xa9"));       // é
    CHECK(isValidUtf8("\xe2\x82\xac"));      // €
    CHECK(isValidUtf8("\xf0\x9f\x98\x80"));  // 😀
    CHECK(isValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  }
  SECTION("invalid sequences") {
    CHECK_FALSE(isValidUtf8("\xff"));
    CHECK_FALSE(isValidUtf8("\x80"));                  // Lone continuation byte.
    CHECK_FALSE(isValidUtf8("\xc3"));                  // Truncated.
    CHECK_FALSE(isValidUtf8("\xc3\x28"));              // Bad continuation.
    CHECK_FALSE(isValidUtf8("\xc0\xaf"));              // Overlong '/'.
    CHECK_FALSE(isValidUtf8("\xe0\x80\xaf"));          // Overlong, 3 bytes.
    CHECK_FALSE(isValidUtf8("\xed\xa0\x80"));          // Surrogate U+D800.
    CHECK_FALSE(isValidUtf8("\xf4\x90\x80\x80"));      // Above U+10FFFF.
    CHECK_FALSE(isValidUtf8("\xf8\x88\x80\x80\x80"));  // 5-byte form.
    CHECK_FALSE(isValidUtf8("ok\xe2\x82"));            // Truncated at the end.
  }
}
