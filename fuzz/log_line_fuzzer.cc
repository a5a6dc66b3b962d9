// Fuzz target: access-log lines (combined/nginx, common, caddy-json) and
// format detection. The first byte picks the format; the rest is split into
// lines, each parsed, and all of them given to DetectLogFormat.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "libanalytics/ingest/logs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using analytics::LogFormat;
  static constexpr LogFormat kFormats[] = {
      LogFormat::kCombined, LogFormat::kCommon, LogFormat::kCaddyJson};
  const LogFormat format = kFormats[data[0] % 3];
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string_view> lines;
  std::string scratch;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text =
        nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    lines.push_back(line);
    analytics::LogRecord rec;
    std::string_view error;
    if (analytics::ParseLogLine(format, line, &rec, &scratch, &error)) {
      FUZZ_CHECK(rec.status >= 0);
      // Every view points into the line or the scratch buffer.
      (void)analytics::IsAssetPath(rec.target);
    } else {
      FUZZ_CHECK(!error.empty());
    }
  }
  (void)analytics::DetectLogFormat(lines);
  (void)analytics::ParseStatusRange(lines.empty() ? "" : lines[0]);
  return 0;
}
