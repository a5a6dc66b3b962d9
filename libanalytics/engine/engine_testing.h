// Test-only hooks into the engine (not part of the public API).
#ifndef ANALYTICS_ENGINE_ENGINE_TESTING_H_
#define ANALYTICS_ENGINE_ENGINE_TESTING_H_

#include "absl/status/statusor.h"
#include "analytics/engine.h"

namespace analytics {

// Stops `engine` as a crash would: committed events stay in the store, but
// pending rollups are neither folded nor checkpointed, and its leases are not
// released (they expire). Later calls fail with FailedPrecondition.
void AbandonEngineForTest(Engine* engine);

// Runs the leader's orphan adoption now (see engine.cc), returning how many
// workers' events were adopted. 0 with a local coordinator.
absl::StatusOr<int> AdoptOrphansForTest(Engine* engine);

}  // namespace analytics

#endif  // ANALYTICS_ENGINE_ENGINE_TESTING_H_
