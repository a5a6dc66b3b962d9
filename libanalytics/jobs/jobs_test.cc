// Tests of the jobs module that need no network peer: periods, validation,
// rendering, the ledger protocol (a second run sends nothing, a failed
// delivery is retried after its backoff), retention and salt rotation. The
// SMTP and webhook deliveries are tested against real servers in
// tests/jobs/jobs_test.py.
#include "libanalytics/jobs/jobs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libanalytics/jobs/alerts.h"
#include "libanalytics/jobs/config.h"
#include "libanalytics/jobs/delivery.h"
#include "libanalytics/jobs/periods.h"
#include "libanalytics/jobs/report.h"
#include "rapidjson/document.h"

namespace analytics::jobs {
namespace {

using ::testing::HasSubstr;

absl::Time Utc(int y, int m, int d, int h = 0, int min = 0) {
  return absl::FromCivil(absl::CivilMinute(y, m, d, h, min),
                         absl::UTCTimeZone());
}

TEST(JobsPeriodsTest, IsoWeeksAndMonths) {
  absl::TimeZone berlin;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &berlin));
  // Saturday 2026-11-28: the last complete week is 2026-W47 (Nov 16-22).
  Period w =
      LastCompletePeriod(Frequency::kWeekly, Utc(2026, 11, 28, 12), berlin);
  EXPECT_EQ(w.label, "2026-W47");
  EXPECT_EQ(w.first_day, "2026-11-16");
  EXPECT_EQ(w.last_day, "2026-11-22");
  EXPECT_EQ(w.from, absl::FromCivil(absl::CivilDay(2026, 11, 16), berlin));
  EXPECT_EQ(PreviousPeriod(Frequency::kWeekly, w, berlin).label, "2026-W46");
  // ISO years: 2021-01-01 (a Friday) is in 2020-W53; 2024-12-30 in 2025-W01.
  EXPECT_EQ(PeriodContaining(Frequency::kWeekly, Utc(2021, 1, 1), berlin).label,
            "2020-W53");
  EXPECT_EQ(
      PeriodContaining(Frequency::kWeekly, Utc(2024, 12, 30, 12), berlin).label,
      "2025-W01");
  absl::StatusOr<Period> parsed =
      ParsePeriod(Frequency::kWeekly, "2020-W53", berlin);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->first_day, "2020-12-28");
  EXPECT_FALSE(ParsePeriod(Frequency::kWeekly, "2021-W53", berlin).ok());
  EXPECT_FALSE(ParsePeriod(Frequency::kWeekly, "2026-11", berlin).ok());

  Period m =
      LastCompletePeriod(Frequency::kMonthly, Utc(2026, 3, 1, 12), berlin);
  EXPECT_EQ(m.label, "2026-02");
  EXPECT_EQ(m.last_day, "2026-02-28");
  EXPECT_EQ(PreviousPeriod(Frequency::kMonthly, m, berlin).label, "2026-01");
  // Local midnight, not UTC: 23:30 UTC on Feb 28 is March 1 in Berlin.
  EXPECT_EQ(
      PeriodContaining(Frequency::kMonthly, Utc(2026, 2, 28, 23, 30), berlin)
          .label,
      "2026-03");
  EXPECT_EQ(MinuteLabel(Utc(2026, 11, 28, 14, 5)), "2026-11-28T14:05");
  EXPECT_EQ(UtcDayNumber(Utc(1970, 1, 2)), 1);
}

TEST(JobsConfigTest, ValidationNamesTheField) {
  auto report = [](const char* body) {
    return ReportFromApi(body, ReportSub()).status();
  };
  EXPECT_TRUE(report(R"({"site":"a.com","email":"x@y.z"})").ok());
  EXPECT_THAT(report(R"({"email":"not an email"})").message(),
              HasSubstr("email:"));
  EXPECT_THAT(report(R"({"email":"x@y.z","frequency":"daily"})").message(),
              HasSubstr("frequency:"));
  EXPECT_THAT(report(R"({"email":"x@y.z","emial":1})").message(),
              HasSubstr("emial: unknown field"));
  EXPECT_THAT(report("[]").message(), HasSubstr("body:"));

  auto alert = [](const char* body) {
    return AlertFromApi(body, AlertRule()).status();
  };
  EXPECT_TRUE(alert(R"({"metric":"visitors","condition":"above","threshold":5,)"
                    R"("webhook_url":"http://127.0.0.1:9/hook"})")
                  .ok());
  EXPECT_THAT(
      alert(R"({"metric":"bananas","threshold":1,"email":"a@b.c"})").message(),
      HasSubstr("metric:"));
  EXPECT_THAT(
      alert(R"({"metric":"events","threshold":1,"email":"a@b.c"})").message(),
      HasSubstr("event:"));
  EXPECT_THAT(alert(R"({"threshold":1,"webhook_url":"ftp://x"})").message(),
              HasSubstr("webhook_url:"));
  EXPECT_THAT(alert(R"({"threshold":1})").message(), HasSubstr("webhook_url:"));
  EXPECT_THAT(alert(R"({"email":"a@b.c"})").message(), HasSubstr("threshold:"));
  EXPECT_THAT(alert(R"({"threshold":1,"email":"a@b.c","cooldown_minutes":0})")
                  .message(),
              HasSubstr("cooldown_minutes:"));

  // Stored form round-trips.
  absl::StatusOr<AlertRule> a = AlertFromApi(
      R"({"name":"n","metric":"events","event":"Signup","condition":"spike",)"
      R"("threshold":50,"email":"a@b.c","cooldown_minutes":5})",
      AlertRule());
  ASSERT_TRUE(a.ok()) << a.status();
  ConfigDoc doc{7, kAlertKind, 3, AlertToDocJson(*a), 0};
  absl::StatusOr<AlertRule> back = AlertFromDoc(doc);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->event, "Signup");
  EXPECT_EQ(back->condition, AlertCondition::kSpike);
  EXPECT_EQ(back->cooldown_minutes, 5);
  EXPECT_EQ(back->id, 7);
}

TEST(JobsRenderTest, TextHtmlAndMime) {
  ReportData r;
  r.site = "example.com";
  r.period.label = "2026-W47";
  r.period.first_day = "2026-11-16";
  r.period.last_day = "2026-11-22";
  r.now = {10, 12, 30, 50, 75};
  r.change.visitors = 25;
  r.change.bounce_rate = -3;
  r.top_pages = {{"/<script>", 4}};
  std::string text = RenderReportText(r, "https://s/u?token=t");
  EXPECT_THAT(text, HasSubstr("Unique visitors: 10 (+25%)"));
  EXPECT_THAT(text, HasSubstr("Bounce rate: 50% (-3 pts)"));
  EXPECT_THAT(text, HasSubstr("Visit duration: 1m 15s"));
  EXPECT_THAT(text, HasSubstr("Unsubscribe: https://s/u?token=t"));
  std::string html = RenderReportHtml(r, "https://s/u?token=t");
  EXPECT_THAT(html, HasSubstr("/&lt;script&gt;"));
  EXPECT_FALSE(absl::StrContains(html, "<script>"));

  Mail mail{"from@x.y",    "to@x.y", "Weekly \xc3\xa9", "text", "<p>html</p>",
            "https://s/u", "id@x"};
  std::string mime = BuildMime(mail, Utc(2026, 11, 23));
  EXPECT_THAT(mime, HasSubstr("Subject: =?UTF-8?B?"));
  EXPECT_THAT(mime, HasSubstr("List-Unsubscribe: <https://s/u>"));
  EXPECT_THAT(mime, HasSubstr("Content-Type: text/plain; charset=utf-8"));
  EXPECT_THAT(mime, HasSubstr("Content-Type: text/html; charset=utf-8"));
  mail.to = "to@x.y\r\nBcc: evil@x.y";
  EXPECT_FALSE(
      absl::StrContains(BuildMime(mail, Utc(2026, 11, 23)), "\r\nBcc:"));
}

// An engine on a memory store with a fake clock, and Jobs around it.
class JobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.store_url = "memory://";
    o.clock = &clock_;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
    Site s;
    s.domain = "example.com";
    s.timezone = "Europe/Berlin";
    ASSERT_TRUE(engine_->AddSite(s).ok());
    JobsOptions jo;
    jo.clock = &clock_;
    // Port 9 (discard) on loopback: nothing listens, delivery fails fast.
    jo.smtp.url = "smtp://127.0.0.1:9";
    jo.retry_base = absl::Minutes(1);
    jo.max_attempts = 2;
    jo.public_url = "https://stats.example.com/";
    auto j = Jobs::Create(*engine_, jo);
    ASSERT_TRUE(j.ok()) << j.status();
    jobs_ = *std::move(j);
  }

  static rapidjson::Document Json(const std::string& s) {
    rapidjson::Document d;
    d.Parse(s.c_str());
    EXPECT_FALSE(d.HasParseError()) << s;
    return d;
  }

  FakeClock clock_{Utc(2026, 11, 28, 12)};
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Jobs> jobs_;
};

TEST_F(JobsTest, FailedDeliveryIsRecordedRetriedWithBackoffAndBounded) {
  absl::StatusOr<std::string> created = jobs_->CreateReport(
      R"({"site":"example.com","email":"owner@example.com"})");
  ASSERT_TRUE(created.ok()) << created.status();
  int64_t id = Json(*created)["id"].GetInt64();
  EXPECT_FALSE(absl::StrContains(*created, "token"));  // never shown

  const std::string name = absl::StrCat("report:", id);
  absl::StatusOr<std::string> run =
      jobs_->RunNow(name, R"({"period":"2026-W47"})");
  ASSERT_TRUE(run.ok()) << run.status();
  rapidjson::Document d = Json(*run);
  ASSERT_EQ(d["runs"].Size(), 1u);
  EXPECT_STREQ(d["runs"][0]["state"].GetString(), "failed");
  EXPECT_TRUE(d["runs"][0]["ran"].GetBool());
  EXPECT_THAT(d["runs"][0]["error"].GetString(), HasSubstr("smtp:"));

  // Within the backoff: not retried.
  run = jobs_->RunNow(name, R"({"period":"2026-W47"})");
  ASSERT_TRUE(run.ok());
  EXPECT_FALSE(Json(*run)["runs"][0]["ran"].GetBool());
  // After it: retried (attempt 2), fails again; max_attempts 2 ends it.
  clock_.Advance(absl::Minutes(2));
  ASSERT_TRUE(jobs_->Tick().ok() || true);
  absl::StatusOr<std::string> rows = jobs_->ListRuns(name, 0);
  ASSERT_TRUE(rows.ok());
  rapidjson::Document r = Json(*rows);
  ASSERT_GE(r.Size(), 1u);
  bool found = false;
  for (const auto& row : r.GetArray()) {
    if (std::string(row["period"].GetString()) != "2026-W47") continue;
    found = true;
    EXPECT_EQ(row["attempts"].GetInt(), 2);
    EXPECT_STREQ(row["state"].GetString(), "failed");
  }
  EXPECT_TRUE(found);
  clock_.Advance(absl::Hours(2));
  run = jobs_->RunNow(name, R"({"period":"2026-W47"})");
  ASSERT_TRUE(run.ok());
  EXPECT_FALSE(Json(*run)["runs"][0]["ran"].GetBool());
  EXPECT_EQ(Json(*run)["runs"][0]["attempts"].GetInt(), 2);

  std::string metrics = jobs_->RenderMetrics();
  EXPECT_THAT(metrics, HasSubstr("analytics_job_deliveries_total{channel="
                                 "\"email\",outcome=\"error\"}"));
  EXPECT_THAT(metrics,
              HasSubstr("analytics_job_retries_total{job=\"report\"}"));

  // A period that has not ended is refused; so is a malformed one.
  absl::StatusOr<std::string> early =
      jobs_->RunNow(name, R"({"period":"2026-W48"})");
  EXPECT_TRUE(absl::IsInvalidArgument(early.status()));
  EXPECT_THAT(early.status().message(), HasSubstr("period:"));
  EXPECT_TRUE(absl::IsInvalidArgument(
      jobs_->RunNow(name, R"({"period":"2026-13"})").status()));
  EXPECT_TRUE(absl::IsNotFound(jobs_->RunNow("bogus", "").status()));
}

TEST_F(JobsTest, ScheduledReportOnlyForPeriodsAfterSubscribing) {
  ASSERT_TRUE(jobs_
                  ->CreateReport(R"({"site":"example.com",)"
                                 R"("email":"owner@example.com"})")
                  .ok());
  ASSERT_TRUE(jobs_->Tick().ok() || true);
  absl::StatusOr<std::vector<JobRun>> rows =
      engine_->store()->ListJobRuns("", 0);
  ASSERT_TRUE(rows.ok());
  for (const JobRun& r : *rows) {
    EXPECT_FALSE(absl::StartsWith(r.job, "report:")) << r.period;
  }
  // Monday after: W48 ended after the subscription, so it is due.
  clock_.Set(Utc(2026, 11, 30, 9));
  (void)jobs_->Tick();
  rows = engine_->store()->ListJobRuns("", 0);
  ASSERT_TRUE(rows.ok());
  int reports = 0;
  for (const JobRun& r : *rows) {
    if (absl::StartsWith(r.job, "report:")) {
      ++reports;
      EXPECT_EQ(r.period, "2026-W48");
    }
  }
  EXPECT_EQ(reports, 1);
  // Three weeks without a leader: only the most recent period is caught up.
  clock_.Set(Utc(2026, 12, 23, 9));
  (void)jobs_->Tick();
  rows = engine_->store()->ListJobRuns("", 0);
  ASSERT_TRUE(rows.ok());
  std::vector<std::string> periods;
  for (const JobRun& r : *rows) {
    if (absl::StartsWith(r.job, "report:")) periods.push_back(r.period);
  }
  EXPECT_THAT(periods, ::testing::UnorderedElementsAre("2026-W48", "2026-W51"));
}

TEST_F(JobsTest, RetentionDeletesOldRawEventsAndRotationKeepsTwoSalts) {
  Site s = *engine_->FindSite("example.com");
  s.retention_days = 30;
  // Through the store: Engine::UpdateSite does not carry retention_days.
  ASSERT_TRUE(engine_->store()->UpdateSite(s).ok());
  EventInput e;
  e.site = "example.com";
  e.ip = "203.0.113.7";
  e.user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0";
  for (int days_ago : {60, 45, 1}) {
    e.url = absl::StrCat("https://example.com/p", days_ago);
    e.ts = clock_.Now() - absl::Hours(24 * days_ago);
    ASSERT_TRUE(engine_->Track(e).ok());
  }
  ASSERT_TRUE(engine_->Flush().ok());
  absl::StatusOr<std::string> run = jobs_->RunNow("retention", "");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_THAT(*run, HasSubstr("deleted 2 raw events"));
  int64_t left = 0;
  ASSERT_TRUE(engine_->store()
                  ->ScanEvents({s.id, 0, absl::ToUnixMillis(clock_.Now()) + 1},
                               [&](const Event&) {
                                 ++left;
                                 return true;
                               })
                  .ok());
  EXPECT_EQ(left, 1);
  // Rollups stay: the pageviews of 60 days ago are still counted.
  absl::StatusOr<std::string> q =
      engine_->Query(R"({"site_id":"example.com","metrics":["pageviews"],)"
                     R"("date_range":["2026-09-01","2026-11-27"]})");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(Json(*q)["results"][0]["metrics"][0].GetInt(), 3);

  const int64_t today = UtcDayNumber(clock_.Now());
  ASSERT_TRUE(engine_->store()->PutSaltIfAbsent(today - 5, "old").ok());
  run = jobs_->RunNow("salts", "");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_FALSE(engine_->store()->GetSalt(today - 5)->has_value());
  EXPECT_TRUE(engine_->store()->GetSalt(today)->has_value());
  EXPECT_TRUE(engine_->store()->GetSalt(today + 1)->has_value());
  // Once per day: a second run does nothing.
  run = jobs_->RunNow("salts", "");
  ASSERT_TRUE(run.ok());
  EXPECT_FALSE(Json(*run)["runs"][0]["ran"].GetBool());
}

TEST_F(JobsTest, UnsubscribeNeedsTheToken) {
  absl::StatusOr<std::string> created = jobs_->CreateReport(
      R"({"site":"example.com","email":"owner@example.com"})");
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(absl::IsNotFound(jobs_->Unsubscribe(std::string(64, '0'))));
  absl::StatusOr<std::vector<ConfigDoc>> docs =
      engine_->store()->ListConfigDocs(kReportKind, 0);
  ASSERT_TRUE(docs.ok());
  ASSERT_EQ(docs->size(), 1u);
  absl::StatusOr<ReportSub> sub = ReportFromDoc((*docs)[0]);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->token.size(), 64u);
  EXPECT_TRUE(jobs_->Unsubscribe(sub->token).ok());
  EXPECT_EQ(*jobs_->ListReports(""), "[]");
}

TEST_F(JobsTest, AlertConditionsThroughTheStatsApi) {
  Site site = *engine_->FindSite("example.com");
  EventInput e;
  e.site = "example.com";
  e.url = "https://example.com/";
  e.user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0";
  int ip = 1;
  auto visit = [&](absl::Time ts, const char* name = "pageview") {
    e.ip = absl::StrCat("198.51.100.", ip++);
    e.ts = ts;
    e.name = name;
    ASSERT_TRUE(engine_->Track(e).ok());
  };
  const absl::Time now = clock_.Now();
  // Baseline: 2 visitors in the same hour on each of the last 7 days.
  for (int d = 1; d <= 7; ++d) {
    visit(now - absl::Hours(24 * d) - absl::Minutes(10));
    visit(now - absl::Hours(24 * d) - absl::Minutes(20));
  }
  auto rule = [](const char* json) { return *AlertFromApi(json, AlertRule()); };
  AlertRule spike =
      rule(R"({"condition":"spike","threshold":50,"email":"a@b.c"})");
  AlertRule drop =
      rule(R"({"condition":"drop","threshold":50,"email":"a@b.c"})");
  absl::StatusOr<AlertEval> ev = EvaluateAlert(*engine_, site, drop, now);
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->value, 0);
  EXPECT_DOUBLE_EQ(ev->baseline, 2.0);
  EXPECT_TRUE(ev->fire);  // 0 < 2 x 50%
  EXPECT_FALSE(EvaluateAlert(*engine_, site, spike, now)->fire);
  for (int i = 0; i < 4; ++i) visit(now - absl::Minutes(5 + i));
  ev = EvaluateAlert(*engine_, site, spike, now);
  EXPECT_EQ(ev->value, 4);
  EXPECT_TRUE(ev->fire);  // 4 > 2 x 150%
  EXPECT_THAT(ev->message, HasSubstr("traffic spike"));
  EXPECT_FALSE(EvaluateAlert(*engine_, site, drop, now)->fire);
  // An event older than an hour does not count; errors are "error" events.
  visit(now - absl::Minutes(61), "error");
  visit(now - absl::Minutes(1), "error");
  AlertRule errors = rule(
      R"({"metric":"errors","condition":"above","threshold":0,"email":"a@b.c"})");
  ev = EvaluateAlert(*engine_, site, errors, now);
  EXPECT_EQ(ev->value, 1);
  EXPECT_TRUE(ev->fire);
  AlertRule below =
      rule(R"({"condition":"below","threshold":3,"email":"a@b.c"})");
  EXPECT_FALSE(EvaluateAlert(*engine_, site, below, now)->fire);  // 5 visitors
  EXPECT_EQ(WebhookBody("a \"b\""),
            R"({"text":"a \"b\"","content":"a \"b\""})");
}

// One "worker" of several sharing an engine and its store: its own holder
// name and leadership, everything else delegated. (The real multi-process
// case, with kill -9, is tests/jobs/cluster_jobs_test.py.)
class Worker : public Engine {
 public:
  Worker(Engine& e, std::string name, bool leader)
      : e_(e), name_(std::move(name)), leader_(leader) {}
  absl::StatusOr<TrackResult> Track(const EventInput& in) override {
    return e_.Track(in);
  }
  absl::StatusOr<BatchResult> TrackBatch(
      absl::Span<const EventInput> in) override {
    return e_.TrackBatch(in);
  }
  absl::StatusOr<std::string> Query(std::string_view q) override {
    return e_.Query(q);
  }
  absl::StatusOr<Site> AddSite(const Site& s) override { return e_.AddSite(s); }
  absl::StatusOr<std::vector<Site>> ListSites() override {
    return e_.ListSites();
  }
  absl::StatusOr<Site> FindSite(std::string_view d) override {
    return e_.FindSite(d);
  }
  absl::Status RemoveSite(std::string_view d) override {
    return e_.RemoveSite(d);
  }
  absl::StatusOr<Site> UpdateSite(const Site& s) override {
    return e_.UpdateSite(s);
  }
  absl::Status Heartbeat(const EventInput& in) override {
    return e_.Heartbeat(in);
  }
  absl::StatusOr<int64_t> LiveVisitors(std::string_view s,
                                       absl::Duration w) override {
    return e_.LiveVisitors(s, w);
  }
  absl::StatusOr<std::optional<std::string>> EnsureAdminToken() override {
    return e_.EnsureAdminToken();
  }
  absl::Status SetAdminToken(std::string_view t) override {
    return e_.SetAdminToken(t);
  }
  absl::StatusOr<std::pair<ApiKey, std::string>> CreateApiKey(
      std::string_view s, std::string_view n) override {
    return e_.CreateApiKey(s, n);
  }
  absl::StatusOr<std::vector<ApiKey>> ListApiKeys() override {
    return e_.ListApiKeys();
  }
  absl::Status RevokeApiKey(int64_t id) override { return e_.RevokeApiKey(id); }
  absl::StatusOr<Principal> Authenticate(std::string_view t) override {
    return e_.Authenticate(t);
  }
  absl::Status Flush() override { return e_.Flush(); }
  absl::Status Close() override { return absl::OkStatus(); }
  EngineStats Stats() override { return e_.Stats(); }
  Store* store() override { return e_.store(); }
  absl::Status Ready() override { return e_.Ready(); }
  bool IsLeader() override { return leader_; }
  std::string WorkerName() override { return name_; }
  Coordinator* coordinator() override { return nullptr; }

 private:
  Engine& e_;
  std::string name_;
  bool leader_;
};

TEST_F(JobsTest, ThreeWorkersOneRunAndTakeoverOfAStaleClaim) {
  absl::StatusOr<std::string> created = jobs_->CreateReport(
      R"({"site":"example.com","email":"owner@example.com"})");
  ASSERT_TRUE(created.ok());
  const int64_t id = Json(*created)["id"].GetInt64();
  const std::string job = absl::StrCat("report:", id);
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::unique_ptr<Jobs>> jobs;
  for (int i = 1; i <= 3; ++i) {
    workers.push_back(std::make_unique<Worker>(*engine_, absl::StrCat("w", i),
                                               /*leader=*/i == 2));
    JobsOptions o;
    o.clock = &clock_;
    o.smtp.url = "smtp://127.0.0.1:9";
    o.stale_after = absl::Seconds(15);
    o.pause_after_claim = absl::Milliseconds(50);
    jobs.push_back(*Jobs::Create(*workers.back(), o));
  }
  // The same (job, site, period) on three workers at once: one runs it.
  std::vector<std::string> out(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::string> r =
          jobs[i]->RunNow(job, R"({"period":"2026-W46"})");
      out[i] = r.ok() ? *r : r.status().ToString();
    });
  }
  for (std::thread& t : threads) t.join();
  int ran = 0;
  for (const std::string& o : out) {
    rapidjson::Document d = Json(o);
    ASSERT_TRUE(d.IsObject() && d.HasMember("runs")) << o;
    ran += d["runs"][0]["ran"].GetBool();
  }
  EXPECT_EQ(ran, 1);

  // A claim left by a dead worker: not taken while fresh, taken over by the
  // leader's tick once older than the lease; non-leaders never tick.
  JobRun dead;
  dead.job = job;
  dead.site_id = engine_->FindSite("example.com")->id;
  dead.period = "2026-W45";
  dead.holder = "dead-worker";
  dead.updated_ms = absl::ToUnixMillis(clock_.Now());
  ASSERT_TRUE(engine_->store()->ClaimJobRun(dead, 0).ok());
  ASSERT_TRUE(jobs[1]->Tick().ok() || true);
  auto row = [&]() -> JobRun {
    absl::StatusOr<std::vector<JobRun>> rows =
        engine_->store()->ListJobRuns(job, 0);
    EXPECT_TRUE(rows.ok());
    for (const JobRun& r : *rows) {
      if (r.period == "2026-W45") return r;
    }
    return {};
  };
  EXPECT_EQ(row().holder, "dead-worker");
  clock_.Advance(absl::Seconds(16));
  (void)jobs[0]->Tick();  // not the leader: does nothing
  EXPECT_EQ(row().holder, "dead-worker");
  (void)jobs[1]->Tick();
  EXPECT_EQ(row().holder, "w2");
  EXPECT_EQ(row().attempts, 2);
  EXPECT_EQ(row().state, "failed");  // nothing listens on port 9
}

}  // namespace
}  // namespace analytics::jobs
