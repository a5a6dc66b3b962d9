// The scheduler, the ledger protocol and the management API; see jobs.h.
#include "libanalytics/jobs/jobs.h"

#include <algorithm>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/enrich/visitor_id.h"
#include "libanalytics/jobs/alerts.h"
#include "libanalytics/jobs/config.h"
#include "libanalytics/jobs/ledger.h"
#include "libanalytics/jobs/periods.h"
#include "libanalytics/jobs/report.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace analytics::jobs {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

using Outcome = RunOutcome;

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

std::string NewToken() {
  return absl::BytesToHexString(AV(NewSalt() + NewSalt()));
}

void WriteRun(Writer& w, const Outcome& o, std::string_view site) {
  const JobRun& r = o.row;
  w.StartObject();
  w.Key("job");
  w.String(r.job.c_str());
  w.Key("site_id");
  w.Int64(r.site_id);
  if (!site.empty()) {
    w.Key("site");
    w.String(site.data(), site.size());
  }
  w.Key("period");
  w.String(r.period.c_str());
  w.Key("state");
  w.String(r.state.c_str());
  w.Key("holder");
  w.String(r.holder.c_str());
  w.Key("attempts");
  w.Int(r.attempts);
  w.Key("updated_ms");
  w.Int64(r.updated_ms);
  w.Key("error");
  w.String(r.error.c_str());
  w.Key("ran");
  w.Bool(o.ran);
  if (!o.note.empty()) {
    w.Key("note");
    w.String(o.note.c_str());
  }
  w.EndObject();
}

absl::StatusOr<int64_t> IdAfter(std::string_view name,
                                std::string_view prefix) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(AV(name.substr(prefix.size())), &id) || id <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: want ", AV(prefix), "ID with a positive ID"));
  }
  return id;
}

class JobsImpl : public Jobs {
 public:
  JobsImpl(Engine& engine, JobsOptions options)
      : engine_(engine),
        store_(*engine.store()),
        options_(std::move(options)),
        clock_(options_.clock ? options_.clock : RealClock()),
        ledger_(
            store_, clock_, [&engine] { return engine.WorkerName(); },
            LedgerOptions{options_.stale_after, options_.retry_base,
                          options_.max_attempts, options_.pause_after_claim},
            &metrics_) {
    while (!options_.public_url.empty() && options_.public_url.back() == '/') {
      options_.public_url.pop_back();
    }
  }
  ~JobsImpl() override { Stop(); }

  // ------------------------------------------------------- scheduler --
  void Start() override {
    absl::MutexLock l(&thread_mu_);
    if (thread_.joinable()) return;
    stop_ = false;
    thread_ = std::thread([this] { Loop(); });
  }

  void Stop() override {
    {
      absl::MutexLock l(&thread_mu_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Tick() override {
    const bool leader = engine_.IsLeader();
    metrics_.SetLeader(leader);
    if (!leader) return absl::OkStatus();
    absl::StatusOr<std::map<int64_t, Site>> sites = Sites();
    if (!sites.ok()) return sites.status();
    const absl::Time now = clock_->Now();
    absl::Status first = absl::OkStatus();
    auto note = [&](const absl::Status& s) {
      if (!s.ok() && first.ok()) first = s;
    };
    // Reports: the most recent complete period of each subscription that
    // ended after it was created (a subscriber never gets a report for a
    // period before they subscribed; a period missed while no leader ran is
    // caught up here).
    absl::StatusOr<std::vector<ConfigDoc>> docs =
        store_.ListConfigDocs(kReportKind, 0);
    note(docs.status());
    if (docs.ok()) {
      for (const ConfigDoc& doc : *docs) {
        absl::StatusOr<ReportSub> sub = ReportFromDoc(doc);
        auto site = sites->find(doc.site_id);
        if (!sub.ok() || !sub->enabled || site == sites->end()) continue;
        Period p = LastCompletePeriod(sub->frequency, now, Tz(site->second));
        if (absl::ToUnixMillis(p.to) <= sub->created_ms) continue;
        note(RunReport(*sub, site->second, p).status());
      }
    }
    // Alerts.
    absl::StatusOr<std::vector<ConfigDoc>> alerts =
        store_.ListConfigDocs(kAlertKind, 0);
    note(alerts.status());
    if (alerts.ok()) {
      for (const ConfigDoc& doc : *alerts) {
        absl::StatusOr<AlertRule> rule = AlertFromDoc(doc);
        auto site = sites->find(doc.site_id);
        if (!rule.ok() || !rule->enabled || site == sites->end()) continue;
        note(RunAlert(*rule, site->second, now).status());
      }
    }
    // Housekeeping, once per UTC day.
    for (const auto& [id, site] : *sites) {
      if (site.retention_days > 0) {
        note(RunRetention(site, DayLabel(now)).status());
      }
    }
    note(RunSalts(now).status());
    note(RetryStale(*sites, now));
    return first;
  }

  // -------------------------------------------------- management API --
  absl::StatusOr<std::string> CreateReport(std::string_view body) override {
    absl::StatusOr<Site> site = SiteOfBody(body);
    if (!site.ok()) return site.status();
    ReportSub base;
    absl::StatusOr<ReportSub> sub = ReportFromApi(body, base);
    if (!sub.ok()) return sub.status();
    if (sub->email.empty()) {
      return absl::InvalidArgumentError("email: required");
    }
    sub->site_id = site->id;
    sub->token = NewToken();
    sub->created_ms = absl::ToUnixMillis(clock_->Now());
    ConfigDoc doc;
    doc.kind = kReportKind;
    doc.site_id = site->id;
    doc.json = ReportToDocJson(*sub);
    absl::StatusOr<ConfigDoc> added = store_.AddConfigDoc(doc);
    if (!added.ok()) return added.status();
    sub->id = added->id;
    return ReportToApiJson(*sub, site->domain);
  }

  absl::StatusOr<std::string> ListReports(std::string_view site) override {
    return ListDocs(
        kReportKind, site,
        [](const ConfigDoc& d,
           const std::string& domain) -> absl::StatusOr<std::string> {
          absl::StatusOr<ReportSub> r = ReportFromDoc(d);
          if (!r.ok()) return r.status();
          return ReportToApiJson(*r, domain);
        });
  }

  absl::StatusOr<std::string> UpdateReport(int64_t id,
                                           std::string_view body) override {
    absl::StatusOr<ConfigDoc> doc = FindDoc(kReportKind, id);
    if (!doc.ok()) return doc.status();
    absl::StatusOr<ReportSub> old = ReportFromDoc(*doc);
    if (!old.ok()) return old.status();
    absl::StatusOr<ReportSub> sub = ReportFromApi(body, *old);
    if (!sub.ok()) return sub.status();
    doc->json = ReportToDocJson(*sub);
    doc->updated_ms = 0;
    if (absl::Status s = store_.UpdateConfigDoc(*doc); !s.ok()) return s;
    return ReportToApiJson(*sub, DomainOf(doc->site_id));
  }

  absl::Status DeleteReport(int64_t id) override {
    absl::StatusOr<ConfigDoc> doc = FindDoc(kReportKind, id);
    if (!doc.ok()) return doc.status();
    return store_.DeleteConfigDoc(id);
  }

  absl::StatusOr<std::string> CreateAlert(std::string_view body) override {
    absl::StatusOr<Site> site = SiteOfBody(body);
    if (!site.ok()) return site.status();
    absl::StatusOr<AlertRule> rule = AlertFromApi(body, AlertRule());
    if (!rule.ok()) return rule.status();
    rule->site_id = site->id;
    rule->created_ms = absl::ToUnixMillis(clock_->Now());
    ConfigDoc doc;
    doc.kind = kAlertKind;
    doc.site_id = site->id;
    doc.json = AlertToDocJson(*rule);
    absl::StatusOr<ConfigDoc> added = store_.AddConfigDoc(doc);
    if (!added.ok()) return added.status();
    rule->id = added->id;
    return AlertToApiJson(*rule, site->domain);
  }

  absl::StatusOr<std::string> ListAlerts(std::string_view site) override {
    return ListDocs(
        kAlertKind, site,
        [](const ConfigDoc& d,
           const std::string& domain) -> absl::StatusOr<std::string> {
          absl::StatusOr<AlertRule> a = AlertFromDoc(d);
          if (!a.ok()) return a.status();
          return AlertToApiJson(*a, domain);
        });
  }

  absl::StatusOr<std::string> UpdateAlert(int64_t id,
                                          std::string_view body) override {
    absl::StatusOr<ConfigDoc> doc = FindDoc(kAlertKind, id);
    if (!doc.ok()) return doc.status();
    absl::StatusOr<AlertRule> old = AlertFromDoc(*doc);
    if (!old.ok()) return old.status();
    absl::StatusOr<AlertRule> rule = AlertFromApi(body, *old);
    if (!rule.ok()) return rule.status();
    doc->json = AlertToDocJson(*rule);
    doc->updated_ms = 0;
    if (absl::Status s = store_.UpdateConfigDoc(*doc); !s.ok()) return s;
    return AlertToApiJson(*rule, DomainOf(doc->site_id));
  }

  absl::Status DeleteAlert(int64_t id) override {
    absl::StatusOr<ConfigDoc> doc = FindDoc(kAlertKind, id);
    if (!doc.ok()) return doc.status();
    return store_.DeleteConfigDoc(id);
  }

  absl::StatusOr<std::string> ListRuns(std::string_view job,
                                       int64_t limit) override {
    absl::StatusOr<std::vector<JobRun>> rows = store_.ListJobRuns(job, limit);
    if (!rows.ok()) return rows.status();
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartArray();
    for (const JobRun& r : *rows) {
      Outcome o{r, false, ""};
      WriteRun(w, o, r.site_id ? DomainOf(r.site_id) : "");
    }
    w.EndArray();
    return std::string(buf.GetString());
  }

  absl::StatusOr<std::string> RunNow(std::string_view name,
                                     std::string_view body) override {
    std::string period;
    std::string_view b = SV(absl::StripAsciiWhitespace(AV(body)));
    if (!b.empty()) {
      rapidjson::Document doc;
      doc.Parse(b.data(), b.size());
      if (doc.HasParseError() || !doc.IsObject()) {
        return absl::InvalidArgumentError("body: want a JSON object");
      }
      for (const auto& m : doc.GetObject()) {
        if (std::string_view(m.name.GetString()) != "period") {
          return absl::InvalidArgumentError(
              absl::StrCat(m.name.GetString(), ": unknown field"));
        }
        if (!m.value.IsString()) {
          return absl::InvalidArgumentError("period: want a string");
        }
        period = m.value.GetString();
      }
    }
    absl::StatusOr<std::map<int64_t, Site>> sites = Sites();
    if (!sites.ok()) return sites.status();
    const absl::Time now = clock_->Now();
    std::vector<absl::StatusOr<Outcome>> outcomes;

    auto report = [&](const ReportSub& sub, bool strict) -> absl::Status {
      auto site = sites->find(sub.site_id);
      if (site == sites->end()) {
        return absl::NotFoundError("site: the subscription's site is gone");
      }
      absl::TimeZone tz = Tz(site->second);
      Period p = LastCompletePeriod(sub.frequency, now, tz);
      if (!period.empty()) {
        absl::StatusOr<Period> parsed = ParsePeriod(sub.frequency, period, tz);
        if (!parsed.ok()) {
          if (strict) return parsed.status();
          return absl::OkStatus();  // "reports": other frequency
        }
        if (parsed->to > now) {
          return absl::InvalidArgumentError(
              absl::StrCat("period: ", period,
                           " has not ended yet (a report is sent "
                           "once per period, after it ends)"));
        }
        p = *parsed;
      }
      outcomes.push_back(RunReport(sub, site->second, p));
      return absl::OkStatus();
    };
    auto alert = [&](const AlertRule& rule) {
      auto site = sites->find(rule.site_id);
      if (site == sites->end()) return;
      outcomes.push_back(RunAlert(rule, site->second, now));
    };

    if (name == "reports" || name == "alerts") {
      const bool reports = name == "reports";
      absl::StatusOr<std::vector<ConfigDoc>> docs =
          store_.ListConfigDocs(reports ? kReportKind : kAlertKind, 0);
      if (!docs.ok()) return docs.status();
      for (const ConfigDoc& d : *docs) {
        if (reports) {
          absl::StatusOr<ReportSub> sub = ReportFromDoc(d);
          if (!sub.ok() || !sub->enabled) continue;
          if (absl::Status s = report(*sub, false); !s.ok()) return s;
        } else {
          absl::StatusOr<AlertRule> rule = AlertFromDoc(d);
          if (rule.ok() && rule->enabled) alert(*rule);
        }
      }
    } else if (absl::StartsWith(AV(name), "report:")) {
      absl::StatusOr<int64_t> id = IdAfter(name, "report:");
      if (!id.ok()) return id.status();
      absl::StatusOr<ConfigDoc> d = FindDoc(kReportKind, *id);
      if (!d.ok()) return d.status();
      absl::StatusOr<ReportSub> sub = ReportFromDoc(*d);
      if (!sub.ok()) return sub.status();
      if (absl::Status s = report(*sub, true); !s.ok()) return s;
    } else if (absl::StartsWith(AV(name), "alert:")) {
      absl::StatusOr<int64_t> id = IdAfter(name, "alert:");
      if (!id.ok()) return id.status();
      absl::StatusOr<ConfigDoc> d = FindDoc(kAlertKind, *id);
      if (!d.ok()) return d.status();
      absl::StatusOr<AlertRule> rule = AlertFromDoc(*d);
      if (!rule.ok()) return rule.status();
      alert(*rule);
    } else if (name == "retention" || name == "salts") {
      std::string day = DayLabel(now);
      if (!period.empty()) {
        absl::CivilDay d;
        if (period.size() != 10 || !absl::ParseCivilTime(AV(period), &d)) {
          return absl::InvalidArgumentError(
              "period: want a UTC day like 2026-11-28");
        }
        day = period;
      }
      if (name == "salts") {
        absl::CivilDay d;
        (void)absl::ParseCivilTime(AV(day), &d);
        outcomes.push_back(RunSalts(absl::FromCivil(d, absl::UTCTimeZone())));
      } else {
        for (const auto& [id, site] : *sites) {
          if (site.retention_days > 0) {
            outcomes.push_back(RunRetention(site, day));
          }
        }
      }
    } else {
      return absl::NotFoundError(absl::StrCat(
          "name: unknown job '", AV(name.substr(0, 64)),
          "' (want reports, report:ID, alerts, alert:ID, retention, salts)"));
    }

    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("runs");
    w.StartArray();
    for (const absl::StatusOr<Outcome>& o : outcomes) {
      if (!o.ok()) return o.status();
      WriteRun(w, *o, o->row.site_id ? DomainOf(o->row.site_id) : "");
    }
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString());
  }

  absl::StatusOr<std::string> EraseSite(std::string_view domain) override {
    absl::StatusOr<Site> site = engine_.FindSite(domain);
    if (!site.ok()) return site.status();
    // Pending deltas first, or they would re-add counts after the erase.
    if (absl::Status s = engine_.Flush(); !s.ok()) return s;
    if (absl::Status s = store_.EraseSiteData(site->id); !s.ok()) return s;
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("erased");
    w.Bool(true);
    w.Key("site");
    w.String(site->domain.c_str());
    w.EndObject();
    return std::string(buf.GetString());
  }

  absl::Status Unsubscribe(std::string_view token) override {
    if (token.size() < 32 || token.size() > 128) {
      return absl::NotFoundError("token: unknown or already used");
    }
    absl::StatusOr<std::vector<ConfigDoc>> docs =
        store_.ListConfigDocs(kReportKind, 0);
    if (!docs.ok()) return docs.status();
    for (const ConfigDoc& d : *docs) {
      absl::StatusOr<ReportSub> sub = ReportFromDoc(d);
      if (sub.ok() && ConstantTimeEquals(sub->token, token)) {
        return store_.DeleteConfigDoc(d.id);
      }
    }
    return absl::NotFoundError("token: unknown or already used");
  }

  std::string RenderMetrics() override { return metrics_.Render(); }

 private:
  // ------------------------------------------------------------ jobs --
  absl::StatusOr<Outcome> RunReport(const ReportSub& sub, const Site& site,
                                    const Period& p) {
    std::string mime;
    auto prepare = [&]() -> absl::Status {
      absl::StatusOr<ReportData> data =
          ComputeReport(engine_, site, sub.frequency, p);
      if (!data.ok()) return data.status();
      const std::string unsub = UnsubscribeUrl(sub.token);
      Mail mail;
      mail.from = options_.smtp.from;
      mail.to = sub.email;
      mail.subject = ReportSubject(*data);
      mail.text = RenderReportText(*data, unsub);
      mail.html = RenderReportHtml(*data, unsub);
      mail.list_unsubscribe = unsub;
      mail.message_id =
          absl::StrCat("report-", sub.id, "-", p.label, "@analytics");
      mime = BuildMime(mail, clock_->Now());
      return absl::OkStatus();
    };
    auto send = [&](std::string* note) -> absl::Status {
      absl::Status sent =
          Deliver("email", SendMail(options_.smtp, sub.email, mime));
      if (sent.ok()) *note = absl::StrCat("sent to ", sub.email);
      return sent;
    };
    return ledger_.Execute(absl::StrCat("report:", sub.id), site.id, p.label,
                           send, prepare);
  }

  // Evaluates the rule; when it fires and its cool-down has passed, claims
  // (alert:ID, site, UTC minute) and delivers.
  absl::StatusOr<Outcome> RunAlert(const AlertRule& rule, const Site& site,
                                   absl::Time now) {
    const std::string job = absl::StrCat("alert:", rule.id);
    Outcome quiet;
    quiet.row = JobRun{job, site.id, MinuteLabel(now), "idle"};
    absl::StatusOr<std::vector<JobRun>> last = store_.ListJobRuns(job, 1);
    if (!last.ok()) return last.status();
    const int64_t now_ms = absl::ToUnixMillis(now);
    // Any recent row counts, a failed one too (RetryStale retries it).
    if (!last->empty() &&
        (*last)[0].updated_ms > now_ms - rule.cooldown_minutes * 60000) {
      quiet.row = (*last)[0];
      quiet.note = "cool-down";
      return quiet;
    }
    absl::StatusOr<AlertEval> eval = EvaluateAlert(engine_, site, rule, now);
    if (!eval.ok()) return eval.status();
    if (!eval->fire) {
      quiet.note = absl::StrCat("not firing: ", eval->message);
      return quiet;
    }
    return SendAlert(rule, site, MinuteLabel(now), eval->message);
  }

  absl::StatusOr<Outcome> SendAlert(const AlertRule& rule, const Site& site,
                                    const std::string& period,
                                    const std::string& message) {
    return ledger_.Execute(
        absl::StrCat("alert:", rule.id), site.id, period,
        [&](std::string* note) -> absl::Status {
          *note = message;
          absl::Status result = absl::OkStatus();
          if (!rule.webhook_url.empty()) {
            result.Update(Deliver(
                "webhook", PostWebhook(rule.webhook_url, WebhookBody(message),
                                       options_.webhook_timeout)));
          }
          if (!rule.email.empty()) {
            Mail mail;
            mail.from = options_.smtp.from;
            mail.to = rule.email;
            mail.subject = message;
            mail.text = absl::StrCat(message, "\n");
            mail.html = absl::StrCat("<p>", HtmlEscape(message), "</p>\n");
            mail.message_id =
                absl::StrCat("alert-", rule.id, "-", period, "@analytics");
            result.Update(
                Deliver("email", SendMail(options_.smtp, rule.email,
                                          BuildMime(mail, clock_->Now()))));
          }
          return result;
        });
  }

  absl::StatusOr<Outcome> RunRetention(const Site& site,
                                       const std::string& day) {
    return ledger_.Execute(
        "retention", site.id, day, [&](std::string* note) -> absl::Status {
          const int64_t before = absl::ToUnixMillis(clock_->Now()) -
                                 int64_t{site.retention_days} * 86400000;
          absl::StatusOr<int64_t> n =
              store_.DeleteEventsBefore(site.id, before);
          if (!n.ok()) return n.status();
          metrics_.RetentionDeleted(*n);
          *note = absl::StrCat("deleted ", *n, " raw events");
          return absl::OkStatus();
        });
  }

  // At UTC midnight of day D: D's salt exists, D+1's is pre-created (so the
  // next midnight needs no write on the hot path), salts before D-1 (which
  // the engine still needs for visitors that straddle midnight) are dropped.
  absl::StatusOr<Outcome> RunSalts(absl::Time now) {
    return ledger_.Execute(
        "salts", 0, DayLabel(now), [&](std::string* note) -> absl::Status {
          const int64_t day = UtcDayNumber(now);
          for (int64_t d : {day, day + 1}) {
            absl::StatusOr<std::string> s =
                store_.PutSaltIfAbsent(d, NewSalt());
            if (!s.ok()) return s.status();
            if (Coordinator* c = engine_.coordinator(); c != nullptr) {
              absl::StatusOr<std::string> cs =
                  c->SaltIfAbsent(d, NewSalt(), absl::Hours(72));
              if (!cs.ok()) return cs.status();
            }
          }
          if (absl::Status s = store_.DeleteSaltsBefore(day - 1); !s.ok()) {
            return s;
          }
          *note = absl::StrCat("salts kept for days ", day - 1, "..", day + 1);
          return absl::OkStatus();
        });
  }

  // Rows left "claimed" by a dead worker or "failed" by a delivery error:
  // taken over once stale (or past their backoff), up to max_attempts.
  absl::Status RetryStale(const std::map<int64_t, Site>& sites,
                          absl::Time now) {
    absl::StatusOr<std::vector<JobRun>> rows = store_.ListJobRuns("", 500);
    if (!rows.ok()) return rows.status();
    const int64_t now_ms = absl::ToUnixMillis(now);
    absl::Status first = absl::OkStatus();
    for (const JobRun& r : *rows) {
      if (!ledger_.DueForRetry(r, now_ms)) continue;
      auto site = sites.find(r.site_id);
      absl::Status s = absl::OkStatus();
      if (absl::StartsWith(r.job, "report:")) {
        absl::StatusOr<int64_t> id = IdAfter(r.job, "report:");
        absl::StatusOr<ConfigDoc> d =
            id.ok() ? FindDoc(kReportKind, *id) : id.status();
        absl::StatusOr<ReportSub> sub = d.ok() ? ReportFromDoc(*d) : d.status();
        if (!sub.ok() || site == sites.end()) continue;  // deleted since
        absl::StatusOr<Period> p =
            ParsePeriod(sub->frequency, r.period, Tz(site->second));
        if (!p.ok()) continue;
        s = RunReport(*sub, site->second, *p).status();
      } else if (absl::StartsWith(r.job, "alert:")) {
        absl::StatusOr<int64_t> id = IdAfter(r.job, "alert:");
        absl::StatusOr<ConfigDoc> d =
            id.ok() ? FindDoc(kAlertKind, *id) : id.status();
        absl::StatusOr<AlertRule> rule = d.ok() ? AlertFromDoc(*d) : d.status();
        if (!rule.ok() || site == sites.end()) continue;
        // Re-evaluated now: a condition that cleared meanwhile is not sent.
        absl::StatusOr<AlertEval> eval =
            EvaluateAlert(engine_, site->second, *rule, now);
        if (!eval.ok()) {
          s = eval.status();
        } else if (eval->fire) {
          s = SendAlert(*rule, site->second, r.period, eval->message).status();
        }
      } else if (r.job == "retention" && site != sites.end()) {
        s = RunRetention(site->second, r.period).status();
      } else if (r.job == "salts") {
        absl::CivilDay d;
        if (absl::ParseCivilTime(AV(r.period), &d)) {
          s = RunSalts(absl::FromCivil(d, absl::UTCTimeZone())).status();
        }
      }
      if (!s.ok() && first.ok()) first = s;
    }
    return first;
  }

  // --------------------------------------------------------- helpers --
  absl::Status Deliver(const char* channel, absl::Status s) {
    return metrics_.Delivery(channel, std::move(s));
  }

  std::string UnsubscribeUrl(const std::string& token) const {
    return absl::StrCat(options_.public_url,
                        "/api/v1/reports/unsubscribe?token=", token);
  }

  static absl::TimeZone Tz(const Site& site) {
    absl::TimeZone tz;
    if (!absl::LoadTimeZone(site.timezone, &tz)) tz = absl::UTCTimeZone();
    return tz;
  }

  absl::StatusOr<std::map<int64_t, Site>> Sites() {
    absl::StatusOr<std::vector<Site>> list = engine_.ListSites();
    if (!list.ok()) return list.status();
    std::map<int64_t, Site> out;
    for (Site& s : *list) out.emplace(s.id, std::move(s));
    return out;
  }

  std::string DomainOf(int64_t site_id) {
    absl::StatusOr<std::map<int64_t, Site>> sites = Sites();
    if (!sites.ok()) return "";
    auto it = sites->find(site_id);
    return it == sites->end() ? "" : it->second.domain;
  }

  absl::StatusOr<Site> SiteOfBody(std::string_view body) {
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      return absl::InvalidArgumentError("body: want a JSON object");
    }
    auto it = doc.FindMember("site");
    if (it == doc.MemberEnd() || !it->value.IsString() ||
        it->value.GetStringLength() == 0) {
      return absl::InvalidArgumentError("site: want the site's domain");
    }
    absl::StatusOr<Site> site = engine_.FindSite(it->value.GetString());
    if (absl::IsNotFound(site.status())) {
      return absl::InvalidArgumentError("site: no such site");
    }
    return site;
  }

  absl::StatusOr<ConfigDoc> FindDoc(const char* kind, int64_t id) {
    absl::StatusOr<std::vector<ConfigDoc>> docs =
        store_.ListConfigDocs(kind, 0);
    if (!docs.ok()) return docs.status();
    for (ConfigDoc& d : *docs) {
      if (d.id == id) return std::move(d);
    }
    return absl::NotFoundError(absl::StrCat("id: no ", kind, " with id ", id));
  }

  absl::StatusOr<std::string> ListDocs(
      const char* kind, std::string_view site,
      const std::function<absl::StatusOr<std::string>(
          const ConfigDoc&, const std::string&)>& render) {
    int64_t site_id = 0;
    if (!site.empty()) {
      absl::StatusOr<Site> s = engine_.FindSite(site);
      if (!s.ok()) return s.status();
      site_id = s->id;
    }
    absl::StatusOr<std::map<int64_t, Site>> sites = Sites();
    if (!sites.ok()) return sites.status();
    absl::StatusOr<std::vector<ConfigDoc>> docs =
        store_.ListConfigDocs(kind, site_id);
    if (!docs.ok()) return docs.status();
    std::string out = "[";
    bool first = true;
    for (const ConfigDoc& d : *docs) {
      auto it = sites->find(d.site_id);
      absl::StatusOr<std::string> one =
          render(d, it == sites->end() ? std::string() : it->second.domain);
      if (!one.ok()) continue;  // not ours (written by hand): leave it out
      absl::StrAppend(&out, first ? "" : ",", *one);
      first = false;
    }
    out += "]";
    return out;
  }

  void Loop() {
    while (true) {
      absl::Status s = Tick();
      (void)s;  // failures stay visible in the ledger and the metrics
      absl::MutexLock l(&thread_mu_);
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(thread_mu_) {
        return stop_;
      };
      thread_mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.tick);
      if (stop_) return;
    }
  }

  Engine& engine_;
  Store& store_;
  JobsOptions options_;
  Clock* clock_;

  absl::Mutex thread_mu_;
  bool stop_ ABSL_GUARDED_BY(thread_mu_) = false;
  std::thread thread_;

  JobMetrics metrics_;
  Ledger ledger_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Jobs>> Jobs::Create(Engine& engine,
                                                   JobsOptions options) {
  if (engine.store() == nullptr) {
    return absl::FailedPreconditionError("jobs: the engine has no store");
  }
  if (!options.smtp.password.empty() && !options.smtp.starttls &&
      !absl::StartsWith(options.smtp.url, "smtps://")) {
    return absl::InvalidArgumentError(
        "smtp: a password is only sent over TLS: use smtps:// or STARTTLS");
  }
  if (!options.smtp.url.empty() &&
      !absl::StartsWith(options.smtp.url, "smtp://") &&
      !absl::StartsWith(options.smtp.url, "smtps://")) {
    return absl::InvalidArgumentError("smtp: want an smtp:// or smtps:// URL");
  }
  if (options.tick <= absl::ZeroDuration() || options.max_attempts < 1) {
    return absl::InvalidArgumentError(
        "jobs: tick and max_attempts must be > 0");
  }
  return std::make_unique<JobsImpl>(engine, std::move(options));
}

}  // namespace analytics::jobs
