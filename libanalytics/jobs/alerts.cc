// Alert rules evaluated through the Stats API; see alerts.h.
#include "libanalytics/jobs/alerts.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace analytics::jobs {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::string Iso(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// The metric over [from, to).
absl::StatusOr<int64_t> Value(Engine& engine, const Site& site,
                              const AlertRule& rule, absl::Time from,
                              absl::Time to) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("site_id");
  w.String(site.domain.c_str());
  w.Key("metrics");
  w.StartArray();
  w.String(rule.metric == AlertMetric::kVisitors ? "visitors" : "events");
  w.EndArray();
  w.Key("date_range");
  w.StartArray();
  // A date-time end is inclusive to the second.
  w.String(Iso(from).c_str());
  w.String(Iso(to - absl::Seconds(1)).c_str());
  w.EndArray();
  if (rule.metric != AlertMetric::kVisitors) {
    const std::string& name =
        rule.metric == AlertMetric::kErrors ? std::string("error") : rule.event;
    w.Key("filters");
    w.StartArray();
    w.StartArray();
    w.String("is");
    w.String("event:name");
    w.StartArray();
    w.String(name.c_str());
    w.EndArray();
    w.EndArray();
    w.EndArray();
  }
  w.EndObject();
  absl::StatusOr<std::string> out = engine.Query(buf.GetString());
  if (!out.ok()) return out.status();
  rapidjson::Document doc;
  doc.Parse(out->data(), out->size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("results") ||
      !doc["results"].IsArray()) {
    return absl::InternalError("alert: unexpected Stats API response");
  }
  if (doc["results"].Empty()) return 0;
  const auto& m = doc["results"][0]["metrics"];
  if (!m.IsArray() || m.Empty() || !m[0].IsNumber()) return 0;
  return std::llround(m[0].GetDouble());
}

std::string What(const AlertRule& rule) {
  switch (rule.metric) {
    case AlertMetric::kVisitors:
      return "visitors";
    case AlertMetric::kErrors:
      return "errors";
    case AlertMetric::kEvents:
      return absl::StrCat("\"", rule.event, "\" events");
  }
  return "visitors";
}

}  // namespace

absl::StatusOr<AlertEval> EvaluateAlert(Engine& engine, const Site& site,
                                        const AlertRule& rule, absl::Time now) {
  const absl::Time to = absl::FromUnixSeconds(absl::ToUnixSeconds(now));
  const absl::Time from = to - absl::Hours(1);
  absl::StatusOr<int64_t> value = Value(engine, site, rule, from, to);
  if (!value.ok()) return value.status();
  AlertEval e;
  e.value = *value;
  const std::string label =
      rule.name.empty() ? std::string("Alert") : rule.name;
  const std::string what = What(rule);
  switch (rule.condition) {
    case AlertCondition::kAbove:
      e.fire = e.value > rule.threshold;
      e.message =
          absl::StrFormat("%s: %s had %d %s in the last hour (above %g)", label,
                          site.domain, e.value, what, rule.threshold);
      break;
    case AlertCondition::kBelow:
      e.fire = e.value < rule.threshold;
      e.message =
          absl::StrFormat("%s: %s had %d %s in the last hour (below %g)", label,
                          site.domain, e.value, what, rule.threshold);
      break;
    case AlertCondition::kSpike:
    case AlertCondition::kDrop: {
      double sum = 0;
      for (int64_t d = 1; d <= rule.baseline_days; ++d) {
        absl::StatusOr<int64_t> past =
            Value(engine, site, rule, from - absl::Hours(24 * d),
                  to - absl::Hours(24 * d));
        if (!past.ok()) return past.status();
        sum += static_cast<double>(*past);
      }
      e.baseline = sum / static_cast<double>(rule.baseline_days);
      const double factor = rule.threshold / 100.0;
      const bool spike = rule.condition == AlertCondition::kSpike;
      // A spike needs some baseline or at least one visitor over nothing; a
      // drop needs a baseline to drop from.
      e.fire = spike ? e.value > e.baseline * (1 + factor) && e.value > 0
                     : e.baseline > 0 && e.value < e.baseline * (1 - factor);
      e.message = absl::StrFormat(
          "%s: %s traffic %s: %d %s in the last hour against a %d-day "
          "baseline of %.1f (threshold %g%%)",
          label, site.domain, spike ? "spike" : "drop", e.value, what,
          rule.baseline_days, e.baseline, rule.threshold);
      break;
    }
  }
  return e;
}

std::string WebhookBody(const std::string& message) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("text");
  w.String(message.c_str());
  w.Key("content");
  w.String(message.c_str());
  w.EndObject();
  return buf.GetString();
}

}  // namespace analytics::jobs
