// The two parsers behind ParsePlausibleEvent (ingest/trackers.cc), for tests:
// the fast path must give exactly what the full parser gives wherever it
// answers.
#ifndef ANALYTICS_INGEST_TRACKERS_INTERNAL_H_
#define ANALYTICS_INGEST_TRACKERS_INTERNAL_H_

#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "analytics/event.h"
#include "libanalytics/ingest/trackers.h"

namespace analytics::trackers_internal {

// One pass for the common shape (an object of the known keys, each at most
// once, with strings without escapes, short numbers, literals and a flat
// props object or props as a JSON string) that yields valid events; nullopt
// for anything else, including every body the full parser rejects.
std::optional<std::vector<EventInput>> ParsePlausibleEventFast(
    std::string_view body, const RequestInfo& req);

// RapidJSON's DOM over any input; decides every error.
absl::StatusOr<std::vector<EventInput>> ParsePlausibleEventFull(
    std::string_view body, const RequestInfo& req);

}  // namespace analytics::trackers_internal

#endif  // ANALYTICS_INGEST_TRACKERS_INTERNAL_H_
