// Fuzz target: user-agent parsing (browser, OS, device) and bot detection.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "libanalytics/core/utf8.h"
#include "libanalytics/enrich/bots.h"
#include "libanalytics/enrich/user_agent.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view ua(reinterpret_cast<const char*>(data), size);
  analytics::UserAgentInfo info = analytics::ParseUserAgent(ua);
  // Parsed fields are bounded by the input (no invented long strings).
  FUZZ_CHECK(info.browser_version.size() <= ua.size() + 16);
  FUZZ_CHECK(info.os_version.size() <= ua.size() + 16);
  if (analytics::ValidUtf8(ua)) {
    FUZZ_CHECK(analytics::ValidUtf8(info.browser_version));
    FUZZ_CHECK(analytics::ValidUtf8(info.os_version));
  }
  (void)analytics::DetectBot(ua);
  return 0;
}
