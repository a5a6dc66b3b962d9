// Parsing of Stats API v2 query bodies into QuerySpec; see query.h.
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/query/query.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace analytics {
namespace {

using rapidjson::Value;

absl::Status Bad(std::string_view field, std::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(AV(field), ": ", AV(msg)));
}

std::string ToJson(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

absl::StatusOr<Metric> ParseMetric(std::string_view m) {
  if (m == "visitors") return Metric::kVisitors;
  if (m == "visits") return Metric::kVisits;
  if (m == "pageviews") return Metric::kPageviews;
  if (m == "views_per_visit") return Metric::kViewsPerVisit;
  if (m == "bounce_rate") return Metric::kBounceRate;
  if (m == "visit_duration") return Metric::kVisitDuration;
  if (m == "events") return Metric::kEvents;
  if (m == "percentage") return Metric::kPercentage;
  if (m == "conversion_rate") return Metric::kConversionRate;
  if (m == "group_conversion_rate") return Metric::kGroupConversionRate;
  if (m == "scroll_depth") return Metric::kScrollDepth;
  if (m == "time_on_page") return Metric::kTimeOnPage;
  return Bad("metrics", absl::StrCat("unknown metric '", AV(m), "'"));
}

absl::StatusOr<DimSpec> ParseDimSpec(std::string_view name,
                                     std::string_view field) {
  DimSpec d;
  d.name = std::string(name);
  if (name == "time") {
    d.grain = TimeGrain::kDay;  // refined by the range in ParseQuery
    d.name = "time";
    return d;
  }
  if (name == "time:hour") d.grain = TimeGrain::kHour;
  if (name == "time:day") d.grain = TimeGrain::kDay;
  if (name == "time:week") d.grain = TimeGrain::kWeek;
  if (name == "time:month") d.grain = TimeGrain::kMonth;
  if (d.grain != TimeGrain::kNone) return d;
  if (name == kGoalDimName) {
    d.dim.name = std::string(kGoalDimName);
    return d;
  }
  std::optional<Dimension> dim = ParseDimension(name);
  if (!dim || dim->id == DimId::kTotal) {
    return Bad(field, absl::StrCat("unknown dimension '", AV(name), "'"));
  }
  d.dim = *dim;
  return d;
}

absl::StatusOr<Filter> ParseFilter(const Value& v, int depth) {
  if (depth > 16) return Bad("filters", "nested too deeply");
  if (!v.IsArray() || v.Size() < 2 || !v[0].IsString()) {
    return Bad("filters",
               absl::StrCat("expected [operator, …], got ", ToJson(v)));
  }
  std::string_view op(v[0].GetString(), v[0].GetStringLength());
  Filter f;
  if (op == "and" || op == "or") {
    f.op = op == "and" ? Filter::Op::kAnd : Filter::Op::kOr;
    if (!v[1].IsArray() || v[1].Empty()) {
      return Bad("filters",
                 absl::StrCat("'", AV(op), "' expects a non-empty list"));
    }
    for (const Value& c : v[1].GetArray()) {
      absl::StatusOr<Filter> child = ParseFilter(c, depth + 1);
      if (!child.ok()) return child.status();
      f.children.push_back(*std::move(child));
    }
    return f;
  }
  if (op == "has_done" || op == "has_not_done") {
    f.op = op == "has_done" ? Filter::Op::kHasDone : Filter::Op::kHasNotDone;
    absl::StatusOr<Filter> child = ParseFilter(v[1], depth + 1);
    if (!child.ok()) return child.status();
    std::vector<Dimension> dims;
    child->CollectDims(&dims);
    for (const Dimension& d : dims) {
      if (d.name != kGoalDimName && d.kind != DimKind::kEvent &&
          d.kind != DimKind::kProp) {
        return Bad("filters",
                   absl::StrCat("'", AV(op),
                                "' takes event:goal, event:name, "
                                "event:page or event:props filters"));
      }
    }
    f.children.push_back(*std::move(child));
    return f;
  }
  if (op == "not") {
    f.op = Filter::Op::kNot;
    absl::StatusOr<Filter> child = ParseFilter(v[1], depth + 1);
    if (!child.ok()) return child.status();
    f.children.push_back(*std::move(child));
    return f;
  }
  if (op == "is")
    f.op = Filter::Op::kIs;
  else if (op == "is_not")
    f.op = Filter::Op::kIsNot;
  else if (op == "contains")
    f.op = Filter::Op::kContains;
  else if (op == "contains_not")
    f.op = Filter::Op::kContainsNot;
  else if (op == "matches")
    f.op = Filter::Op::kMatches;
  else if (op == "matches_not")
    f.op = Filter::Op::kMatchesNot;
  else
    return Bad("filters", absl::StrCat("unknown operator '", AV(op), "'"));
  if (v.Size() < 3 || !v[1].IsString() || !v[2].IsArray()) {
    return Bad("filters", absl::StrCat("expected [\"", AV(op),
                                       "\", dimension, [values]]"));
  }
  std::string_view dname(v[1].GetString(), v[1].GetStringLength());
  if (dname == kGoalDimName) {
    f.dim.name = std::string(kGoalDimName);
  } else {
    std::optional<Dimension> dim = ParseDimension(dname);
    if (!dim || dim->id == DimId::kTotal) {
      return Bad("filters",
                 absl::StrCat("unknown dimension '", AV(dname), "'"));
    }
    f.dim = *dim;
  }
  if (v[2].Empty()) return Bad("filters", "empty list of values");
  for (const Value& x : v[2].GetArray()) {
    if (!x.IsString()) return Bad("filters", "values must be strings");
    f.values.emplace_back(x.GetString(), x.GetStringLength());
  }
  if (v.Size() >= 4) {
    if (!v[3].IsObject()) return Bad("filters", "modifiers must be an object");
    auto cs = v[3].FindMember("case_sensitive");
    if (cs != v[3].MemberEnd()) {
      if (!cs->value.IsBool())
        return Bad("filters", "case_sensitive: expected a boolean");
      f.case_sensitive = cs->value.GetBool();
    }
  }
  if (!f.case_sensitive) {
    for (std::string& s : f.values) absl::AsciiStrToLower(&s);
  }
  if (f.op == Filter::Op::kMatches || f.op == Filter::Op::kMatchesNot) {
    RE2::Options opts;
    opts.set_log_errors(false);
    opts.set_case_sensitive(f.case_sensitive);
    opts.set_max_mem(8 << 20);
    for (const std::string& s : f.values) {
      auto re = std::make_shared<RE2>(s, opts);
      if (!re->ok()) {
        return Bad("filters", absl::StrCat("invalid regular expression '", s,
                                           "': ", re->error()));
      }
      f.regexes.push_back(std::move(re));
    }
  }
  return f;
}

absl::StatusOr<absl::Time> ParseDateOrTime(std::string_view s, bool end,
                                           const absl::TimeZone& tz) {
  absl::CivilDay day;
  if (s.size() == 10 && absl::ParseCivilTime(AV(s), &day)) {
    return absl::FromCivil(end ? day + 1 : day, tz);
  }
  absl::Time t;
  std::string err;
  std::string str(s);
  for (const char* fmt : {"%Y-%m-%d%ET%H:%M:%E*S%Ez", "%Y-%m-%d%ET%H:%M:%E*SZ",
                          "%Y-%m-%d%ET%H:%M%Ez"}) {
    if (absl::ParseTime(fmt, str, &t, &err)) return t;
  }
  absl::CivilSecond cs;
  if (absl::ParseCivilTime(AV(s), &cs)) return absl::FromCivil(cs, tz);
  return Bad("date_range", absl::StrCat("cannot parse '", AV(s),
                                        "' as a date or ISO 8601 date-time"));
}

}  // namespace

absl::StatusOr<QuerySpec> ParseQuery(std::string_view json,
                                     const SiteResolver& sites,
                                     absl::Time now) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    return Bad(
        "body",
        absl::StrCat("invalid JSON at offset ", doc.GetErrorOffset(), ": ",
                     rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject()) return Bad("body", "expected a JSON object");
  QuerySpec q;

  auto site_it = doc.FindMember("site_id");
  if (site_it == doc.MemberEnd() || !site_it->value.IsString()) {
    return Bad("site_id", "required string");
  }
  absl::StatusOr<Site> site = sites(site_it->value.GetString());
  if (!site.ok()) return site.status();
  q.site = *site;
  if (!absl::LoadTimeZone(q.site.timezone, &q.tz)) q.tz = absl::UTCTimeZone();

  auto m_it = doc.FindMember("metrics");
  if (m_it == doc.MemberEnd() || !m_it->value.IsArray() ||
      m_it->value.Empty()) {
    return Bad("metrics", "required non-empty list");
  }
  for (const Value& m : m_it->value.GetArray()) {
    if (!m.IsString()) return Bad("metrics", "expected strings");
    absl::StatusOr<Metric> metric = ParseMetric(m.GetString());
    if (!metric.ok()) return metric.status();
    q.metrics.push_back(*metric);
    q.metric_names.push_back(m.GetString());
  }

  // Date range.
  auto dr = doc.FindMember("date_range");
  if (dr == doc.MemberEnd()) return Bad("date_range", "required");
  const absl::CivilDay today = absl::ToCivilDay(now, q.tz);
  auto day_start = [&](absl::CivilDay d) { return absl::FromCivil(d, q.tz); };
  absl::Time from, to;
  if (dr->value.IsString()) {
    std::string_view r = dr->value.GetString();
    if (r == "day") {
      from = day_start(today), to = day_start(today + 1);
    } else if (r == "24h") {
      to = absl::FromUnixSeconds(absl::ToUnixSeconds(now) / 3600 * 3600 + 3600);
      from = to - absl::Hours(24);
    } else if (r == "7d" || r == "28d" || r == "30d" || r == "91d") {
      int n = 0;
      (void)absl::SimpleAtoi(AV(r.substr(0, r.size() - 1)), &n);
      from = day_start(today - (n - 1)), to = day_start(today + 1);
    } else if (r == "month") {
      absl::CivilMonth m(today);
      from = day_start(absl::CivilDay(m)),
      to = day_start(absl::CivilDay(m + 1));
    } else if (r == "6mo" || r == "12mo") {
      absl::CivilMonth m(today);
      int back = r == "6mo" ? 5 : 11;
      from = day_start(absl::CivilDay(m - back));
      to = day_start(absl::CivilDay(m + 1));
    } else if (r == "year") {
      absl::CivilYear y(today);
      from = day_start(absl::CivilDay(y)),
      to = day_start(absl::CivilDay(y + 1));
    } else if (r == "all") {
      from = absl::FromUnixMillis(-1);  // resolved at execution
      to = day_start(today + 1);
    } else {
      return Bad("date_range", absl::StrCat("unknown period '", AV(r), "'"));
    }
  } else if (dr->value.IsArray() && dr->value.Size() == 2 &&
             dr->value[0].IsString() && dr->value[1].IsString()) {
    absl::StatusOr<absl::Time> f =
        ParseDateOrTime(dr->value[0].GetString(), false, q.tz);
    if (!f.ok()) return f.status();
    absl::StatusOr<absl::Time> t =
        ParseDateOrTime(dr->value[1].GetString(), true, q.tz);
    if (!t.ok()) return t.status();
    from = *f, to = *t;
    // A date-time end is inclusive to the second in Plausible.
    if (std::string_view(dr->value[1].GetString()).size() > 10) {
      to += absl::Seconds(1);
    }
    if (to <= from) return Bad("date_range", "end is before start");
  } else {
    return Bad("date_range",
               "expected a period name or [start, end] dates or date-times");
  }
  q.from_ms = absl::ToUnixMillis(from);
  q.to_ms = absl::ToUnixMillis(to);

  auto d_it = doc.FindMember("dimensions");
  if (d_it != doc.MemberEnd()) {
    if (!d_it->value.IsArray()) return Bad("dimensions", "expected a list");
    int time_dims = 0;
    for (const Value& d : d_it->value.GetArray()) {
      if (!d.IsString()) return Bad("dimensions", "expected strings");
      absl::StatusOr<DimSpec> spec = ParseDimSpec(d.GetString(), "dimensions");
      if (!spec.ok()) return spec.status();
      if (spec->name == "time") {
        int64_t span_h = (q.to_ms - q.from_ms) / 3600000;
        spec->grain = q.from_ms < 0       ? TimeGrain::kMonth
                      : span_h <= 48      ? TimeGrain::kHour
                      : span_h <= 24 * 92 ? TimeGrain::kDay
                                          : TimeGrain::kMonth;
      }
      if (spec->grain != TimeGrain::kNone) ++time_dims;
      for (const DimSpec& prev : q.dims) {
        if (prev.name == spec->name) {
          return Bad("dimensions", absl::StrCat("'", spec->name, "' twice"));
        }
      }
      q.dims.push_back(*std::move(spec));
    }
    if (time_dims > 1) return Bad("dimensions", "at most one time dimension");
  }

  auto f_it = doc.FindMember("filters");
  if (f_it != doc.MemberEnd()) {
    if (!f_it->value.IsArray()) return Bad("filters", "expected a list");
    q.filters_json = ToJson(f_it->value);
    if (!f_it->value.Empty()) {
      Filter all;
      all.op = Filter::Op::kAnd;
      for (const Value& f : f_it->value.GetArray()) {
        absl::StatusOr<Filter> parsed = ParseFilter(f, 0);
        if (!parsed.ok()) return parsed.status();
        all.children.push_back(*std::move(parsed));
      }
      if (all.children.size() == 1) {
        q.filter = std::move(all.children[0]);
      } else {
        q.filter = std::move(all);
      }
    }
  }

  auto o_it = doc.FindMember("order_by");
  if (o_it != doc.MemberEnd()) {
    if (!o_it->value.IsArray()) return Bad("order_by", "expected a list");
    for (const Value& o : o_it->value.GetArray()) {
      if (!o.IsArray() || o.Size() != 2 || !o[0].IsString() ||
          !o[1].IsString()) {
        return Bad("order_by", "expected [[name, \"asc\"|\"desc\"], …]");
      }
      std::string name = o[0].GetString();
      std::string dir = o[1].GetString();
      if (dir != "asc" && dir != "desc") {
        return Bad(
            "order_by",
            absl::StrCat("direction must be asc or desc, got '", dir, "'"));
      }
      bool known = std::find(q.metric_names.begin(), q.metric_names.end(),
                             name) != q.metric_names.end();
      for (const DimSpec& d : q.dims) known |= d.name == name;
      if (!known) {
        return Bad(
            "order_by",
            absl::StrCat("'", name, "' is not a queried metric or dimension"));
      }
      q.order_by.emplace_back(name, dir == "desc");
    }
  }

  auto p_it = doc.FindMember("pagination");
  if (p_it != doc.MemberEnd()) {
    if (!p_it->value.IsObject()) return Bad("pagination", "expected an object");
    auto l = p_it->value.FindMember("limit");
    if (l != p_it->value.MemberEnd()) {
      if (!l->value.IsInt64() || l->value.GetInt64() < 1 ||
          l->value.GetInt64() > 100000) {
        return Bad("pagination", "limit must be an integer from 1 to 100000");
      }
      q.limit = l->value.GetInt64();
    }
    auto off = p_it->value.FindMember("offset");
    if (off != p_it->value.MemberEnd()) {
      if (!off->value.IsInt64() || off->value.GetInt64() < 0) {
        return Bad("pagination", "offset must be a non-negative integer");
      }
      q.offset = off->value.GetInt64();
    }
  }

  auto i_it = doc.FindMember("include");
  if (i_it != doc.MemberEnd()) {
    if (!i_it->value.IsObject()) return Bad("include", "expected an object");
    auto tr = i_it->value.FindMember("total_rows");
    if (tr != i_it->value.MemberEnd()) {
      if (!tr->value.IsBool())
        return Bad("include", "total_rows: expected a boolean");
      q.total_rows = tr->value.GetBool();
    }
    auto imp = i_it->value.FindMember("imports");
    if (imp != i_it->value.MemberEnd() && !imp->value.IsNull()) {
      if (!imp->value.IsBool()) {
        return Bad("include", "imports: expected a boolean");
      }
      q.include_imports = imp->value.GetBool();
    }
    auto cmp = i_it->value.FindMember("comparisons");
    if (cmp != i_it->value.MemberEnd() && !cmp->value.IsNull()) {
      if (!cmp->value.IsObject() || !cmp->value.HasMember("mode") ||
          !cmp->value["mode"].IsString()) {
        return Bad("include", "comparisons: expected {\"mode\": …}");
      }
      std::string_view mode = cmp->value["mode"].GetString();
      if (mode == "previous_period") {
        q.compare = QuerySpec::Compare::kPreviousPeriod;
      } else if (mode == "year_over_year") {
        q.compare = QuerySpec::Compare::kYearOverYear;
      } else {
        return Bad("include",
                   absl::StrCat("comparisons: unknown mode '", AV(mode), "'"));
      }
    }
  }

  for (Metric m : q.metrics) {
    if (m == Metric::kPercentage) {
      bool has_breakdown = false;
      for (const DimSpec& d : q.dims)
        has_breakdown |= d.grain == TimeGrain::kNone;
      if (!has_breakdown) {
        return Bad("metrics", "percentage requires a non-time dimension");
      }
    }
    if (m == Metric::kConversionRate || m == Metric::kGroupConversionRate) {
      bool goal = false;
      for (const DimSpec& d : q.dims) {
        goal |= d.dim.id == DimId::kName || d.dim.id == DimId::kProp ||
                d.name == kGoalDimName;
      }
      if (q.filter) {
        std::vector<Dimension> fd;
        q.filter->CollectDims(&fd);
        for (const Dimension& d : fd) {
          goal |= d.id == DimId::kName || d.name == kGoalDimName;
        }
      }
      if (!goal) {
        return Bad(
            "metrics",
            absl::StrCat(m == Metric::kConversionRate ? "conversion_rate"
                                                      : "group_conversion_rate",
                         " requires an event:goal (or event:name) "
                         "filter or dimension"));
      }
    }
  }
  return q;
}

bool Filter::Eval(const ValueGetter& get) const {
  switch (op) {
    case Op::kAnd:
      for (const Filter& c : children) {
        if (!c.Eval(get)) return false;
      }
      return true;
    case Op::kOr:
      for (const Filter& c : children) {
        if (c.Eval(get)) return true;
      }
      return false;
    case Op::kNot:
      return !children[0].Eval(get);
    case Op::kHasDone:
    case Op::kHasNotDone:
      return false;  // resolved into kInSet before execution
    case Op::kInSet: {
      std::optional<std::string_view> v = get(dim);
      return v && set && set->contains(AV(*v));
    }
    default:
      break;
  }
  std::optional<std::string_view> v = get(dim);
  std::string lowered;
  if (v && !case_sensitive) {
    lowered = absl::AsciiStrToLower(AV(*v));
    v = lowered;
  }
  bool any = false;
  if (v) {
    switch (op) {
      case Op::kIs:
      case Op::kIsNot:
        for (const std::string& x : values) any |= (*v == x);
        break;
      case Op::kContains:
      case Op::kContainsNot:
        for (const std::string& x : values) any |= absl::StrContains(AV(*v), x);
        break;
      case Op::kMatches:
      case Op::kMatchesNot:
        for (const auto& re : regexes) {
          any |= RE2::PartialMatch(re2::StringPiece(v->data(), v->size()), *re);
        }
        break;
      default:
        break;
    }
  }
  const bool negated =
      op == Op::kIsNot || op == Op::kContainsNot || op == Op::kMatchesNot;
  return negated ? !any : any;
}

void Filter::CollectDims(std::vector<Dimension>* out) const {
  if (op == Op::kAnd || op == Op::kOr || op == Op::kNot) {
    for (const Filter& c : children) c.CollectDims(out);
    return;
  }
  if (op == Op::kHasDone || op == Op::kHasNotDone) {
    // Reads the visitor's other events: never a rollup dimension.
    Dimension v;
    v.name = std::string(kVisitorDimName);
    out->push_back(v);
    return;
  }
  out->push_back(dim);
}

}  // namespace analytics
