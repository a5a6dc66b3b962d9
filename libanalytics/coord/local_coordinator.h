// Local Coordinator: coordinator.h for one process, in memory (the default,
// "local://"). Owns nothing shared: two LocalCoordinators never see each
// other's state, so it is only right when one analyticsd serves a dataset.
//
// Expiry (salts, sessions, leases) follows the wall clock (absl::Now());
// expired entries behave as absent at once and are swept out at most once a
// minute. Live marks more than coord::kLiveKeep behind a site's newest mark
// and counters of past windows are discarded by the same sweep. Counters keep
// one window per (key, window length): a call for another window starts it
// from zero.
//
// Thread-safe: one mutex around all state (every call is a few map
// operations).
#ifndef ANALYTICS_COORD_LOCAL_COORDINATOR_H_
#define ANALYTICS_COORD_LOCAL_COORDINATOR_H_

#include <memory>

#include "analytics/coordinator.h"

namespace analytics {

std::unique_ptr<Coordinator> NewLocalCoordinator();

}  // namespace analytics

#endif  // ANALYTICS_COORD_LOCAL_COORDINATOR_H_
