#pragma once

// The one parser of "host:port" addresses, for everything that takes one: sluiced's --listen
// and --admin, the admin HTTP server, libsluice's Client::connect and the CLI's --broker.
// Header-only and std-only, so the broker and the installed client library share it without
// linking each other. Not installed.

#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::net {

struct HostPort {
  std::string host;  // Without the brackets of an IPv6 address.
  uint16_t port = 0;
};

// Parses "host:port" or "[ipv6]:port". The host is not empty and holds no space, control
// character or '/'; an IPv6 host is in brackets (a bare one would make the port ambiguous);
// the port is 0-65535 (0 means "any free port" where a server listens; callers that connect
// refuse it). On failure returns nothing and sets *problem to the rule and what was received.
inline std::optional<HostPort> parseHostPort(std::string_view text, std::string* problem) {
  auto quoted = [](std::string_view s) { return "\"" + std::string(s) + "\""; };
  const std::string rule = "an address must be host:port (an IPv6 host in brackets: [::1]:7400)";
  auto fail = [&](const std::string& why) -> std::optional<HostPort> {
    if (problem != nullptr) *problem = rule + "; " + why;
    return std::nullopt;
  };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail("got " + quoted(text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("got " + quoted(text) + ", with no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return fail("got " + quoted(text) + ": an IPv6 host needs brackets");
    }
  }
  if (host.empty()) return fail("the host is empty in " + quoted(text));
  for (char c : host) {
    auto u = static_cast<unsigned char>(c);
    if (std::isspace(u) || std::iscntrl(u) || c == '/') {
      return fail("the host has a space, '/' or control character in " + quoted(text));
    }
  }
  unsigned value = 0;
  bool digits = !port.empty() && port.size() <= 5;
  for (char c : port) {
    if (c < '0' || c > '9') {
      digits = false;
      break;
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (!digits || value > 65535) return fail("the port must be 0-65535, got " + quoted(port));
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

// The pieces of a comma-separated list ("a:1,b:2"), empty ones included ("a:1," has two), so
// that a caller checking each piece refuses a stray comma.
inline std::vector<std::string_view> splitList(std::string_view text) {
  std::vector<std::string_view> pieces;
  for (size_t start = 0;;) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) {
      pieces.push_back(text.substr(start));
      return pieces;
    }
    pieces.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
}

}  // namespace sluice::net
