// Report subscription and alert rule JSON; see config.h.
#include "libanalytics/jobs/config.h"

#include <cmath>
#include <initializer_list>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libanalytics/core/strings.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace analytics::jobs {
namespace {

using rapidjson::Value;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

absl::Status Bad(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(AV(field), ": ", AV(what)));
}

absl::StatusOr<rapidjson::Document> ParseObject(std::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Bad("body", "want a JSON object");
  }
  return doc;
}

absl::Status OnlyKeys(const Value& obj,
                      std::initializer_list<std::string_view> keys) {
  for (const auto& m : obj.GetObject()) {
    std::string_view k(m.name.GetString(), m.name.GetStringLength());
    bool known = false;
    for (std::string_view allowed : keys) known = known || k == allowed;
    if (!known) return Bad(k.substr(0, 64), "unknown field");
  }
  return absl::OkStatus();
}

const Value* Member(const Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

absl::Status GetString(const Value& obj, const char* key, size_t max,
                       std::string* out) {
  const Value* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->IsString()) return Bad(key, "want a string");
  if (v->GetStringLength() > max) {
    return Bad(key, absl::StrCat("longer than ", max, " bytes"));
  }
  out->assign(v->GetString(), v->GetStringLength());
  return absl::OkStatus();
}

absl::Status GetInt(const Value& obj, const char* key, int64_t lo, int64_t hi,
                    int64_t* out) {
  const Value* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->IsInt64() || v->GetInt64() < lo || v->GetInt64() > hi) {
    return Bad(key, absl::StrCat("want an integer from ", lo, " to ", hi));
  }
  *out = v->GetInt64();
  return absl::OkStatus();
}

absl::Status GetBool(const Value& obj, const char* key, bool* out) {
  const Value* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->IsBool()) return Bad(key, "want true or false");
  *out = v->GetBool();
  return absl::OkStatus();
}

bool ValidHttpUrl(std::string_view url) {
  absl::string_view rest = AV(url);
  if (!absl::ConsumePrefix(&rest, "https://") &&
      !absl::ConsumePrefix(&rest, "http://")) {
    return false;
  }
  if (rest.empty() || rest.front() == '/') return false;
  for (char c : rest) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '\\' ||
        c == 0x7f) {
      return false;
    }
  }
  return true;
}

void Str(Writer& w, const char* key, std::string_view v) {
  w.Key(key);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

absl::StatusOr<rapidjson::Document> DocObject(const ConfigDoc& doc) {
  absl::StatusOr<rapidjson::Document> d = ParseObject(doc.json);
  if (!d.ok()) {
    return absl::DataLossError(
        absl::StrCat("config doc ", doc.id, ": not a JSON object"));
  }
  return d;
}

void WriteAlertFields(Writer& w, const AlertRule& a) {
  Str(w, "name", a.name);
  Str(w, "metric", AlertMetricName(a.metric));
  if (a.metric == AlertMetric::kEvents) Str(w, "event", a.event);
  Str(w, "condition", AlertConditionName(a.condition));
  w.Key("threshold");
  w.Double(a.threshold);
  Str(w, "webhook_url", a.webhook_url);
  Str(w, "email", a.email);
  w.Key("cooldown_minutes");
  w.Int64(a.cooldown_minutes);
  w.Key("baseline_days");
  w.Int64(a.baseline_days);
  w.Key("enabled");
  w.Bool(a.enabled);
  w.Key("created_ms");
  w.Int64(a.created_ms);
}

}  // namespace

bool ValidEmail(std::string_view s) {
  if (s.size() < 3 || s.size() > 254) return false;
  size_t at = s.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= s.size()) {
    return false;
  }
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '<' || c == '>' ||
        c == ',' || c == ';' || c == '"' || c == '\\' || c == 0x7f) {
      return false;
    }
  }
  std::string_view domain = s.substr(at + 1);
  return domain.find('@') == std::string_view::npos && domain.front() != '.' &&
         domain.back() != '.';
}

std::string_view AlertMetricName(AlertMetric m) {
  switch (m) {
    case AlertMetric::kVisitors:
      return "visitors";
    case AlertMetric::kEvents:
      return "events";
    case AlertMetric::kErrors:
      return "errors";
  }
  return "visitors";
}

std::string_view AlertConditionName(AlertCondition c) {
  switch (c) {
    case AlertCondition::kAbove:
      return "above";
    case AlertCondition::kBelow:
      return "below";
    case AlertCondition::kSpike:
      return "spike";
    case AlertCondition::kDrop:
      return "drop";
  }
  return "above";
}

absl::StatusOr<ReportSub> ReportFromApi(std::string_view body,
                                        const ReportSub& base) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return doc.status();
  if (absl::Status s =
          OnlyKeys(*doc, {"site", "email", "frequency", "enabled"});
      !s.ok()) {
    return s;
  }
  ReportSub r = base;
  if (absl::Status s = GetString(*doc, "email", 254, &r.email); !s.ok()) {
    return s;
  }
  if (!ValidEmail(r.email)) {
    return Bad("email", "want one address like name@example.com");
  }
  std::string freq(FrequencyName(r.frequency));
  if (absl::Status s = GetString(*doc, "frequency", 16, &freq); !s.ok()) {
    return s;
  }
  absl::StatusOr<Frequency> f = ParseFrequency(freq);
  if (!f.ok()) return f.status();
  r.frequency = *f;
  if (absl::Status s = GetBool(*doc, "enabled", &r.enabled); !s.ok()) return s;
  return r;
}

absl::StatusOr<AlertRule> AlertFromApi(std::string_view body,
                                       const AlertRule& base) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return doc.status();
  if (absl::Status s =
          OnlyKeys(*doc, {"site", "name", "metric", "event", "condition",
                          "threshold", "webhook_url", "email",
                          "cooldown_minutes", "baseline_days", "enabled"});
      !s.ok()) {
    return s;
  }
  AlertRule a = base;
  if (absl::Status s = GetString(*doc, "name", 200, &a.name); !s.ok()) {
    return s;
  }
  std::string metric(AlertMetricName(a.metric));
  if (absl::Status s = GetString(*doc, "metric", 32, &metric); !s.ok()) {
    return s;
  }
  if (metric == "visitors") {
    a.metric = AlertMetric::kVisitors;
  } else if (metric == "events") {
    a.metric = AlertMetric::kEvents;
  } else if (metric == "errors") {
    a.metric = AlertMetric::kErrors;
  } else {
    return Bad("metric", "want \"visitors\", \"events\" or \"errors\"");
  }
  if (absl::Status s = GetString(*doc, "event", 200, &a.event); !s.ok()) {
    return s;
  }
  if (a.metric == AlertMetric::kEvents && a.event.empty()) {
    return Bad("event", "required when metric is \"events\"");
  }
  std::string cond(AlertConditionName(a.condition));
  if (absl::Status s = GetString(*doc, "condition", 32, &cond); !s.ok()) {
    return s;
  }
  if (cond == "above") {
    a.condition = AlertCondition::kAbove;
  } else if (cond == "below") {
    a.condition = AlertCondition::kBelow;
  } else if (cond == "spike") {
    a.condition = AlertCondition::kSpike;
  } else if (cond == "drop") {
    a.condition = AlertCondition::kDrop;
  } else {
    return Bad("condition", "want \"above\", \"below\", \"spike\" or \"drop\"");
  }
  if (const Value* t = Member(*doc, "threshold"); t != nullptr) {
    if (!t->IsNumber() || !std::isfinite(t->GetDouble()) ||
        t->GetDouble() < 0 || t->GetDouble() > 1e12) {
      return Bad("threshold", "want a non-negative number");
    }
    a.threshold = t->GetDouble();
  } else if (Member(*doc, "threshold") == nullptr && base.id == 0) {
    return Bad("threshold", "required");
  }
  if (absl::Status s = GetString(*doc, "webhook_url", 2000, &a.webhook_url);
      !s.ok()) {
    return s;
  }
  if (!a.webhook_url.empty() && !ValidHttpUrl(a.webhook_url)) {
    return Bad("webhook_url", "want an http:// or https:// URL");
  }
  if (absl::Status s = GetString(*doc, "email", 254, &a.email); !s.ok()) {
    return s;
  }
  if (!a.email.empty() && !ValidEmail(a.email)) {
    return Bad("email", "want one address like name@example.com");
  }
  if (a.webhook_url.empty() && a.email.empty()) {
    return Bad("webhook_url", "a webhook_url or an email is required");
  }
  if (absl::Status s =
          GetInt(*doc, "cooldown_minutes", 1, 7 * 24 * 60, &a.cooldown_minutes);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = GetInt(*doc, "baseline_days", 1, 28, &a.baseline_days);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = GetBool(*doc, "enabled", &a.enabled); !s.ok()) return s;
  return a;
}

std::string ReportToDocJson(const ReportSub& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Str(w, "email", r.email);
  Str(w, "frequency", FrequencyName(r.frequency));
  Str(w, "token", r.token);
  w.Key("created_ms");
  w.Int64(r.created_ms);
  w.Key("enabled");
  w.Bool(r.enabled);
  w.EndObject();
  return buf.GetString();
}

absl::StatusOr<ReportSub> ReportFromDoc(const ConfigDoc& doc) {
  absl::StatusOr<rapidjson::Document> d = DocObject(doc);
  if (!d.ok()) return d.status();
  ReportSub r;
  r.id = doc.id;
  r.site_id = doc.site_id;
  std::string freq;
  if (!GetString(*d, "email", 254, &r.email).ok() ||
      !GetString(*d, "frequency", 16, &freq).ok() ||
      !GetString(*d, "token", 128, &r.token).ok() ||
      !GetInt(*d, "created_ms", 0, INT64_MAX, &r.created_ms).ok() ||
      !GetBool(*d, "enabled", &r.enabled).ok() || !ValidEmail(r.email) ||
      !ParseFrequency(freq).ok() || r.token.empty()) {
    return absl::DataLossError(
        absl::StrCat("config doc ", doc.id, ": not a report subscription"));
  }
  r.frequency = *ParseFrequency(freq);
  return r;
}

std::string AlertToDocJson(const AlertRule& a) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  WriteAlertFields(w, a);
  w.EndObject();
  return buf.GetString();
}

absl::StatusOr<AlertRule> AlertFromDoc(const ConfigDoc& doc) {
  AlertRule base;
  base.id = doc.id;  // threshold may be absent only on updates
  std::string json = doc.json;
  absl::StatusOr<rapidjson::Document> d = DocObject(doc);
  if (!d.ok()) return d.status();
  int64_t created = 0;
  (void)GetInt(*d, "created_ms", 0, INT64_MAX, &created);
  d->RemoveMember("created_ms");
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  d->Accept(w);
  absl::StatusOr<AlertRule> a = AlertFromApi(buf.GetString(), base);
  if (!a.ok()) {
    return absl::DataLossError(absl::StrCat(
        "config doc ", doc.id, ": not an alert rule: ", a.status().message()));
  }
  a->id = doc.id;
  a->site_id = doc.site_id;
  a->created_ms = created;
  return a;
}

std::string ReportToApiJson(const ReportSub& r, std::string_view site_domain) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("id");
  w.Int64(r.id);
  Str(w, "site", site_domain);
  Str(w, "email", r.email);
  Str(w, "frequency", FrequencyName(r.frequency));
  w.Key("enabled");
  w.Bool(r.enabled);
  w.Key("created_ms");
  w.Int64(r.created_ms);
  w.EndObject();
  return buf.GetString();
}

std::string AlertToApiJson(const AlertRule& a, std::string_view site_domain) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("id");
  w.Int64(a.id);
  Str(w, "site", site_domain);
  WriteAlertFields(w, a);
  w.EndObject();
  return buf.GetString();
}

}  // namespace analytics::jobs
