// Plausible Stats API v1 on top of the v2 query model (see v1.h).
#include "libanalytics/query/v1.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "libanalytics/core/dimensions.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/query/query.h"

namespace analytics {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using Value = rapidjson::Value;

constexpr int64_t kDefaultLimit = 100;
constexpr int64_t kMaxLimit = 1000;

absl::Status Bad(std::string_view param, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(AV(param), ": ", AV(what)));
}

const std::string* Param(const V1Params& p, const char* key) {
  auto it = p.find(key);
  if (it == p.end() || it->second.empty()) return nullptr;
  return &it->second;
}

void Str(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  while (true) {
    size_t i = s.find(sep);
    out.emplace_back(s.substr(0, i));
    if (i == std::string_view::npos) break;
    s.remove_prefix(i + 1);
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

absl::StatusOr<absl::CivilDay> ParseDay(std::string_view s,
                                        std::string_view param) {
  absl::CivilDay d;
  s = Trim(s);
  if (s.size() != 10 || !absl::ParseCivilTime(AV(s), &d)) {
    return Bad(param,
               absl::StrCat("expected a date YYYY-MM-DD, got '", AV(s), "'"));
  }
  return d;
}

std::string DayText(absl::CivilDay d) {
  return absl::FormatCivilTime(d);  // "2026-01-05"
}

// The v2 date_range: a relative period name, or [from, to] dates when `date`
// pins the reference day (v2 has no "date").
absl::Status WriteDateRange(const V1Params& params, Writer& w) {
  const std::string* period = Param(params, "period");
  const std::string p = period ? *period : "30d";
  const std::string* date = Param(params, "date");
  w.Key("date_range");
  if (p == "custom") {
    if (date == nullptr) {
      return Bad("date", "required for period=custom (YYYY-MM-DD,YYYY-MM-DD)");
    }
    std::vector<std::string> parts = Split(*date, ',');
    if (parts.size() != 2) {
      return Bad("date", "expected two dates YYYY-MM-DD,YYYY-MM-DD");
    }
    absl::StatusOr<absl::CivilDay> from = ParseDay(parts[0], "date");
    if (!from.ok()) return from.status();
    absl::StatusOr<absl::CivilDay> to = ParseDay(parts[1], "date");
    if (!to.ok()) return to.status();
    if (*to < *from) return Bad("date", "end is before start");
    w.StartArray();
    Str(w, DayText(*from));
    Str(w, DayText(*to));
    w.EndArray();
    return absl::OkStatus();
  }
  int days = 0, months = 0;
  if (p == "day") {
    days = 1;
  } else if (p == "7d") {
    days = 7;
  } else if (p == "30d") {
    days = 30;
  } else if (p == "month") {
    months = 1;
  } else if (p == "6mo") {
    months = 6;
  } else if (p == "12mo") {
    months = 12;
  } else {
    return Bad("period", absl::StrCat("unknown value '", p, "'"));
  }
  if (date == nullptr) {
    Str(w, p);
    return absl::OkStatus();
  }
  absl::StatusOr<absl::CivilDay> ref = ParseDay(*date, "date");
  if (!ref.ok()) return ref.status();
  absl::CivilDay from, to;
  if (days > 0) {
    from = *ref - (days - 1), to = *ref;
  } else {
    // Calendar months ending with the reference date's month, as v2's
    // "month"/"6mo"/"12mo" do for today.
    const absl::CivilMonth m(*ref);
    from = absl::CivilDay(m - (months - 1));
    to = absl::CivilDay(m + 1) - 1;
  }
  w.StartArray();
  Str(w, DayText(from));
  Str(w, DayText(to));
  w.EndArray();
  return absl::OkStatus();
}

bool KnownMetric(std::string_view m) {
  for (std::string_view k :
       {"visitors", "visits", "pageviews", "views_per_visit", "bounce_rate",
        "visit_duration", "events", "percentage", "conversion_rate"}) {
    if (m == k) return true;
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> Metrics(const V1Params& params) {
  const std::string* m = Param(params, "metrics");
  if (m == nullptr) return std::vector<std::string>{"visitors"};
  std::vector<std::string> out;
  for (std::string& name : Split(*m, ',')) {
    std::string_view t = Trim(name);
    if (t.empty()) return Bad("metrics", "empty metric name");
    if (!KnownMetric(t)) {
      return Bad("metrics", absl::StrCat("unknown metric '", AV(t), "'"));
    }
    out.emplace_back(t);
  }
  return out;
}

absl::Status CheckProperty(std::string_view name, std::string_view param) {
  if (name == kGoalDimName) return absl::OkStatus();  // goals.h
  if (name == "event:props:" || !ParseDimension(name).has_value()) {
    return Bad(param, absl::StrCat("unknown property '", AV(name), "'"));
  }
  return absl::OkStatus();
}

// Regex for a v1 wildcard pattern: `**` any characters, `*` any characters
// but '/', everything else literal.
std::string WildcardRegex(std::string_view pattern) {
  std::string re = "^";
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '*') {
      if (i + 1 < pattern.size() && pattern[i + 1] == '*') {
        re += ".*";
        ++i;
      } else {
        re += "[^/]*";
      }
      continue;
    }
    if (std::string_view("\\.+?()|[]{}^$/-").find(c) !=
        std::string_view::npos) {
      re.push_back('\\');
    }
    re.push_back(c);
  }
  re += "$";
  return re;
}

// Splits on `sep` not preceded by a backslash; "\\<sep>" unescapes, other
// escapes are kept for a later split.
std::vector<std::string> SplitEscaped(std::string_view s, char sep) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == sep) {
      out.back().push_back(s[++i]);
    } else if (s[i] == '\\' && i + 1 < s.size()) {
      out.back().push_back(s[i]);  // other escapes stay for the next split
      out.back().push_back(s[++i]);
    } else if (s[i] == sep) {
      out.emplace_back();
    } else {
      out.back().push_back(s[i]);
    }
  }
  return out;
}

// One v1 filter expression "prop==a|b" as a v2 filter.
absl::Status WriteFilter(std::string_view expr, Writer& w) {
  expr = Trim(expr);
  const size_t op_at = expr.find_first_of("=!~");
  if (op_at == std::string_view::npos || op_at == 0) {
    return Bad("filters",
               absl::StrCat("expected property==value, property!=value or "
                            "property~value, got '",
                            AV(expr), "'"));
  }
  const std::string_view prop = Trim(expr.substr(0, op_at));
  std::string_view rest = expr.substr(op_at);
  std::string_view op;
  for (std::string_view candidate : {"==", "!=", "!~", "~"}) {
    if (rest.substr(0, candidate.size()) == candidate) {
      op = candidate;
      break;
    }
  }
  if (op.empty()) {
    return Bad("filters", absl::StrCat("unknown operator in '", AV(expr), "'"));
  }
  if (absl::Status s = CheckProperty(prop, "filters"); !s.ok()) return s;
  std::vector<std::string> values = SplitEscaped(rest.substr(op.size()), '|');
  for (const std::string& v : values) {
    if (v.empty()) {
      return Bad("filters", absl::StrCat("empty value in '", AV(expr), "'"));
    }
  }
  const bool negated = op[0] == '!';
  const bool contains = op.back() == '~';
  bool wildcard = false;
  if (!contains) {
    for (const std::string& v : values) {
      wildcard = wildcard || v.find('*') != std::string::npos;
    }
  }
  w.StartArray();
  if (contains) {
    Str(w, negated ? "contains_not" : "contains");
  } else if (wildcard) {
    Str(w, negated ? "matches_not" : "matches");
  } else {
    Str(w, negated ? "is_not" : "is");
  }
  Str(w, prop);
  w.StartArray();
  for (const std::string& v : values) Str(w, wildcard ? WildcardRegex(v) : v);
  w.EndArray();
  w.EndArray();
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PositiveInt(const V1Params& params, const char* key,
                                    int64_t def, int64_t max) {
  const std::string* v = Param(params, key);
  if (v == nullptr) return def;
  int64_t n = 0;
  if (!absl::SimpleAtoi(AV(*v), &n) || n < 1 || n > max) {
    return Bad(key, max == INT64_MAX
                        ? std::string("must be a positive integer")
                        : absl::StrCat("must be an integer from 1 to ", max));
  }
  return n;
}

// The name v1 uses for a property's column: "event:page" -> "page",
// "visit:source" -> "source", "event:props:plan" -> "plan".
std::string ShortName(std::string_view property) {
  constexpr std::string_view kProps = "event:props:";
  if (property.substr(0, kProps.size()) == kProps) {
    return std::string(property.substr(kProps.size()));
  }
  const size_t colon = property.find(':');
  return std::string(
      colon == std::string_view::npos ? property : property.substr(colon + 1));
}

}  // namespace

absl::StatusOr<std::string> V1ToV2Query(V1Endpoint endpoint,
                                        const V1Params& params) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();

  const std::string* site = Param(params, "site_id");
  if (site == nullptr) return Bad("site_id", "required");
  w.Key("site_id");
  Str(w, *site);

  absl::StatusOr<std::vector<std::string>> metrics = Metrics(params);
  if (!metrics.ok()) return metrics.status();
  w.Key("metrics");
  w.StartArray();
  for (const std::string& m : *metrics) Str(w, m);
  w.EndArray();

  if (absl::Status s = WriteDateRange(params, w); !s.ok()) return s;

  if (const std::string* f = Param(params, "filters")) {
    w.Key("filters");
    w.StartArray();
    for (const std::string& expr : SplitEscaped(*f, ';')) {
      if (Trim(expr).empty()) continue;
      if (absl::Status s = WriteFilter(expr, w); !s.ok()) return s;
    }
    w.EndArray();
  }

  switch (endpoint) {
    case V1Endpoint::kAggregate:
      break;
    case V1Endpoint::kTimeseries: {
      const std::string* interval = Param(params, "interval");
      const std::string* period = Param(params, "period");
      std::string iv = interval ? *interval
                       : period && (*period == "6mo" || *period == "12mo")
                           ? "month"
                           : "date";
      std::string dim;
      if (iv == "date" || iv == "day") {
        dim = "time:day";
      } else if (iv == "month") {
        dim = "time:month";
      } else if (iv == "hour") {
        dim = "time:hour";
      } else if (iv == "week") {
        dim = "time:week";
      } else {
        return Bad("interval", absl::StrCat("unknown value '", iv, "'"));
      }
      w.Key("dimensions");
      w.StartArray();
      Str(w, dim);
      w.EndArray();
      break;
    }
    case V1Endpoint::kBreakdown: {
      const std::string* property = Param(params, "property");
      if (property == nullptr) {
        return Bad("property", "required for breakdown");
      }
      if (absl::Status s = CheckProperty(*property, "property"); !s.ok()) {
        return s;
      }
      absl::StatusOr<int64_t> limit =
          PositiveInt(params, "limit", kDefaultLimit, kMaxLimit);
      if (!limit.ok()) return limit.status();
      absl::StatusOr<int64_t> page = PositiveInt(params, "page", 1, INT64_MAX);
      if (!page.ok()) return page.status();
      if (*page - 1 > INT64_MAX / *limit) return Bad("page", "too large");
      w.Key("dimensions");
      w.StartArray();
      Str(w, *property);
      w.EndArray();
      w.Key("order_by");
      w.StartArray();
      w.StartArray();
      Str(w, (*metrics)[0]);
      Str(w, "desc");
      w.EndArray();
      w.EndArray();
      w.Key("pagination");
      w.StartObject();
      w.Key("limit");
      w.Int64(*limit);
      w.Key("offset");
      w.Int64((*page - 1) * *limit);
      w.EndObject();
      break;
    }
  }

  if (const std::string* cmp = Param(params, "compare")) {
    if (*cmp != "previous_period") {
      return Bad("compare", absl::StrCat("unknown value '", *cmp, "'"));
    }
    if (endpoint == V1Endpoint::kAggregate) {
      w.Key("include");
      w.StartObject();
      w.Key("comparisons");
      w.StartObject();
      w.Key("mode");
      Str(w, "previous_period");
      w.EndObject();
      w.EndObject();
    }
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

absl::StatusOr<std::string> V2ToV1Response(V1Endpoint endpoint,
                                           const V1Params& params,
                                           std::string_view v2_response) {
  rapidjson::Document doc;
  doc.Parse(v2_response.data(), v2_response.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("response: invalid JSON at offset ", doc.GetErrorOffset(),
                     ": ", rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject() || !doc.HasMember("results") ||
      !doc["results"].IsArray()) {
    return absl::InvalidArgumentError("response: expected {\"results\": […]}");
  }
  const Value& results = doc["results"];

  // Metric names: echoed by v2 in query.metrics, else from the parameters.
  std::vector<std::string> metrics;
  if (doc.HasMember("query") && doc["query"].IsObject() &&
      doc["query"].HasMember("metrics") && doc["query"]["metrics"].IsArray()) {
    for (const Value& m : doc["query"]["metrics"].GetArray()) {
      if (m.IsString())
        metrics.emplace_back(m.GetString(), m.GetStringLength());
    }
  }
  if (metrics.empty()) {
    absl::StatusOr<std::vector<std::string>> m = Metrics(params);
    if (!m.ok()) return m.status();
    metrics = std::move(*m);
  }

  auto metric_at = [](const Value& row, size_t i) -> const Value* {
    if (!row.IsObject() || !row.HasMember("metrics")) return nullptr;
    const Value& ms = row["metrics"];
    if (!ms.IsArray() || i >= ms.Size()) return nullptr;
    return &ms[static_cast<rapidjson::SizeType>(i)];
  };
  auto write_metric = [](Writer& w, const Value* v) {
    if (v == nullptr) {
      w.Int(0);
    } else {
      v->Accept(w);
    }
  };
  auto first_dim = [](const Value& row) -> const Value* {
    if (!row.IsObject() || !row.HasMember("dimensions")) return nullptr;
    const Value& ds = row["dimensions"];
    if (!ds.IsArray() || ds.Empty()) return nullptr;
    return &ds[0];
  };

  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("results");
  switch (endpoint) {
    case V1Endpoint::kAggregate: {
      w.StartObject();
      const Value* row = results.Empty() ? nullptr : &results[0];
      const Value* change = nullptr;
      if (row != nullptr && row->IsObject() && row->HasMember("comparison") &&
          (*row)["comparison"].IsObject() &&
          (*row)["comparison"].HasMember("change") &&
          (*row)["comparison"]["change"].IsArray()) {
        change = &(*row)["comparison"]["change"];
      }
      for (size_t i = 0; i < metrics.size(); ++i) {
        Str(w, metrics[i]);
        w.StartObject();
        w.Key("value");
        write_metric(w, row ? metric_at(*row, i) : nullptr);
        if (change != nullptr && i < change->Size()) {
          w.Key("change");
          (*change)[static_cast<rapidjson::SizeType>(i)].Accept(w);
        }
        w.EndObject();
      }
      w.EndObject();
      break;
    }
    case V1Endpoint::kTimeseries:
    case V1Endpoint::kBreakdown: {
      std::string key = "date";
      if (endpoint == V1Endpoint::kBreakdown) {
        const std::string* property = Param(params, "property");
        if (property == nullptr) {
          return Bad("property", "required for breakdown");
        }
        key = ShortName(*property);
      }
      w.StartArray();
      for (const Value& row : results.GetArray()) {
        w.StartObject();
        Str(w, key);
        const Value* d = first_dim(row);
        if (d != nullptr) {
          d->Accept(w);
        } else {
          w.Null();
        }
        for (size_t i = 0; i < metrics.size(); ++i) {
          Str(w, metrics[i]);
          write_metric(w, metric_at(row, i));
        }
        w.EndObject();
      }
      w.EndArray();
      break;
    }
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace analytics
