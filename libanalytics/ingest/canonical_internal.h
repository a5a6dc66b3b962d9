// The two parsers behind ParseEventJson (ingest/canonical.cc), for tests:
// the fast path must give exactly what the full parser gives wherever it
// answers.
#ifndef ANALYTICS_INGEST_CANONICAL_INTERNAL_H_
#define ANALYTICS_INGEST_CANONICAL_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "analytics/event.h"

namespace analytics::canonical_internal {

// A numeric "ts" in seconds, in [2000-01-01, 2101-01-01), as microseconds:
// std::llround(seconds * 1e6), without the call.
int64_t TsMicros(double seconds);

// Gives a reused EventInput a fresh one's values, keeping the capacity of its
// strings. Props entries are left for the parser to overwrite: a caller that
// does not parse props clears them. Shared by the canonical parser and the
// log importer (a static_assert in canonical.cc catches a new field).
void ResetEventInput(EventInput* in);

// ValidateEventInput; `ascii`: every string of `in` is known to be ASCII (a
// fast parser saw no byte >= 0x80), and the UTF-8 checks are skipped (they
// would pass); otherwise they are made as ValidateEventInput makes them.
absl::Status ValidateEventInput(const EventInput& in, bool ascii);

// True when every byte of `s` is below 0x80.
bool AllAscii(std::string_view s);

// One pass for the common shape (an object of strings without escapes,
// numbers, literals and a flat "props" object, every field accepted);
// nullopt for anything else.
std::optional<absl::StatusOr<EventInput>> ParseEventJsonFast(
    std::string_view json);

// RapidJSON's SAX reader over any input; decides every error.
absl::StatusOr<EventInput> ParseEventJsonFull(std::string_view json);

// The same into *out, reusing its strings' capacity (see ParseEventJson's
// overload in analytics/event.h). nullopt from the fast path: *out holds
// whatever it had parsed; the full parser starts afresh.
std::optional<absl::Status> ParseEventJsonFast(std::string_view json,
                                               EventInput* out);
absl::Status ParseEventJsonFull(std::string_view json, EventInput* out);

}  // namespace analytics::canonical_internal

#endif  // ANALYTICS_INGEST_CANONICAL_INTERNAL_H_
