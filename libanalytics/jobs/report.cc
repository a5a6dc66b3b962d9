// Report figures through Engine::Query and their rendering; see report.h.
#include "libanalytics/jobs/report.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libanalytics/core/strings.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace analytics::jobs {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::string QueryJson(const std::string& site, const Period& p,
                      const std::vector<std::string>& metrics,
                      const std::string& dimension, int limit) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("site_id");
  w.String(site.c_str());
  w.Key("metrics");
  w.StartArray();
  for (const std::string& m : metrics) w.String(m.c_str());
  w.EndArray();
  w.Key("date_range");
  w.StartArray();
  w.String(p.first_day.c_str());
  w.String(p.last_day.c_str());
  w.EndArray();
  if (!dimension.empty()) {
    w.Key("dimensions");
    w.StartArray();
    w.String(dimension.c_str());
    w.EndArray();
    w.Key("order_by");
    w.StartArray();
    w.StartArray();
    w.String("visitors");
    w.String("desc");
    w.EndArray();
    w.EndArray();
    w.Key("pagination");
    w.StartObject();
    w.Key("limit");
    w.Int(limit);
    w.EndObject();
  }
  w.EndObject();
  return buf.GetString();
}

absl::StatusOr<rapidjson::Document> RunQuery(Engine& engine,
                                             const std::string& json) {
  absl::StatusOr<std::string> out = engine.Query(json);
  if (!out.ok()) return out.status();
  rapidjson::Document doc;
  doc.Parse(out->data(), out->size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("results") ||
      !doc["results"].IsArray()) {
    return absl::InternalError("report: unexpected Stats API response");
  }
  return doc;
}

int64_t AsInt(const rapidjson::Value& v) {
  return v.IsNumber() ? std::llround(v.GetDouble()) : 0;
}

absl::StatusOr<Figures> Aggregate(Engine& engine, const std::string& site,
                                  const Period& p) {
  absl::StatusOr<rapidjson::Document> doc =
      RunQuery(engine, QueryJson(site, p,
                                 {"visitors", "visits", "pageviews",
                                  "bounce_rate", "visit_duration"},
                                 "", 0));
  if (!doc.ok()) return doc.status();
  Figures f;
  const auto& results = (*doc)["results"];
  if (results.Empty()) return f;
  const auto& m = results[0]["metrics"];
  if (!m.IsArray() || m.Size() != 5) {
    return absl::InternalError("report: unexpected aggregate metrics");
  }
  f.visitors = AsInt(m[0]);
  f.visits = AsInt(m[1]);
  f.pageviews = AsInt(m[2]);
  f.bounce_rate = AsInt(m[3]);
  f.visit_duration = AsInt(m[4]);
  return f;
}

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> Top(
    Engine& engine, const std::string& site, const Period& p,
    const std::string& dimension) {
  absl::StatusOr<rapidjson::Document> doc =
      RunQuery(engine, QueryJson(site, p, {"visitors"}, dimension, kTopN));
  if (!doc.ok()) return doc.status();
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& row : (*doc)["results"].GetArray()) {
    if (!row.HasMember("dimensions") || !row["dimensions"].IsArray() ||
        row["dimensions"].Empty() || !row["dimensions"][0].IsString() ||
        !row.HasMember("metrics") || !row["metrics"].IsArray() ||
        row["metrics"].Empty()) {
      continue;
    }
    out.emplace_back(row["dimensions"][0].GetString(),
                     AsInt(row["metrics"][0]));
  }
  return out;
}

int64_t Change(int64_t now, int64_t before) {
  if (before == 0) return now > 0 ? 100 : 0;
  return std::llround((static_cast<double>(now) - before) / before * 100.0);
}

std::string Title(const ReportData& r) {
  return absl::StrCat(r.frequency == Frequency::kWeekly ? "Weekly" : "Monthly",
                      " report for ", r.site);
}

struct Row {
  const char* label;
  std::string value;
  std::string change;
};

std::vector<Row> Rows(const ReportData& r) {
  return {
      {"Unique visitors", absl::StrCat(r.now.visitors),
       FormatChange(r.change.visitors, false)},
      {"Total visits", absl::StrCat(r.now.visits),
       FormatChange(r.change.visits, false)},
      {"Total pageviews", absl::StrCat(r.now.pageviews),
       FormatChange(r.change.pageviews, false)},
      {"Bounce rate", absl::StrCat(r.now.bounce_rate, "%"),
       FormatChange(r.change.bounce_rate, true)},
      {"Visit duration", FormatDuration(r.now.visit_duration),
       FormatChange(r.change.visit_duration, false)},
  };
}

struct Table {
  const char* title;
  const char* column;
  const std::vector<std::pair<std::string, int64_t>>* rows;
};

std::vector<Table> Tables(const ReportData& r) {
  return {{"Top pages", "Page", &r.top_pages},
          {"Top sources", "Source", &r.top_sources},
          {"Top countries", "Country", &r.top_countries}};
}

}  // namespace

absl::StatusOr<ReportData> ComputeReport(Engine& engine, const Site& site,
                                         Frequency frequency,
                                         const Period& period) {
  absl::TimeZone tz;
  if (!absl::LoadTimeZone(site.timezone, &tz)) tz = absl::UTCTimeZone();
  ReportData r;
  r.site = site.domain;
  r.frequency = frequency;
  r.period = period;
  r.previous = PreviousPeriod(frequency, period, tz);
  absl::StatusOr<Figures> now = Aggregate(engine, site.domain, r.period);
  if (!now.ok()) return now.status();
  absl::StatusOr<Figures> before = Aggregate(engine, site.domain, r.previous);
  if (!before.ok()) return before.status();
  r.now = *now;
  r.before = *before;
  r.change.visitors = Change(now->visitors, before->visitors);
  r.change.visits = Change(now->visits, before->visits);
  r.change.pageviews = Change(now->pageviews, before->pageviews);
  r.change.bounce_rate = now->bounce_rate - before->bounce_rate;
  r.change.visit_duration = Change(now->visit_duration, before->visit_duration);
  for (auto [dim, out] : {std::pair{"event:page", &r.top_pages},
                          std::pair{"visit:source", &r.top_sources},
                          std::pair{"visit:country", &r.top_countries}}) {
    auto top = Top(engine, site.domain, r.period, dim);
    if (!top.ok()) return top.status();
    *out = *std::move(top);
  }
  return r;
}

std::string FormatDuration(int64_t s) {
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm %02ds", s / 60, s % 60);
  return absl::StrFormat("%dh %02dm", s / 3600, (s % 3600) / 60);
}

std::string FormatChange(int64_t change, bool points) {
  return absl::StrCat(change > 0 ? "+" : "", change, points ? " pts" : "%");
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string ReportSubject(const ReportData& r) {
  return absl::StrCat(Title(r), ": ", r.period.first_day, " to ",
                      r.period.last_day);
}

// The text part is line-oriented ("Label: value (change)") so that it reads
// well and tests can parse it.
std::string RenderReportText(const ReportData& r,
                             const std::string& unsubscribe_url) {
  std::string out = absl::StrCat(
      Title(r), "\n", "Period: ", r.period.first_day, " to ", r.period.last_day,
      " (", r.period.label, ")\n", "Compared with: ", r.previous.first_day,
      " to ", r.previous.last_day, "\n\n");
  for (const Row& row : Rows(r)) {
    absl::StrAppend(&out, row.label, ": ", row.value, " (", row.change, ")\n");
  }
  for (const Table& t : Tables(r)) {
    absl::StrAppend(&out, "\n", t.title, " (visitors):\n");
    if (t.rows->empty()) absl::StrAppend(&out, "  (none)\n");
    for (const auto& [value, n] : *t.rows) {
      absl::StrAppend(&out, "  ", value, ": ", n, "\n");
    }
  }
  if (!unsubscribe_url.empty()) {
    absl::StrAppend(&out, "\nUnsubscribe: ", unsubscribe_url, "\n");
  }
  return out;
}

std::string RenderReportHtml(const ReportData& r,
                             const std::string& unsubscribe_url) {
  std::string out = absl::StrCat(
      "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>",
      HtmlEscape(ReportSubject(r)),
      "</title></head>\n<body style=\"font-family:sans-serif\">\n<h1>",
      HtmlEscape(Title(r)), "</h1>\n<p>", r.period.first_day, " to ",
      r.period.last_day, " (", HtmlEscape(r.period.label), "), compared with ",
      r.previous.first_day, " to ", r.previous.last_day,
      "</p>\n<table id=\"figures\">\n");
  for (const Row& row : Rows(r)) {
    absl::StrAppend(&out, "<tr><th>", row.label, "</th><td class=\"value\">",
                    HtmlEscape(row.value), "</td><td class=\"change\">",
                    HtmlEscape(row.change), "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n");
  for (const Table& t : Tables(r)) {
    absl::StrAppend(&out, "<h2>", t.title, "</h2>\n<table><tr><th>", t.column,
                    "</th><th>Visitors</th></tr>\n");
    for (const auto& [value, n] : *t.rows) {
      absl::StrAppend(&out, "<tr><td>", HtmlEscape(value), "</td><td>", n,
                      "</td></tr>\n");
    }
    absl::StrAppend(&out, "</table>\n");
  }
  if (!unsubscribe_url.empty()) {
    absl::StrAppend(&out, "<p><a href=\"", HtmlEscape(unsubscribe_url),
                    "\">Unsubscribe</a> from these reports.</p>\n");
  }
  absl::StrAppend(&out, "</body></html>\n");
  return out;
}

}  // namespace analytics::jobs
