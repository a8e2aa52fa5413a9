// The test support library (tests/support) uses Catch2 assertions in a few helpers; the crash
// driver has its own main, so it takes Catch's implementation without Catch's main.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
