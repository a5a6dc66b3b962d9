// How stores that keep props as text encode them: a JSON object, keys in
// order, duplicates kept, values strings. Shared by the SQLite and
// PostgreSQL stores.
#ifndef ANALYTICS_STORE_PROPS_CODEC_H_
#define ANALYTICS_STORE_PROPS_CODEC_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "analytics/event.h"

namespace analytics {

// Replaces *out with the JSON object of `props`.
void EncodeProps(const Props& props, std::string* out);

// Parses what EncodeProps wrote ("" = no props). DataLoss naming `store`
// (e.g. "sqlite") when the text is not such an object.
absl::Status DecodeProps(std::string_view json, Props* props,
                         std::string_view store);

}  // namespace analytics

#endif  // ANALYTICS_STORE_PROPS_CODEC_H_
