// Fuzz target: every tracker protocol body (Plausible /api/event, Swetrix
// /log, /log/custom, /log/hb, /log/error, Umami /api/send and /api/batch).
// The first byte picks the protocol, the rest is the request body. For
// Plausible, the fast path (trackers_internal.h) must also give exactly what
// the full RapidJSON parser gives wherever it answers.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "fuzz/fuzz_util.h"
#include "libanalytics/ingest/trackers.h"
#include "libanalytics/ingest/trackers_internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using analytics::SwetrixKind;
  analytics::RequestInfo req;
  req.ip = "203.0.113.9";
  req.user_agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0";
  req.now = absl::FromUnixSeconds(1790812840);
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 7) {
    case 0: {
      auto events = analytics::ParsePlausibleEvent(body, req);
      analytics::fuzz::CheckEvents(events);
      auto full =
          analytics::trackers_internal::ParsePlausibleEventFull(body, req);
      FUZZ_CHECK(events.ok() == full.ok());
      if (!full.ok()) {
        FUZZ_CHECK(events.status() == full.status());
      } else {
        FUZZ_CHECK(analytics::fuzz::SameEvents(*events, *full));
      }
      auto fast =
          analytics::trackers_internal::ParsePlausibleEventFast(body, req);
      if (fast) {
        FUZZ_CHECK(full.ok());
        FUZZ_CHECK(analytics::fuzz::SameEvents(*fast, *full));
      }
      break;
    }
    case 1:
      analytics::fuzz::CheckEvents(
          analytics::ParseSwetrix(SwetrixKind::kPageview, body, req));
      break;
    case 2:
      analytics::fuzz::CheckEvents(
          analytics::ParseSwetrix(SwetrixKind::kCustom, body, req));
      break;
    case 3: {
      // A heartbeat carries no page; it is only checked not to crash.
      auto hb = analytics::ParseSwetrix(SwetrixKind::kHeartbeat, body, req);
      FUZZ_CHECK(hb.ok() || !hb.status().message().empty());
      break;
    }
    case 4:
      analytics::fuzz::CheckEvents(
          analytics::ParseSwetrix(SwetrixKind::kError, body, req));
      break;
    case 5:
      analytics::fuzz::CheckEvents(analytics::ParseUmamiSend(body, req));
      break;
    case 6:
      analytics::fuzz::CheckEvents(analytics::ParseUmamiBatch(body, req));
      break;
  }
  return 0;
}
