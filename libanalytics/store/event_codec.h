// Binary encodings of stored events, shared by the stores that keep events
// as bytes (Redis: one record per event; SQLite: blocks of records).
//
// Owns: the event record format (a format byte, then varints, zigzag for
// signed values, strings as varint length + bytes, in Event field order; seq
// and worker are kept by the caller) and the block formats (1: a format
// byte, the event count, then per event its seq as a delta from the previous
// one and its length-prefixed record; 2: the same values column by column,
// LZ4-compressed, see event_codec.cc). All are stored data: never change an
// existing format, add a new format byte instead.
#ifndef ANALYTICS_STORE_EVENT_CODEC_H_
#define ANALYTICS_STORE_EVENT_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "analytics/event.h"

namespace analytics {

// One event without seq and worker. Replaces *out.
void EncodeEvent(const Event& e, std::string* out);
// DataLoss for bytes EncodeEvent did not produce. Leaves seq and worker.
absl::Status DecodeEvent(std::string_view in, Event* e);

// Appends a block of events to *out (cleared first), in the current block
// format (2: columns, LZ4-compressed). Their seqs must be increasing and at
// least `base_seq`.
void EncodeEventBlock(absl::Span<const Event* const> events, int64_t base_seq,
                      std::string* out);
// The same in block format 1 (records), which stores wrote before format 2
// and which DecodeEventBlock still reads: for tests of that.
void EncodeEventBlockV1(absl::Span<const Event* const> events, int64_t base_seq,
                        std::string* out);
// Decodes a block written with the same base_seq, appending its events (in
// seq order, with `worker` set) to *out. DataLoss for malformed bytes; *out
// then holds only the events before the damage.
absl::Status DecodeEventBlock(std::string_view in, int64_t base_seq,
                              int32_t worker, std::vector<Event>* out);

}  // namespace analytics

#endif  // ANALYTICS_STORE_EVENT_CODEC_H_
