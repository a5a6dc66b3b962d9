// net/idle_pool: the idle-connection list shared by the PostgreSQL and Redis
// backends (store and coordinator). Owns: keeping at most `max_idle`
// connections, handing back the most recently used one that still looks
// usable, and closing the ones that do not. Connecting, leasing and retry
// policy stay with each backend. Thread-safe.
#ifndef LIBANALYTICS_NET_IDLE_POOL_H_
#define LIBANALYTICS_NET_IDLE_POOL_H_

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace analytics::net {

template <typename Conn>
class IdlePool {
 public:
  explicit IdlePool(size_t max_idle) : max_idle_(max_idle) {}

  // Pops idle connections (newest first) until `usable(*conn)` holds and
  // returns that one; those that fail are closed. nullptr when none is left.
  template <typename Usable>
  std::unique_ptr<Conn> Take(Usable usable) {
    while (true) {
      std::unique_ptr<Conn> c;
      {
        absl::MutexLock lock(&mu_);
        if (idle_.empty()) return nullptr;
        c = std::move(idle_.back());
        idle_.pop_back();
      }
      if (usable(*c)) return c;
    }
  }

  // Keeps `c` for reuse unless the pool is full (then it is closed).
  void Put(std::unique_ptr<Conn> c) {
    absl::MutexLock lock(&mu_);
    if (idle_.size() < max_idle_) idle_.push_back(std::move(c));
  }

  // Closes every idle connection.
  void Clear() {
    absl::MutexLock lock(&mu_);
    idle_.clear();
  }

 private:
  const size_t max_idle_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace analytics::net

#endif  // LIBANALYTICS_NET_IDLE_POOL_H_
