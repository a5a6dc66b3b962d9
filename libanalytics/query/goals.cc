// Goals and funnels; see goals.h.
#include "libanalytics/query/goals.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/query/goals_cache.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace analytics {
namespace {

using rapidjson::Value;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

absl::Status Bad(std::string_view field, std::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(AV(field), ": ", AV(msg)));
}

std::string Str(const Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

void WriteStr(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

absl::Status CheckPattern(std::string_view field, std::string_view p) {
  if (p.empty() || p[0] != '/') return Bad(field, "must start with '/'");
  if (p.size() > kMaxUrlBytes) return Bad(field, "too long");
  return absl::OkStatus();
}

std::shared_ptr<RE2> CompilePattern(std::string_view p) {
  RE2::Options o;
  o.set_log_errors(false);
  return std::make_shared<RE2>(PagePatternRegex(p), o);
}

Filter Leaf(Filter::Op op, const char* dim_name,
            std::vector<std::string> vals) {
  Filter f;
  f.op = op;
  f.dim = *ParseDimension(dim_name);
  f.values = std::move(vals);
  return f;
}

}  // namespace

std::string PagePatternRegex(std::string_view p) {
  std::string re = "^";
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '*') {
      if (i + 1 < p.size() && p[i + 1] == '*') {
        re += ".*";
        ++i;
      } else {
        re += "[^/]*";
      }
    } else {
      re += RE2::QuoteMeta(re2::StringPiece(&p[i], 1));
    }
  }
  re += "$";
  return re;
}

bool Goal::Matches(const Event& e) const {
  if (is_page()) {
    return e.is_pageview() &&
           RE2::FullMatch(re2::StringPiece(e.page.data(), e.page.size()),
                          *page_re);
  }
  if (e.name != event_name) return false;
  for (const auto& [k, v] : props) {
    bool found = false;
    for (const auto& [ek, ev] : e.props) found |= ek == k && ev == v;
    if (!found) return false;
  }
  return true;
}

Filter Goal::ToFilter() const {
  Filter f;
  f.op = Filter::Op::kAnd;
  f.goal = true;
  if (is_page()) {
    f.children.push_back(Leaf(Filter::Op::kIs, "event:name", {"pageview"}));
    Filter m =
        Leaf(Filter::Op::kMatches, "event:page", {PagePatternRegex(page_path)});
    m.regexes.push_back(page_re);
    f.children.push_back(std::move(m));
  } else {
    f.children.push_back(Leaf(Filter::Op::kIs, "event:name", {event_name}));
    for (const auto& [k, v] : props) {
      Filter p;
      p.op = Filter::Op::kIs;
      p.dim = *ParseDimension(absl::StrCat("event:props:", k));
      p.values = {v};
      f.children.push_back(std::move(p));
    }
  }
  for (Filter& c : f.children) c.goal = true;
  if (f.children.size() == 1) return f.children[0];
  return f;
}

std::string Goal::ToJson() const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  if (id) {
    w.Key("id");
    w.Int64(id);
  }
  w.Key("display_name");
  WriteStr(w, display_name);
  if (is_page()) {
    w.Key("page_path");
    WriteStr(w, page_path);
  } else {
    w.Key("event_name");
    WriteStr(w, event_name);
    if (!props.empty()) {
      w.Key("props");
      w.StartObject();
      for (const auto& [k, v] : props) {
        WriteStr(w, k);
        WriteStr(w, v);
      }
      w.EndObject();
    }
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

absl::StatusOr<Goal> ParseGoal(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) {
    return Bad("body", "expected a JSON object");
  }
  Goal g;
  auto en = d.FindMember("event_name");
  auto pp = d.FindMember("page_path");
  const bool has_en = en != d.MemberEnd() && !en->value.IsNull();
  const bool has_pp = pp != d.MemberEnd() && !pp->value.IsNull();
  if (has_en == has_pp) {
    return Bad("event_name",
               "exactly one of event_name or page_path is required");
  }
  if (has_en) {
    if (!en->value.IsString() || en->value.GetStringLength() == 0) {
      return Bad("event_name", "expected a non-empty string");
    }
    g.event_name = Str(en->value);
    if (g.event_name.size() > kMaxNameLength)
      return Bad("event_name", "too long");
    if (g.event_name == "pageview" || g.event_name == "engagement") {
      return Bad("event_name",
                 "must be a custom event (use page_path for pageviews)");
    }
    auto pr = d.FindMember("props");
    if (pr != d.MemberEnd() && !pr->value.IsNull()) {
      if (!pr->value.IsObject()) return Bad("props", "expected an object");
      for (auto& m : pr->value.GetObject()) {
        if (!m.value.IsString()) return Bad("props", "values must be strings");
        if (m.name.GetStringLength() == 0) return Bad("props", "empty key");
        g.props.emplace_back(Str(m.name), Str(m.value));
      }
      if (g.props.size() > kMaxProps) return Bad("props", "too many props");
    }
  } else {
    if (!pp->value.IsString()) return Bad("page_path", "expected a string");
    g.page_path = Str(pp->value);
    absl::Status s = CheckPattern("page_path", g.page_path);
    if (!s.ok()) return s;
    if (d.HasMember("props")) return Bad("props", "only for event goals");
    g.page_re = CompilePattern(g.page_path);
    if (!g.page_re->ok()) return Bad("page_path", "invalid pattern");
  }
  auto dn = d.FindMember("display_name");
  if (dn != d.MemberEnd() && !dn->value.IsNull()) {
    if (!dn->value.IsString() || dn->value.GetStringLength() == 0 ||
        dn->value.GetStringLength() > 120) {
      return Bad("display_name", "expected a string of 1 to 120 bytes");
    }
    g.display_name = Str(dn->value);
  } else if (g.is_page()) {
    g.display_name = absl::StrCat("Visit ", g.page_path);
  } else {
    g.display_name = g.event_name;
    if (!g.props.empty()) {
      for (const auto& [k, v] : g.props) {
        absl::StrAppend(&g.display_name, " ", k, "=", v);
      }
    }
  }
  return g;
}

absl::StatusOr<Funnel> ParseFunnel(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) {
    return Bad("body", "expected a JSON object");
  }
  Funnel f;
  auto n = d.FindMember("name");
  if (n != d.MemberEnd() && !n->value.IsNull()) {
    if (!n->value.IsString() || n->value.GetStringLength() == 0 ||
        n->value.GetStringLength() > 120) {
      return Bad("name", "expected a string of 1 to 120 bytes");
    }
    f.name = Str(n->value);
  }
  auto st = d.FindMember("steps");
  if (st == d.MemberEnd() || !st->value.IsArray()) {
    return Bad("steps", "required list of 2 to 8 steps");
  }
  if (st->value.Size() < kMinFunnelSteps ||
      st->value.Size() > kMaxFunnelSteps) {
    return Bad("steps", "a funnel has 2 to 8 steps");
  }
  for (const Value& s : st->value.GetArray()) {
    FunnelStep step;
    if (!s.IsObject()) {
      return Bad("steps", "each step is {\"goal\"|\"page\"|\"event\": …}");
    }
    int set = 0;
    for (const char* k : {"goal", "page", "event"}) {
      auto m = s.FindMember(k);
      if (m == s.MemberEnd()) continue;
      if (!m->value.IsString() || m->value.GetStringLength() == 0) {
        return Bad("steps", absl::StrCat(k, ": expected a non-empty string"));
      }
      ++set;
      std::string v = Str(m->value);
      if (std::string_view(k) == "goal") step.goal = v;
      if (std::string_view(k) == "page") {
        absl::Status ps = CheckPattern("steps", v);
        if (!ps.ok()) return ps;
        step.page = v;
      }
      if (std::string_view(k) == "event") step.event = v;
      step.label =
          std::string_view(k) == "page" ? absl::StrCat("Visit ", v) : v;
    }
    if (set != 1) {
      return Bad("steps", "each step has exactly one of goal, page or event");
    }
    f.steps.push_back(std::move(step));
  }
  auto w = d.FindMember("window_seconds");
  if (w != d.MemberEnd() && !w->value.IsNull()) {
    if (!w->value.IsInt64() || w->value.GetInt64() < 1 ||
        w->value.GetInt64() > 90LL * 86400) {
      return Bad("window_seconds", "expected an integer from 1 to 7776000");
    }
    f.window_seconds = w->value.GetInt64();
  }
  return f;
}

std::string Funnel::ToJson() const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  if (id) {
    w.Key("id");
    w.Int64(id);
  }
  w.Key("name");
  WriteStr(w, name);
  w.Key("steps");
  w.StartArray();
  for (const FunnelStep& s : steps) {
    w.StartObject();
    if (!s.goal.empty()) {
      w.Key("goal");
      WriteStr(w, s.goal);
    } else if (!s.page.empty()) {
      w.Key("page");
      WriteStr(w, s.page);
    } else {
      w.Key("event");
      WriteStr(w, s.event);
    }
    w.EndObject();
  }
  w.EndArray();
  if (window_seconds) {
    w.Key("window_seconds");
    w.Int64(window_seconds);
  } else {
    w.Key("window");
    w.String("session");
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

absl::StatusOr<std::vector<Goal>> ListGoals(Store* store, int64_t site_id) {
  absl::StatusOr<std::vector<ConfigDoc>> docs =
      store->ListConfigDocs(kGoalDocKind, site_id);
  if (!docs.ok()) return docs.status();
  std::vector<Goal> out;
  for (const ConfigDoc& d : *docs) {
    if (d.site_id != site_id) continue;
    absl::StatusOr<Goal> g = ParseGoal(d.json);
    if (!g.ok()) continue;  // written by a newer version: skip
    g->id = d.id;
    out.push_back(*std::move(g));
  }
  return out;
}

absl::StatusOr<Goal> AddGoal(Store* store, int64_t site_id,
                             std::string_view json) {
  absl::StatusOr<Goal> g = ParseGoal(json);
  if (!g.ok()) return g.status();
  absl::StatusOr<std::vector<Goal>> have = ListGoals(store, site_id);
  if (!have.ok()) return have.status();
  for (const Goal& x : *have) {
    if (x.display_name == g->display_name) {
      return absl::AlreadyExistsError(absl::StrCat(
          "display_name: a goal named '", g->display_name, "' exists"));
    }
  }
  ConfigDoc doc;
  doc.kind = std::string(kGoalDocKind);
  doc.site_id = site_id;
  doc.json = g->ToJson();
  absl::StatusOr<ConfigDoc> stored = store->AddConfigDoc(doc);
  if (!stored.ok()) return stored.status();
  g->id = stored->id;
  return g;
}

absl::StatusOr<std::vector<Funnel>> ListFunnels(Store* store, int64_t site_id) {
  absl::StatusOr<std::vector<ConfigDoc>> docs =
      store->ListConfigDocs(kFunnelDocKind, site_id);
  if (!docs.ok()) return docs.status();
  std::vector<Funnel> out;
  for (const ConfigDoc& d : *docs) {
    if (d.site_id != site_id) continue;
    absl::StatusOr<Funnel> f = ParseFunnel(d.json);
    if (!f.ok()) continue;
    f->id = d.id;
    out.push_back(*std::move(f));
  }
  return out;
}

absl::StatusOr<Funnel> AddFunnel(Store* store, int64_t site_id,
                                 std::string_view json) {
  absl::StatusOr<Funnel> f = ParseFunnel(json);
  if (!f.ok()) return f.status();
  if (f->name.empty()) return Bad("name", "required");
  absl::StatusOr<std::vector<Funnel>> have = ListFunnels(store, site_id);
  if (!have.ok()) return have.status();
  for (const Funnel& x : *have) {
    if (x.name == f->name) {
      return absl::AlreadyExistsError(
          absl::StrCat("name: a funnel named '", f->name, "' exists"));
    }
  }
  ConfigDoc doc;
  doc.kind = std::string(kFunnelDocKind);
  doc.site_id = site_id;
  doc.json = f->ToJson();
  absl::StatusOr<ConfigDoc> stored = store->AddConfigDoc(doc);
  if (!stored.ok()) return stored.status();
  f->id = stored->id;
  return f;
}

namespace {
absl::Status DeleteDoc(Store* store, std::string_view kind, int64_t site_id,
                       int64_t id) {
  absl::StatusOr<std::vector<ConfigDoc>> docs =
      store->ListConfigDocs(kind, site_id);
  if (!docs.ok()) return docs.status();
  for (const ConfigDoc& d : *docs) {
    if (d.id == id && d.site_id == site_id) return store->DeleteConfigDoc(id);
  }
  return absl::NotFoundError(absl::StrCat("id: no ", AV(kind), " ", id));
}
}  // namespace

absl::Status DeleteGoal(Store* store, int64_t site_id, int64_t id) {
  return DeleteDoc(store, kGoalDocKind, site_id, id);
}
absl::Status DeleteFunnel(Store* store, int64_t site_id, int64_t id) {
  return DeleteDoc(store, kFunnelDocKind, site_id, id);
}

std::string GoalsJson(const std::vector<Goal>& goals) {
  std::string out = "{\"goals\":[";
  for (size_t i = 0; i < goals.size(); ++i) {
    if (i) out += ",";
    out += goals[i].ToJson();
  }
  return out + "]}";
}

std::string FunnelsJson(const std::vector<Funnel>& funnels) {
  std::string out = "{\"funnels\":[";
  for (size_t i = 0; i < funnels.size(); ++i) {
    if (i) out += ",";
    out += funnels[i].ToJson();
  }
  return out + "]}";
}

absl::StatusOr<std::vector<FunnelStepResult>> EvaluateFunnel(
    const Funnel& funnel, const std::vector<Goal>& goals, const QuerySpec& q,
    const QuerySources& src, std::string* source) {
  if (source) *source = "events";
  // Each step as a goal.
  std::vector<Goal> steps;
  for (const FunnelStep& s : funnel.steps) {
    if (!s.goal.empty()) {
      auto it = std::find_if(goals.begin(), goals.end(), [&](const Goal& g) {
        return g.display_name == s.goal;
      });
      if (it == goals.end()) {
        return Bad("steps", absl::StrCat("no goal named '", s.goal, "'"));
      }
      steps.push_back(*it);
    } else {
      Goal g;
      if (!s.page.empty()) {
        g.page_path = s.page;
        g.page_re = CompilePattern(s.page);
      } else {
        g.event_name = s.event;
      }
      steps.push_back(std::move(g));
    }
  }
  QuerySpec rq = q;
  if (!rq.goals) rq.goals = std::make_shared<std::vector<Goal>>(goals);
  absl::StatusOr<std::optional<Filter>> filter =
      ResolveQueryFilter(rq, q.from_ms, q.to_ms, src);
  if (!filter.ok()) return filter.status();
  {
    // From the funnel segments (goals_cache.h) when they can answer.
    absl::StatusOr<std::optional<std::vector<int64_t>>> counts =
        CachedFunnelCounts(src.store, q.site.id, q.from_ms, q.to_ms,
                           q.include_imports, steps, funnel.window_seconds,
                           *filter);
    if (!counts.ok()) return counts.status();
    if (*counts) {
      std::vector<FunnelStepResult> out(steps.size());
      for (size_t i = 0; i < out.size(); ++i) {
        out[i].label = funnel.steps[i].label;
        out[i].visitors = (**counts)[i];
      }
      if (source) *source = "segments";
      return out;
    }
  }

  struct Hit {
    int64_t ts;
    int64_t seq;
    uint16_t mask;
  };
  struct Sess {
    uint64_t visitor = 0;
    bool match = false;
    std::vector<Hit> hits;
  };
  absl::flat_hash_map<uint64_t, Sess> sessions;
  EventScan scan;
  scan.site_id = q.site.id;
  scan.from_ms = q.from_ms;
  scan.to_ms = q.to_ms;
  absl::Status st = src.store->ScanEvents(scan, [&](const Event& e) {
    if (e.is_engagement()) return true;
    if (!q.include_imports && e.imported) return true;
    if (e.ts_ms < q.from_ms || e.ts_ms >= q.to_ms) return true;
    uint16_t mask = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i].Matches(e)) mask |= 1u << i;
    }
    const bool m = !*filter || (*filter)->Eval([&](const Dimension& d) {
      return EventDimValue(e, d);
    });
    if (!mask && !m) return true;
    Sess& s = sessions[e.session_id];
    s.visitor = e.visitor_id;
    s.match |= m;
    if (mask) s.hits.push_back({e.ts_ms, e.seq, mask});
    return true;
  });
  if (!st.ok()) return st;

  const int n = static_cast<int>(steps.size());
  // Deepest step (count of steps completed) per visitor.
  absl::flat_hash_map<uint64_t, int> depth;
  auto greedy = [&](const std::vector<Hit>& hits, size_t start,
                    int64_t limit_ms) {
    int k = 0;
    for (size_t i = start; i < hits.size() && k < n; ++i) {
      if (hits[i].ts > limit_ms) break;
      if (hits[i].mask & (1u << k)) ++k;
    }
    return k;
  };
  auto order = [](const Hit& a, const Hit& b) {
    return a.ts != b.ts ? a.ts < b.ts : a.seq < b.seq;
  };
  if (funnel.window_seconds == 0) {
    for (auto& [id, s] : sessions) {
      if (!s.match) continue;
      std::sort(s.hits.begin(), s.hits.end(), order);
      int k = greedy(s.hits, 0, INT64_MAX);
      int& d = depth[s.visitor];
      d = std::max(d, k);
    }
  } else {
    absl::flat_hash_map<uint64_t, std::vector<Hit>> by_visitor;
    for (auto& [id, s] : sessions) {
      if (!s.match) continue;
      auto& v = by_visitor[s.visitor];
      v.insert(v.end(), s.hits.begin(), s.hits.end());
      depth.try_emplace(s.visitor, 0);
    }
    const int64_t win = funnel.window_seconds * 1000;
    for (auto& [vis, hits] : by_visitor) {
      std::sort(hits.begin(), hits.end(), order);
      int best = 0;
      for (size_t i = 0; i < hits.size() && best < n; ++i) {
        if (!(hits[i].mask & 1u)) continue;
        best = std::max(best, greedy(hits, i, hits[i].ts + win));
      }
      depth[vis] = best;
    }
  }
  std::vector<FunnelStepResult> out(n);
  for (int i = 0; i < n; ++i) out[i].label = funnel.steps[i].label;
  for (const auto& [v, d] : depth) {
    for (int i = 0; i < d; ++i) ++out[i].visitors;
  }
  return out;
}

absl::StatusOr<std::string> QueryFunnel(std::string_view json,
                                        const SiteResolver& sites,
                                        absl::Time now,
                                        const QuerySources& src) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) {
    return Bad("body", "expected a JSON object");
  }
  auto fm = d.FindMember("funnel");
  if (fm == d.MemberEnd()) {
    return Bad("funnel", "required: a stored funnel's name or {\"steps\":[…]}");
  }
  rapidjson::Document fdoc;
  fdoc.CopyFrom(fm->value, fdoc.GetAllocator());
  d.RemoveMember("funnel");
  if (!d.HasMember("metrics")) {
    Value m(rapidjson::kArrayType);
    m.PushBack("visitors", d.GetAllocator());
    d.AddMember("metrics", m, d.GetAllocator());
  }
  rapidjson::StringBuffer qb;
  Writer qw(qb);
  d.Accept(qw);
  absl::StatusOr<QuerySpec> q =
      ParseQuery(std::string_view(qb.GetString(), qb.GetSize()), sites, now);
  if (!q.ok()) return q.status();
  if (q->from_ms < 0) {
    return Bad("date_range", "\"all\" is not supported for funnels");
  }
  absl::StatusOr<std::vector<Goal>> goals = ListGoals(src.store, q->site.id);
  if (!goals.ok()) return goals.status();
  Funnel funnel;
  if (fdoc.IsString()) {
    absl::StatusOr<std::vector<Funnel>> fs = ListFunnels(src.store, q->site.id);
    if (!fs.ok()) return fs.status();
    std::string name = Str(fdoc);
    auto it = std::find_if(fs->begin(), fs->end(),
                           [&](const Funnel& f) { return f.name == name; });
    if (it == fs->end()) {
      return Bad("funnel", absl::StrCat("no funnel named '", name, "'"));
    }
    funnel = *it;
  } else {
    rapidjson::StringBuffer fb;
    Writer fw(fb);
    fdoc.Accept(fw);
    absl::StatusOr<Funnel> f =
        ParseFunnel(std::string_view(fb.GetString(), fb.GetSize()));
    if (!f.ok()) return f.status();
    funnel = *std::move(f);
  }
  std::string source;
  absl::StatusOr<std::vector<FunnelStepResult>> r =
      EvaluateFunnel(funnel, *goals, *q, src, &source);
  if (!r.ok()) return r.status();

  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.SetMaxDecimalPlaces(2);
  auto pct = [](int64_t a, int64_t b) {
    return b > 0 ? std::round(10000.0 * a / b) / 100.0 : 0.0;
  };
  const int64_t start = r->empty() ? 0 : (*r)[0].visitors;
  w.StartObject();
  w.Key("funnel");
  w.StartObject();
  w.Key("name");
  WriteStr(w, funnel.name);
  w.Key("window_seconds");
  w.Int64(funnel.window_seconds);
  w.Key("entering_visitors");
  w.Int64(start);
  w.Key("converted_visitors");
  w.Int64(r->empty() ? 0 : r->back().visitors);
  w.Key("conversion_rate");
  w.Double(pct(r->empty() ? 0 : r->back().visitors, start));
  w.Key("steps");
  w.StartArray();
  for (size_t i = 0; i < r->size(); ++i) {
    const int64_t v = (*r)[i].visitors;
    const int64_t prev = i ? (*r)[i - 1].visitors : v;
    w.StartObject();
    w.Key("label");
    WriteStr(w, (*r)[i].label);
    w.Key("visitors");
    w.Int64(v);
    w.Key("conversion_rate");
    w.Double(pct(v, start));
    w.Key("conversion_rate_step");
    w.Double(pct(v, prev));
    w.Key("dropoff");
    w.Int64(prev - v);
    w.Key("dropoff_percentage");
    w.Double(i ? pct(prev - v, prev) : 0.0);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.Key("meta");
  w.StartObject();
  w.Key("source");
  WriteStr(w, source);
  w.Key("time_zone");
  WriteStr(w, q->site.timezone);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace analytics

namespace analytics {

std::optional<std::string_view> EventDimValue(const Event& e,
                                              const Dimension& d) {
  if (d.name == kVisitorDimName) {
    return std::string_view(reinterpret_cast<const char*>(&e.visitor_id),
                            sizeof(e.visitor_id));
  }
  std::optional<std::string_view> v = RawValue(e, d);
  if (!v) return v;
  return DisplayValue(d.id, *v);
}

namespace {
bool FilterUsesGoals(const Filter& f) {
  if (f.dim.name == kGoalDimName && f.children.empty()) return true;
  for (const Filter& c : f.children) {
    if (FilterUsesGoals(c)) return true;
  }
  return false;
}
bool HasBehavioural(const Filter& f) {
  if (f.op == Filter::Op::kHasDone || f.op == Filter::Op::kHasNotDone) {
    return true;
  }
  for (const Filter& c : f.children) {
    if (HasBehavioural(c)) return true;
  }
  return false;
}

absl::Status ResolveBehavioural(Filter* f, const QuerySpec& q, int64_t from_ms,
                                int64_t to_ms, const QuerySources& src) {
  for (Filter& c : f->children) {
    absl::Status s = ResolveBehavioural(&c, q, from_ms, to_ms, src);
    if (!s.ok()) return s;
  }
  if (f->op != Filter::Op::kHasDone && f->op != Filter::Op::kHasNotDone) {
    return absl::OkStatus();
  }
  const Filter inner = f->children[0];
  auto set = std::make_shared<absl::flat_hash_set<std::string>>();
  // From the funnel segments (goals_cache.h) when they can answer.
  std::optional<std::vector<SegmentRow>> cached;
  if (FunnelCacheEnabled() && !q.force_raw) {
    SegmentQuery sq;
    sq.site_id = q.site.id;
    sq.from_ms = from_ms;
    sq.to_ms = to_ms;
    sq.include_imports = q.include_imports;
    sq.filter = inner;
    sq.want_visitor_ids = true;
    absl::StatusOr<std::optional<std::vector<SegmentRow>>> r =
        CachedGoalRows(src.store, sq);
    if (!r.ok()) return r.status();
    cached = *std::move(r);
  }
  if (cached) {
    for (const SegmentRow& row : *cached) {
      for (const uint64_t& id : row.visitor_ids) {
        set->emplace(reinterpret_cast<const char*>(&id), sizeof(id));
      }
    }
  } else {
    EventScan scan;
    scan.site_id = q.site.id;
    scan.from_ms = from_ms;
    scan.to_ms = to_ms;
    absl::Status s = src.store->ScanEvents(scan, [&](const Event& e) {
      if (e.is_engagement()) return true;
      if (!q.include_imports && e.imported) return true;
      if (e.ts_ms < from_ms || e.ts_ms >= to_ms) return true;
      if (inner.Eval([&](const Dimension& d) { return EventDimValue(e, d); })) {
        set->emplace(reinterpret_cast<const char*>(&e.visitor_id),
                     sizeof(e.visitor_id));
      }
      return true;
    });
    if (!s.ok()) return s;
  }
  Filter in;
  in.op = Filter::Op::kInSet;
  in.dim.name = std::string(kVisitorDimName);
  in.set = std::move(set);
  if (f->op == Filter::Op::kHasDone) {
    *f = std::move(in);
  } else {
    Filter n;
    n.op = Filter::Op::kNot;
    n.children.push_back(std::move(in));
    *f = std::move(n);
  }
  return absl::OkStatus();
}
}  // namespace

bool UsesGoals(const QuerySpec& q) {
  for (const DimSpec& d : q.dims) {
    if (d.name == kGoalDimName) return true;
  }
  return q.filter && FilterUsesGoals(*q.filter);
}

void ResolveGoalRefs(Filter* f, const std::vector<Goal>& goals) {
  for (Filter& c : f->children) ResolveGoalRefs(&c, goals);
  if (!f->children.empty() || f->dim.name != kGoalDimName) return;
  Filter pos = *f;
  bool negated = false;
  switch (f->op) {
    case Filter::Op::kIsNot:
      pos.op = Filter::Op::kIs, negated = true;
      break;
    case Filter::Op::kContainsNot:
      pos.op = Filter::Op::kContains, negated = true;
      break;
    case Filter::Op::kMatchesNot:
      pos.op = Filter::Op::kMatches, negated = true;
      break;
    default:
      break;
  }
  Filter any;
  any.op = Filter::Op::kOr;  // no children: matches nothing
  any.goal = true;
  for (const Goal& g : goals) {
    std::string_view name = g.display_name;
    if (pos.Eval([&](const Dimension&) -> std::optional<std::string_view> {
          return name;
        })) {
      any.children.push_back(g.ToFilter());
    }
  }
  if (negated) {
    Filter n;
    n.op = Filter::Op::kNot;
    n.goal = true;
    n.children.push_back(std::move(any));
    *f = std::move(n);
  } else {
    *f = std::move(any);
  }
}

absl::StatusOr<std::optional<Filter>> ResolveQueryFilter(
    const QuerySpec& q, int64_t from_ms, int64_t to_ms,
    const QuerySources& src) {
  if (!q.filter) return std::optional<Filter>();
  Filter f = *q.filter;
  if (FilterUsesGoals(f)) {
    std::vector<Goal> loaded;
    const std::vector<Goal>* goals = q.goals.get();
    if (!goals) {
      absl::StatusOr<std::vector<Goal>> l = ListGoals(src.store, q.site.id);
      if (!l.ok()) return l.status();
      loaded = *std::move(l);
      goals = &loaded;
    }
    ResolveGoalRefs(&f, *goals);
  }
  if (HasBehavioural(f)) {
    absl::Status s = ResolveBehavioural(&f, q, from_ms, to_ms, src);
    if (!s.ok()) return s;
  }
  return std::optional<Filter>(std::move(f));
}

}  // namespace analytics
