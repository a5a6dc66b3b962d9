// Tests of the jobs module that need no network peer: periods, validation,
// rendering, the ledger protocol (a second run sends nothing, a failed
// delivery is retried after its backoff), retention and salt rotation. The
// SMTP and webhook deliveries are tested against real servers in
// tests/jobs/jobs_test.py.
#include "libanalytics/jobs/jobs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

TEST(PeriodsTest, IsoWeeksAndMonths) {
  absl::TimeZone berlin;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &berlin));
  // Saturday 2026-11-28: the last complete week is 2026-W47 (Nov 16-22).
  Period w = LastCompletePeriod(Frequency::kWeekly, Utc(2026, 11, 28, 12),
                                berlin);
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

  Period m = LastCompletePeriod(Frequency::kMonthly, Utc(2026, 3, 1, 12),
                                berlin);
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

TEST(ConfigTest, ValidationNamesTheField) {
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
  EXPECT_TRUE(
      alert(R"({"metric":"visitors","condition":"above","threshold":5,)"
            R"("webhook_url":"http://127.0.0.1:9/hook"})")
          .ok());
  EXPECT_THAT(alert(R"({"metric":"bananas","threshold":1,"email":"a@b.c"})")
                  .message(),
              HasSubstr("metric:"));
  EXPECT_THAT(alert(R"({"metric":"events","threshold":1,"email":"a@b.c"})")
                  .message(),
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

TEST(RenderTest, TextHtmlAndMime) {
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

  Mail mail{"from@x.y", "to@x.y", "Weekly \xc3\xa9", "text", "<p>html</p>",
            "https://s/u", "id@x"};
  std::string mime = BuildMime(mail, Utc(2026, 11, 23));
  EXPECT_THAT(mime, HasSubstr("Subject: =?UTF-8?B?"));
  EXPECT_THAT(mime, HasSubstr("List-Unsubscribe: <https://s/u>"));
  EXPECT_THAT(mime, HasSubstr("Content-Type: text/plain; charset=utf-8"));
  EXPECT_THAT(mime, HasSubstr("Content-Type: text/html; charset=utf-8"));
  mail.to = "to@x.y\r\nBcc: evil@x.y";
  EXPECT_FALSE(absl::StrContains(BuildMime(mail, Utc(2026, 11, 23)),
                                 "\r\nBcc:"));
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
  EXPECT_THAT(metrics, HasSubstr("analytics_job_retries_total{job=\"report\"}"));

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
  absl::StatusOr<std::string> q = engine_->Query(
      R"({"site_id":"example.com","metrics":["pageviews"],)"
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

}  // namespace
}  // namespace analytics::jobs
