// Plausible Stats API v1 on top of the v2 query model.
//
// Owns: v1's parameters (site_id, period, date, metrics, filters, property,
// interval, limit, page, compare), its filter string syntax
// ("event:page==/blog/**;visit:country!=DE|FR", with `==`, `!=`, `~`
// (contains), `|` alternatives, `;` conjunction, `*`/`**` wildcards), and its
// response shapes. The server calls these; no HTTP here.
#ifndef ANALYTICS_QUERY_V1_H_
#define ANALYTICS_QUERY_V1_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace analytics {

enum class V1Endpoint { kAggregate, kTimeseries, kBreakdown };

// Query parameters of a v1 request (first value of each key).
using V1Params = std::map<std::string, std::string>;

// Builds the v2 query body (JSON) for a v1 request. InvalidArgument names
// the bad parameter ("period: unknown value 'x'", "filters: …",
// "property: required for breakdown").
absl::StatusOr<std::string> V1ToV2Query(V1Endpoint endpoint,
                                        const V1Params& params);

// Converts a v2 response (from Engine::Query of V1ToV2Query's body) into the
// v1 response shape:
//   aggregate:  {"results":{"visitors":{"value":N[,"change":C]},…}}
//   timeseries: {"results":[{"date":"2026-01-01","visitors":N,…},…]}
//   breakdown:  {"results":[{"<property name>":"/", "visitors":N,…},…]}
absl::StatusOr<std::string> V2ToV1Response(V1Endpoint endpoint,
                                           const V1Params& params,
                                           std::string_view v2_response);

}  // namespace analytics

#endif  // ANALYTICS_QUERY_V1_H_
