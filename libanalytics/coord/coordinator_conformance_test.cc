// Conformance test of coordinator.h, run against every backend: "local"
// (always), "redis" and "postgres" (against the throwaway servers that
// tests/services/redis.sh and postgres.sh start; see CMakeLists.txt). A remote
// backend whose URL variable is missing fails, never skips.
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "analytics/coordinator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libanalytics/core/net_testing.h"

namespace analytics {
namespace {

using ::testing::ElementsAre;

class CoordinatorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    url_ = UrlFor(GetParam());
    ASSERT_FALSE(url_.empty())
        << "no URL for backend " << GetParam()
        << ": run through tests/services/" << GetParam()
        << ".sh (ctest -R coordinator_conformance_" << GetParam() << ")";
    auto c = OpenCoordinator(url_);
    ASSERT_TRUE(c.ok()) << c.status();
    a_ = std::shared_ptr<Coordinator>(std::move(*c));
    ASSERT_EQ(a_->kind(), GetParam());
    ASSERT_TRUE(a_->Ping().ok());
    // The second instance shares state with the first: another connection
    // (another worker) for the remote backends, the same object for local.
    if (GetParam() == "local") {
      b_ = a_;
    } else {
      auto c2 = OpenCoordinator(url_);
      ASSERT_TRUE(c2.ok()) << c2.status();
      b_ = std::shared_ptr<Coordinator>(std::move(*c2));
    }
    // Tests share one database: every test uses its own ids and names.
    absl::BitGen gen;
    base_ = absl::Uniform<int64_t>(gen, 1, int64_t{1} << 40);
    tag_ = absl::StrCat("t", base_);
  }

  static std::string UrlFor(const std::string& kind) {
    if (kind == "local") return "local://";
    const char* env =
        std::getenv(kind == "redis" ? "ANALYTICS_TEST_REDIS_URL"
                                    : "ANALYTICS_TEST_POSTGRES_URL");
    return env == nullptr ? "" : env;
  }

  SessionKey Key(int64_t i) const {
    return SessionKey{base_, static_cast<uint64_t>(1000 + i)};
  }

  std::string url_;
  std::shared_ptr<Coordinator> a_;
  std::shared_ptr<Coordinator> b_;
  int64_t base_ = 0;
  std::string tag_;
};

TEST_P(CoordinatorTest, SaltFirstWriterWinsAcrossInstances) {
  int64_t day = base_;
  auto s1 = a_->SaltIfAbsent(day, "salt-a", absl::Hours(1));
  ASSERT_TRUE(s1.ok()) << s1.status();
  EXPECT_EQ(*s1, "salt-a");
  auto s2 = b_->SaltIfAbsent(day, "salt-b", absl::Hours(1));
  ASSERT_TRUE(s2.ok()) << s2.status();
  EXPECT_EQ(*s2, "salt-a");
  // Binary salts are kept exactly; another day is independent.
  std::string bin("\0\x01\xff\x80salt", 8);
  auto s3 = b_->SaltIfAbsent(day + 1, bin, absl::Hours(1));
  ASSERT_TRUE(s3.ok()) << s3.status();
  EXPECT_EQ(*s3, bin);
  auto s4 = a_->SaltIfAbsent(day + 1, "other", absl::Hours(1));
  ASSERT_TRUE(s4.ok()) << s4.status();
  EXPECT_EQ(*s4, bin);
}

TEST_P(CoordinatorTest, SaltsRacingFromManyThreadsAgree) {
  int64_t day = base_ + 7;
  std::vector<std::string> got(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Coordinator* c = (t % 2 == 0 ? a_ : b_).get();
      auto s = c->SaltIfAbsent(day, absl::StrCat("cand", t), absl::Hours(1));
      got[t] = s.ok() ? *s : "error: " + s.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 1; t < 8; ++t) EXPECT_EQ(got[t], got[0]);
  EXPECT_EQ(got[0].rfind("cand", 0), 0u) << got[0];
}

TEST_P(CoordinatorTest, SaltExpires) {
  int64_t day = base_ + 3;
  auto s1 = a_->SaltIfAbsent(day, "old", absl::Milliseconds(200));
  ASSERT_TRUE(s1.ok()) << s1.status();
  EXPECT_EQ(*s1, "old");
  absl::SleepFor(absl::Milliseconds(450));
  auto s2 = b_->SaltIfAbsent(day, "new", absl::Hours(1));
  ASSERT_TRUE(s2.ok()) << s2.status();
  EXPECT_EQ(*s2, "new");
}

TEST_P(CoordinatorTest, SessionCompareAndSet) {
  SessionKey k1 = Key(1), k2 = Key(2), k3 = Key(3);
  auto absent = a_->LoadSessions({k1, k2});
  ASSERT_TRUE(absent.ok()) << absent.status();
  ASSERT_EQ(absent->size(), 2u);
  EXPECT_EQ((*absent)[0].version, 0);
  EXPECT_EQ((*absent)[0].value, "");
  EXPECT_EQ((*absent)[1].key, k2);

  // absent -> v1 for two keys at once; a write expecting v1 of an absent key
  // fails; the results come in write order.
  std::string bin("a\0b\xff", 4);
  auto r = a_->StoreSessions({SessionWrite{k1, 0, "one", absl::Minutes(5)},
                              SessionWrite{k3, 1, "nope", absl::Minutes(5)},
                              SessionWrite{k2, 0, bin, absl::Minutes(5)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(true, false, true));

  auto loaded = b_->LoadSessions({k2, k3, k1});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 3u);
  EXPECT_EQ((*loaded)[0].key, k2);
  EXPECT_EQ((*loaded)[0].version, 1);
  EXPECT_EQ((*loaded)[0].value, bin);
  EXPECT_EQ((*loaded)[1].key, k3);
  EXPECT_EQ((*loaded)[1].version, 0);
  EXPECT_EQ((*loaded)[2].version, 1);
  EXPECT_EQ((*loaded)[2].value, "one");

  // Stale versions are rejected (0 for a present key, 2 for a key at v1);
  // the right one wins, from the other instance.
  r = b_->StoreSessions({SessionWrite{k1, 0, "stale", absl::Minutes(5)},
                         SessionWrite{k2, 1, "two", absl::Minutes(5)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(false, true));
  r = a_->StoreSessions({SessionWrite{k2, 1, "again", absl::Minutes(5)},
                         SessionWrite{k1, 2, "ahead", absl::Minutes(5)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(false, false));
  loaded = a_->LoadSessions({k1, k2});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)[0].version, 1);
  EXPECT_EQ((*loaded)[0].value, "one");
  EXPECT_EQ((*loaded)[1].version, 2);
  EXPECT_EQ((*loaded)[1].value, "two");

  // Empty batches are fine.
  auto none = a_->LoadSessions({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  r = a_->StoreSessions({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->empty());
}

TEST_P(CoordinatorTest, SessionBatchWithTwoWritesForOneKeyIsRejected) {
  auto r = a_->StoreSessions({SessionWrite{Key(1), 0, "a", absl::Minutes(1)},
                              SessionWrite{Key(1), 0, "b", absl::Minutes(1)}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(CoordinatorTest, SessionCounterRaceEndsExact) {
  // 2 instances x 4 threads increment one counter through load/CAS retries.
  constexpr int kThreads = 8;
  constexpr int kIncrements = 40;
  SessionKey k = Key(9);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Coordinator* c = (t % 2 == 0 ? a_ : b_).get();
      for (int i = 0; i < kIncrements; ++i) {
        for (int attempt = 0;; ++attempt) {
          if (attempt > 10000) {
            ++errors;
            return;
          }
          auto rec = c->LoadSessions({k});
          if (!rec.ok()) {
            ++errors;
            return;
          }
          int64_t n = (*rec)[0].value.empty() ? 0 : std::stoll((*rec)[0].value);
          auto ok = c->StoreSessions({SessionWrite{
              k, (*rec)[0].version, std::to_string(n + 1), absl::Minutes(5)}});
          if (!ok.ok()) {
            ++errors;
            return;
          }
          if ((*ok)[0]) break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  auto rec = a_->LoadSessions({k});
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ((*rec)[0].value, std::to_string(kThreads * kIncrements));
  EXPECT_EQ((*rec)[0].version, kThreads * kIncrements);
}

TEST_P(CoordinatorTest, SessionsExpire) {
  SessionKey k1 = Key(1), k2 = Key(2);
  auto r =
      a_->StoreSessions({SessionWrite{k1, 0, "short", absl::Milliseconds(200)},
                         SessionWrite{k2, 0, "long", absl::Minutes(5)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(true, true));
  absl::SleepFor(absl::Milliseconds(450));
  auto loaded = b_->LoadSessions({k1, k2});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)[0].version, 0);
  EXPECT_EQ((*loaded)[0].value, "");
  EXPECT_EQ((*loaded)[1].version, 1);
  // An expired record counts as absent: version 1 is stale, 0 writes.
  r = b_->StoreSessions({SessionWrite{k1, 1, "x", absl::Minutes(5)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(false));
  r = b_->StoreSessions({SessionWrite{k1, 0, "fresh", absl::Minutes(5)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(true));
  loaded = a_->LoadSessions({k1});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)[0].version, 1);
  EXPECT_EQ((*loaded)[0].value, "fresh");
}

TEST_P(CoordinatorTest, DeleteSessions) {
  SessionKey k1 = Key(1), k2 = Key(2), k3 = Key(3);
  auto r = a_->StoreSessions({SessionWrite{k1, 0, "a", absl::Minutes(5)},
                              SessionWrite{k2, 0, "b", absl::Minutes(5)}});
  ASSERT_TRUE(r.ok()) << r.status();
  r = a_->StoreSessions({SessionWrite{k1, 1, "a2", absl::Minutes(5)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(true));
  // Whatever their version; absent keys are fine.
  ASSERT_TRUE(b_->DeleteSessions({k1, k3}).ok());
  auto loaded = a_->LoadSessions({k1, k2});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)[0].version, 0);
  EXPECT_EQ((*loaded)[1].version, 1);
  r = a_->StoreSessions({SessionWrite{k1, 0, "new", absl::Minutes(5)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(true));
  ASSERT_TRUE(a_->DeleteSessions({}).ok());
}

TEST_P(CoordinatorTest, LiveVisitors) {
  int64_t site = base_, other = base_ + 1;
  int64_t t0 = absl::ToUnixMillis(absl::Now());
  ASSERT_TRUE(
      a_->MarkLive({LiveMark{site, 1, t0 - 60'000},
                    LiveMark{site, 2, t0 - 10'000}, LiveMark{other, 1, t0}})
          .ok());
  // A later mark raises visitor 1; an older one does not lower visitor 2;
  // the same visitor twice in one batch keeps the max.
  ASSERT_TRUE(b_->MarkLive({LiveMark{site, 1, t0 - 5'000},
                            LiveMark{site, 2, t0 - 120'000},
                            LiveMark{site, 3, t0 - 90'000},
                            LiveMark{site, 3, t0 - 1'000}})
                  .ok());
  auto n = a_->CountLive(site, t0 - 30'000);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 3);
  n = b_->CountLive(site, t0 - 5'000);  // at or after since
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  n = a_->CountLive(site, t0 - 4'999);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  n = a_->CountLive(other, t0 - 1'000'000);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  n = a_->CountLive(base_ + 2, 0);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  ASSERT_TRUE(a_->MarkLive({}).ok());
}

TEST_P(CoordinatorTest, Leases) {
  std::string name = "leader-" + tag_;
  auto got = a_->TryLease(name, "w1", absl::Seconds(30));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got);
  // Exclusive: the other holder neither gets nor steals it.
  got = b_->TryLease(name, "w2", absl::Seconds(30));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(*got);
  auto holder = b_->LeaseHolder(name);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, "w1");
  // Renewal by the holder (from either instance).
  got = b_->TryLease(name, "w1", absl::Seconds(30));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got);
  // Release only by the holder.
  ASSERT_TRUE(b_->ReleaseLease(name, "w2").ok());
  holder = a_->LeaseHolder(name);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, "w1");
  ASSERT_TRUE(a_->ReleaseLease(name, "w1").ok());
  holder = a_->LeaseHolder(name);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, "");
  got = b_->TryLease(name, "w2", absl::Seconds(30));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got);
  EXPECT_EQ(a_->TryLease(name, "", absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a_->TryLease("", "w1", absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  holder = a_->LeaseHolder("nothing-" + tag_);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, "");
}

TEST_P(CoordinatorTest, LeaseRenewalKeepsItAndExpiryFreesIt) {
  // Margins of 400 ms or more, so that a loaded machine does not flake.
  std::string name = "worker-id-" + tag_;
  auto got = a_->TryLease(name, "w1", absl::Milliseconds(1000));
  ASSERT_TRUE(got.ok() && *got);
  absl::SleepFor(absl::Milliseconds(600));
  got = a_->TryLease(name, "w1", absl::Milliseconds(1000));  // renew
  ASSERT_TRUE(got.ok() && *got);
  absl::SleepFor(absl::Milliseconds(600));
  // 1200 ms after the first grant, but 600 ms after the renewal: still held.
  got = b_->TryLease(name, "w2", absl::Milliseconds(1000));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(*got);
  absl::SleepFor(absl::Milliseconds(1000));
  // Expired: LeaseHolder says free, and another holder takes it over.
  auto holder = b_->LeaseHolder(name);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, "");
  got = b_->TryLease(name, "w2", absl::Seconds(30));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got);
  holder = a_->LeaseHolder(name);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, "w2");
  // The old holder can no longer renew it.
  got = a_->TryLease(name, "w1", absl::Seconds(30));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(*got);
}

TEST_P(CoordinatorTest, LeaseRaceHasOneWinner) {
  std::string name = "race-" + tag_;
  std::atomic<int> winners{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Coordinator* c = (t % 2 == 0 ? a_ : b_).get();
      auto got = c->TryLease(name, absl::StrCat("w", t), absl::Seconds(30));
      if (!got.ok()) ++errors;
      if (got.ok() && *got) ++winners;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(winners.load(), 1);
}

TEST_P(CoordinatorTest, CountersPerKeyPerWindow) {
  std::string k1 = "ip:" + tag_, k2 = "site:" + tag_;
  absl::Duration w = absl::Seconds(10);
  int64_t t = 1'700'000'000'000;  // a window boundary (multiple of 10 s)
  auto r = a_->AddToCounters({k1, k2}, {1, 5}, w, t + 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(1, 5));
  r = b_->AddToCounters({k1, k1, k2}, {2, 3, 0}, w, t + 9'999);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(3, 6, 5));
  // The next window starts from zero.
  r = a_->AddToCounters({k1, k2}, {1, 1}, w, t + 10'000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(1, 1));
  // Another window length is another counter.
  r = b_->AddToCounters({k1}, {4}, absl::Minutes(1), t + 10'000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(4));
  // Mismatched spans are rejected; empty ones are fine.
  EXPECT_EQ(a_->AddToCounters({k1}, {}, w, t).status().code(),
            absl::StatusCode::kInvalidArgument);
  r = a_->AddToCounters({}, {}, w, t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->empty());
}

TEST_P(CoordinatorTest, CountersFromManyThreadsAddUp) {
  std::string k = "race:" + tag_;
  int64_t t = 1'700'000'000'000;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      Coordinator* c = (i % 2 == 0 ? a_ : b_).get();
      for (int j = 0; j < 25; ++j) {
        (void)c->AddToCounters({k}, {1}, absl::Minutes(1), t);
      }
    });
  }
  for (auto& th : threads) th.join();
  auto r = a_->AddToCounters({k}, {0}, absl::Minutes(1), t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(200));
}

// The prefix lets `ctest -R coordinator_conformance` select these tests.
INSTANTIATE_TEST_SUITE_P(coordinator_conformance, CoordinatorTest,
                         ::testing::Values("local", "redis", "postgres"),
                         [](const auto& info) { return info.param; });

// Backend-independent tests of OpenCoordinator (param unused; instantiated
// under the same prefix).
class OpenCoordinatorTest : public ::testing::TestWithParam<int> {};

TEST_P(OpenCoordinatorTest, Schemes) {
  auto c = OpenCoordinator("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->kind(), "local");
  c = OpenCoordinator("local://");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->kind(), "local");
  EXPECT_EQ(OpenCoordinator("memcached://x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenCoordinator("redis://").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenCoordinator("redis://host:notaport").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A closed port: Unavailable naming the cause, not a crash or a hang.
TEST_P(OpenCoordinatorTest, UnreachableKeyValueServerIsUnavailable) {
  auto c = OpenCoordinator("redis://127.0.0.1:1/0");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
  EXPECT_NE(c.status().message().find("127.0.0.1:1"), std::string::npos)
      << c.status();
}

TEST_P(OpenCoordinatorTest, UnreachableSqlServerIsUnavailable) {
  auto c =
      OpenCoordinator("postgres://u:secretpw@127.0.0.1:1/db?connect_timeout=2");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
  EXPECT_EQ(c.status().message().find("secretpw"), std::string::npos)
      << c.status();
}

INSTANTIATE_TEST_SUITE_P(coordinator_conformance, OpenCoordinatorTest,
                         ::testing::Values(0));

// ---------------------------------------------------------------------------
// Redis-specific: key names, script cache loss, dropped connections, a server
// that goes away and comes back.

std::string EnvOrEmpty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// A raw hiredis connection to the test server (host:port of the URL).
struct RawRedis {
  redisContext* c = nullptr;
  explicit RawRedis(const std::string& url) {
    // redis://127.0.0.1:PORT/0 (as tests/services/redis.sh writes it)
    std::string rest = url.substr(std::string("redis://").size());
    std::string hostport = rest.substr(0, rest.find('/'));
    size_t colon = hostport.rfind(':');
    c = redisConnect(hostport.substr(0, colon).c_str(),
                     std::atoi(hostport.substr(colon + 1).c_str()));
  }
  ~RawRedis() {
    if (c != nullptr) redisFree(c);
  }
  redisReply* Cmd(const char* cmd) {
    return static_cast<redisReply*>(redisCommand(c, cmd));
  }
};

class RedisCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = EnvOrEmpty("ANALYTICS_TEST_REDIS_URL");
    ASSERT_FALSE(url_.empty()) << "ANALYTICS_TEST_REDIS_URL is not set: run "
                                  "ctest -R coordinator_conformance_redis";
    auto c = OpenCoordinator(url_);
    ASSERT_TRUE(c.ok()) << c.status();
    c_ = std::move(*c);
  }
  std::string url_;
  std::unique_ptr<Coordinator> c_;
};

TEST_F(RedisCoordinatorTest, EveryKeyHasTheCoordinatorPrefix) {
  ASSERT_TRUE(c_->SaltIfAbsent(1, "s", absl::Minutes(1)).ok());
  ASSERT_TRUE(
      c_->StoreSessions({SessionWrite{{1, 2}, 0, "v", absl::Minutes(1)}}).ok());
  ASSERT_TRUE(c_->MarkLive({LiveMark{1, 2, 3}}).ok());
  ASSERT_TRUE(c_->TryLease("l", "h", absl::Minutes(1)).ok());
  ASSERT_TRUE(c_->AddToCounters({"k"}, {1}, absl::Minutes(1), 5).ok());
  RawRedis raw(url_);
  ASSERT_NE(raw.c, nullptr);
  redisReply* r = raw.Cmd("KEYS *");
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
  EXPECT_GE(r->elements, 5u);
  for (size_t i = 0; i < r->elements; ++i) {
    std::string key(r->element[i]->str, r->element[i]->len);
    EXPECT_TRUE(absl::StartsWith(key, "an:c:")) << key;
  }
  freeReplyObject(r);
}

TEST_F(RedisCoordinatorTest, FlushedScriptCacheIsReloaded) {
  RawRedis raw(url_);
  ASSERT_NE(raw.c, nullptr);
  freeReplyObject(raw.Cmd("SCRIPT FLUSH"));
  SessionKey k{77, 1};
  ASSERT_TRUE(c_->DeleteSessions({k}).ok());
  auto r = c_->StoreSessions({SessionWrite{k, 0, "v", absl::Minutes(1)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(true));
  freeReplyObject(raw.Cmd("SCRIPT FLUSH"));
  auto got = c_->TryLease("flush-lease", "h", absl::Minutes(1));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got);
  freeReplyObject(raw.Cmd("SCRIPT FLUSH"));
  ASSERT_TRUE(c_->ReleaseLease("flush-lease", "h").ok());
  auto holder = c_->LeaseHolder("flush-lease");
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, "");
}

TEST_F(RedisCoordinatorTest, KilledConnectionsAreReplaced) {
  ASSERT_TRUE(c_->Ping().ok());  // leaves an idle pooled connection
  RawRedis raw(url_);
  ASSERT_NE(raw.c, nullptr);
  redisReply* r = raw.Cmd("CLIENT KILL TYPE normal SKIPME yes");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->type, REDIS_REPLY_INTEGER);
  EXPECT_GE(r->integer, 1);
  freeReplyObject(r);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_TRUE(c_->Ping().ok());
  auto n = c_->CountLive(1, 0);
  EXPECT_TRUE(n.ok()) << n.status();
}

// Starts a redis-server of its own (daemonized, on a free port), stops it,
// starts it again: calls fail with Unavailable meanwhile and work again after,
// with the same coordinator.
TEST_F(RedisCoordinatorTest, UnavailableWhileDownAndRecoversWhenBack) {
  char dir_template[] = "/tmp/coord-redis-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  const int port = FreeLoopbackPort();
  ASSERT_GT(port, 0) << "no free loopback port";
  auto start = [&] {
    std::string cmd = absl::StrCat(
        "redis-server --bind 127.0.0.1 --port ", port,
        " --save '' --appendonly no --daemonize yes --requirepass s3cret",
        " --dir ", dir, " --pidfile ", dir, "/redis.pid --logfile ", dir,
        "/redis.log");
    if (std::system(cmd.c_str()) != 0) return false;
    for (int i = 0; i < 100; ++i) {
      redisContext* c = redisConnect("127.0.0.1", port);
      bool up = c != nullptr && c->err == 0;
      if (c != nullptr) redisFree(c);
      if (up) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  };
  auto stop = [&] {
    std::ifstream f(dir + "/redis.pid");
    int pid = 0;
    f >> pid;
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100 && kill(pid, 0) == 0; ++i) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    std::remove((dir + "/redis.pid").c_str());
  };
  auto log = [&] {
    std::ifstream f(dir + "/redis.log");
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  ASSERT_TRUE(start()) << "redis-server did not start on port " << port
                       << "; its log:\n"
                       << log();
  // A password is needed, and never echoed.
  auto denied = OpenCoordinator(absl::StrCat("redis://127.0.0.1:", port));
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied)
      << denied.status();
  denied = OpenCoordinator(absl::StrCat("redis://:wrongpw@127.0.0.1:", port));
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied)
      << denied.status();
  EXPECT_FALSE(absl::StrContains(denied.status().message(), "wrongpw"))
      << denied.status();
  std::string url = absl::StrCat("redis://:s3cret@127.0.0.1:", port, "/2");
  auto c = OpenCoordinator(url);
  ASSERT_TRUE(c.ok()) << c.status();
  auto got = (*c)->TryLease("x", "w1", absl::Minutes(1));
  ASSERT_TRUE(got.ok() && *got);

  stop();
  absl::Status st = (*c)->Ping();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  auto load = (*c)->LoadSessions({SessionKey{1, 1}});
  EXPECT_EQ(load.status().code(), absl::StatusCode::kUnavailable)
      << load.status();
  EXPECT_TRUE(absl::StrContains(load.status().message(), "redis"))
      << load.status();

  ASSERT_TRUE(start()) << "redis-server did not restart on port " << port
                       << "; its log:\n"
                       << log();
  EXPECT_TRUE((*c)->Ping().ok());
  // A new server has an empty script cache: EVALSHA reloads the scripts.
  got = (*c)->TryLease("x", "w2", absl::Minutes(1));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got);
  stop();
  std::system(absl::StrCat("rm -rf ", dir).c_str());
}

// ---------------------------------------------------------------------------
// PostgreSQL-specific: schema set-up racing, unlogged tables, terminated
// backends.

class PostgresCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = EnvOrEmpty("ANALYTICS_TEST_POSTGRES_URL");
    ASSERT_FALSE(url_.empty())
        << "ANALYTICS_TEST_POSTGRES_URL is not set: "
           "run ctest -R coordinator_conformance_postgres";
    pg_ = PQconnectdb(url_.c_str());
    ASSERT_EQ(PQstatus(pg_), CONNECTION_OK) << PQerrorMessage(pg_);
  }
  void TearDown() override {
    if (pg_ != nullptr) PQfinish(pg_);
  }
  // The first column of the first row of `sql` ("" when no row).
  std::string Query(const std::string& sql) {
    PGresult* r = PQexec(pg_, sql.c_str());
    std::string out;
    EXPECT_TRUE(PQresultStatus(r) == PGRES_TUPLES_OK ||
                PQresultStatus(r) == PGRES_COMMAND_OK)
        << sql << ": " << PQerrorMessage(pg_);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
      out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
    return out;
  }
  std::string url_;
  PGconn* pg_ = nullptr;
};

TEST_F(PostgresCoordinatorTest, SchemaCreationRacingFromManyWorkers) {
  // A fresh schema, so that the tables really are created by the race.
  std::string schema =
      absl::StrCat("coord_race_", absl::Uniform<uint32_t>(absl::BitGen()));
  Query("CREATE SCHEMA " + schema);
  std::string url = url_ + (url_.find('?') == std::string::npos ? "?" : "&") +
                    "options=-c%20search_path%3D" + schema;
  constexpr int kWorkers = 6;
  std::vector<absl::Status> status(kWorkers);
  std::vector<std::unique_ptr<Coordinator>> coords(kWorkers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWorkers; ++i) {
    threads.emplace_back([&, i] {
      auto c = OpenCoordinator(url);
      status[i] = c.status();
      if (c.ok()) coords[i] = std::move(*c);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kWorkers; ++i) {
    ASSERT_TRUE(status[i].ok()) << "worker " << i << ": " << status[i];
  }
  for (const char* table : {"coord_salts", "coord_sessions", "coord_live",
                            "coord_leases", "coord_counters"}) {
    EXPECT_EQ(Query(absl::StrCat("SELECT relpersistence FROM pg_class c JOIN "
                                 "pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE n.nspname = '",
                                 schema, "' AND c.relname = '", table, "'")),
              "u")
        << table << " is missing or not UNLOGGED";
  }
  // They work, and share state.
  auto r = coords[0]->StoreSessions(
      {SessionWrite{{1, 1}, 0, "x", absl::Minutes(1)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(true));
  auto l = coords[kWorkers - 1]->LoadSessions({SessionKey{1, 1}});
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ((*l)[0].version, 1);
  coords.clear();
  Query("DROP SCHEMA " + schema + " CASCADE");
}

TEST_F(PostgresCoordinatorTest, TerminatedBackendsAreReplaced) {
  auto c = OpenCoordinator(url_);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Ping().ok());  // leaves an idle pooled connection
  EXPECT_NE(Query("SELECT count(pg_terminate_backend(pid)) FROM "
                  "pg_stat_activity WHERE application_name = "
                  "'analytics-coord'"),
            "0");
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE((*c)->Ping().ok());
  auto got = (*c)->TryLease("after-terminate", "w", absl::Minutes(1));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got);
}

TEST_F(PostgresCoordinatorTest, VisitorIdsAboveInt64MaxRoundTrip) {
  auto c = OpenCoordinator(url_);
  ASSERT_TRUE(c.ok()) << c.status();
  SessionKey k{5, ~uint64_t{0} - 3};
  ASSERT_TRUE((*c)->DeleteSessions({k}).ok());
  auto r = (*c)->StoreSessions({SessionWrite{k, 0, "big", absl::Minutes(1)}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(true));
  auto l = (*c)->LoadSessions({k});
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ((*l)[0].key, k);
  EXPECT_EQ((*l)[0].value, "big");
  ASSERT_TRUE((*c)->MarkLive({LiveMark{5, ~uint64_t{0}, 10}}).ok());
  auto n = (*c)->CountLive(5, 10);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
}

}  // namespace
}  // namespace analytics
