// The Catch2 (v2) runner shared by the C++ suites.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
