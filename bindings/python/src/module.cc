// libanalytics._libanalytics: Python bindings of analytics::Engine.
//
// Python objects are converted to C++ (EventInput, strings) while holding the
// GIL; every call that reaches the engine (storage I/O, queries, commits)
// then runs with the GIL released. Statuses become Python exceptions in one
// place, RaiseStatus(), with this mapping:
//
//   InvalidArgument, OutOfRange -> InvalidArgumentError(Error, ValueError)
//   NotFound                    -> NotFoundError(Error, LookupError)
//   AlreadyExists               -> AlreadyExistsError(Error)
//   anything else               -> Error (store failures, closed engine, ...)
//
// Every exception carries the engine's message ("ts: out of range ...") and
// a `code` attribute with the absl status code name ("INVALID_ARGUMENT").
#include <Python.h>
// Python.h first, then the rest.
#include <datetime.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "analytics/engine.h"
#include "analytics/event.h"
#include "analytics/store.h"
#include "libanalytics/query/goals.h"

namespace py = pybind11;

namespace analytics::python {
namespace {

// ---------------------------------------------------------------------------
// Exceptions.

PyObject* g_error = nullptr;           // libanalytics.Error
PyObject* g_invalid = nullptr;         // libanalytics.InvalidArgumentError
PyObject* g_not_found = nullptr;       // libanalytics.NotFoundError
PyObject* g_already_exists = nullptr;  // libanalytics.AlreadyExistsError

PyObject* ExceptionFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return g_invalid;
    case absl::StatusCode::kNotFound:
      return g_not_found;
    case absl::StatusCode::kAlreadyExists:
      return g_already_exists;
    default:
      return g_error;
  }
}

// The one place where a non-OK status becomes a Python exception.
[[noreturn]] void RaiseStatus(const absl::Status& status) {
  PyObject* type = ExceptionFor(status.code());
  py::object exc =
      py::reinterpret_borrow<py::object>(type)(std::string(status.message()));
  exc.attr("code") = absl::StatusCodeToString(status.code());
  PyErr_SetObject(type, exc.ptr());
  throw py::error_already_set();
}

template <typename T>
T ValueOrRaise(absl::StatusOr<T> r) {
  if (!r.ok()) RaiseStatus(r.status());
  return *std::move(r);
}

void OkOrRaise(const absl::Status& s) {
  if (!s.ok()) RaiseStatus(s);
}

absl::Status FieldError(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat(absl::string_view(field.data(), field.size()), ": ",
                   absl::string_view(problem.data(), problem.size())));
}

// ---------------------------------------------------------------------------
// Python values -> EventInput.

constexpr int64_t kMinTsSeconds = 946684800;   // 2000-01-01
constexpr int64_t kEndTsSeconds = 4133980800;  // 2101-01-01
constexpr int kMaxScreenWidth = 100000;

absl::Status GetString(PyObject* v, std::string_view field, std::string* out) {
  if (v == Py_None) return absl::OkStatus();
  if (!PyUnicode_Check(v)) return FieldError(field, "expected a string");
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(v, &size);
  if (data == nullptr) {
    PyErr_Clear();
    return FieldError(field, "not encodable as UTF-8");
  }
  out->assign(data, static_cast<size_t>(size));
  return absl::OkStatus();
}

absl::Status GetBool(PyObject* v, std::string_view field, bool* out) {
  if (v == Py_None) return absl::OkStatus();
  if (!PyBool_Check(v)) return FieldError(field, "expected a bool");
  *out = v == Py_True;
  return absl::OkStatus();
}

absl::Status SecondsToTime(double d, std::optional<absl::Time>* out) {
  if (!std::isfinite(d) || d < kMinTsSeconds || d >= kEndTsSeconds) {
    return FieldError("ts", "out of range (years 2000..2100)");
  }
  *out = absl::FromUnixMicros(std::llround(d * 1e6));
  return absl::OkStatus();
}

// The ISO 8601 forms the canonical event JSON accepts (ingest/canonical.cc).
absl::Status ParseIsoTs(absl::string_view s, std::optional<absl::Time>* out) {
  static constexpr const char* kFormats[] = {
      "%Y-%m-%d%ET%H:%M:%E*S%Ez", "%Y-%m-%d%ET%H:%M:%E*S%z",
      "%Y-%m-%d%ET%H:%M:%E*S",    "%Y-%m-%d%ET%H:%M%Ez",
      "%Y-%m-%d%ET%H:%M",         "%Y-%m-%d %H:%M:%E*S%Ez",
      "%Y-%m-%d %H:%M:%E*S",      "%Y-%m-%d",
  };
  if (!s.empty() && s[0] >= '0' && s[0] <= '9') {
    absl::Time t;
    for (const char* format : kFormats) {
      if (absl::ParseTime(format, s, absl::UTCTimeZone(), &t, nullptr)) {
        *out = t;
        return absl::OkStatus();
      }
    }
  }
  return FieldError("ts", "not an ISO 8601 date-time");
}

// ts: seconds since the epoch (int or float), datetime (naive = UTC) or an
// ISO 8601 string.
absl::Status GetTs(PyObject* v, std::optional<absl::Time>* out) {
  if (v == Py_None) return absl::OkStatus();
  if (PyFloat_Check(v)) return SecondsToTime(PyFloat_AS_DOUBLE(v), out);
  if (PyLong_Check(v) && !PyBool_Check(v)) {
    const double d = PyLong_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      return FieldError("ts", "out of range (years 2000..2100)");
    }
    return SecondsToTime(d, out);
  }
  if (PyDateTime_Check(v)) {
    if (PyDateTime_DATE_GET_TZINFO(v) == Py_None) {
      const absl::CivilSecond cs(
          PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v),
          PyDateTime_GET_DAY(v), PyDateTime_DATE_GET_HOUR(v),
          PyDateTime_DATE_GET_MINUTE(v), PyDateTime_DATE_GET_SECOND(v));
      absl::Time t = absl::FromCivil(cs, absl::UTCTimeZone()) +
                     absl::Microseconds(PyDateTime_DATE_GET_MICROSECOND(v));
      return SecondsToTime(static_cast<double>(absl::ToUnixMicros(t)) / 1e6,
                           out);
    }
    PyObject* r = PyObject_CallMethod(v, "timestamp", nullptr);
    if (r == nullptr) {
      PyErr_Clear();
      return FieldError("ts", "datetime.timestamp() failed");
    }
    const double d = PyFloat_AsDouble(r);
    Py_DECREF(r);
    return SecondsToTime(d, out);
  }
  if (PyUnicode_Check(v)) {
    std::string s;
    absl::Status st = GetString(v, "ts", &s);
    if (!st.ok()) return st;
    st = ParseIsoTs(s, out);
    if (!st.ok()) return st;
    return SecondsToTime(static_cast<double>(absl::ToUnixMicros(**out)) / 1e6,
                         out);
  }
  return FieldError("ts",
                    "expected seconds since the epoch, a datetime or an "
                    "ISO 8601 string");
}

absl::Status GetScreenWidth(PyObject* v, int* out) {
  if (v == Py_None) return absl::OkStatus();
  if (!PyLong_Check(v) || PyBool_Check(v)) {
    return FieldError("screen_width", "expected an integer");
  }
  int overflow = 0;
  const long long i = PyLong_AsLongLongAndOverflow(v, &overflow);
  if (overflow != 0 || i < 0 || i > kMaxScreenWidth) {
    return FieldError("screen_width", "out of range 0..100000");
  }
  *out = static_cast<int>(i);
  return absl::OkStatus();
}

// props: {str: str | int | float | bool | None}; None values are skipped,
// numbers are written like the JSON ingestion does (3.0 -> "3").
absl::Status GetProps(PyObject* v, Props* props) {
  if (v == Py_None) return absl::OkStatus();
  if (!PyDict_Check(v)) return FieldError("props", "expected a dict");
  props->reserve(static_cast<size_t>(PyDict_Size(v)));
  Py_ssize_t pos = 0;
  PyObject* key;
  PyObject* val;
  while (PyDict_Next(v, &pos, &key, &val)) {
    if (val == Py_None) continue;
    std::string k;
    if (!PyUnicode_Check(key)) return FieldError("props", "keys must be str");
    absl::Status s = GetString(key, "props", &k);
    if (!s.ok()) return s;
    std::string text;
    if (PyUnicode_Check(val)) {
      s = GetString(val, absl::StrCat("props.", k), &text);
      if (!s.ok()) return s;
    } else if (PyBool_Check(val)) {
      text = val == Py_True ? "true" : "false";
    } else if (PyLong_Check(val)) {
      PyObject* str = PyObject_Str(val);
      if (str == nullptr) {
        PyErr_Clear();
        return FieldError(absl::StrCat("props.", k), "bad integer");
      }
      s = GetString(str, "props", &text);
      Py_DECREF(str);
      if (!s.ok()) return s;
    } else if (PyFloat_Check(val)) {
      const double d = PyFloat_AS_DOUBLE(val);
      if (!std::isfinite(d)) {
        return FieldError(absl::StrCat("props.", k), "not a finite number");
      }
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof(buf), d);
      text.assign(buf, r.ptr);
    } else {
      return FieldError(absl::StrCat("props.", k),
                        "expected a str, int, float or bool");
    }
    props->emplace_back(std::move(k), std::move(text));
  }
  return absl::OkStatus();
}

// Fills `in` from a dict of EventInput fields (see the Engine.track
// docstring). Errors are InvalidArgument naming the field.
absl::Status ToEventInput(PyObject* dict, EventInput* in) {
  Py_ssize_t pos = 0;
  PyObject* key;
  PyObject* v;
  while (PyDict_Next(dict, &pos, &key, &v)) {
    if (!PyUnicode_Check(key)) {
      return absl::InvalidArgumentError("event keys must be str");
    }
    Py_ssize_t n = 0;
    const char* data = PyUnicode_AsUTF8AndSize(key, &n);
    if (data == nullptr) {
      PyErr_Clear();
      return absl::InvalidArgumentError("event key is not valid UTF-8");
    }
    const std::string_view k(data, static_cast<size_t>(n));
    absl::Status s;
    if (k == "site") {
      s = GetString(v, k, &in->site);
    } else if (k == "name") {
      s = GetString(v, k, &in->name);
    } else if (k == "url") {
      s = GetString(v, k, &in->url);
    } else if (k == "referrer") {
      s = GetString(v, k, &in->referrer);
    } else if (k == "ts") {
      s = GetTs(v, &in->ts);
    } else if (k == "ip") {
      s = GetString(v, k, &in->ip);
    } else if (k == "user_agent") {
      s = GetString(v, k, &in->user_agent);
    } else if (k == "props") {
      s = GetProps(v, &in->props);
    } else if (k == "screen_width") {
      s = GetScreenWidth(v, &in->screen_width);
    } else if (k == "locale") {
      s = GetString(v, k, &in->locale);
    } else if (k == "timezone") {
      s = GetString(v, k, &in->timezone);
    } else if (k == "country" || k == "country_hint") {
      s = GetString(v, k, &in->country_hint);
    } else if (k == "interactive") {
      s = GetBool(v, k, &in->interactive);
    } else if (k == "imported") {
      s = GetBool(v, k, &in->imported);
    } else {
      s = FieldError(k, "unknown event field");
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Results -> Python.

py::dict SiteDict(const Site& s) {
  py::dict d;
  d["id"] = s.id;
  d["domain"] = s.domain;
  d["short_id"] = s.short_id;
  d["timezone"] = s.timezone;
  d["created_ms"] = s.created_ms;
  d["allowed_origins"] = s.allowed_origins;
  return d;
}

// ---------------------------------------------------------------------------
// The benchmark workload, generated identically by bench_track_many.py.

constexpr const char* kBenchUserAgents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/"
    "605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
};

EventInput BenchEvent(const std::string& site, double base_ts, int64_t i) {
  EventInput e;
  e.site = site;
  e.url = absl::StrCat("https://", site, "/page/", i % 100);
  if (i % 3 == 0) e.referrer = "https://www.google.com/";
  e.ts = absl::FromUnixMicros(std::llround((base_ts + i * 0.01) * 1e6));
  e.ip =
      absl::StrCat("10.", (i >> 16) & 255, ".", (i >> 8) & 255, ".", i & 255);
  e.user_agent = kBenchUserAgents[i % 4];
  e.screen_width = 1440;
  e.locale = "en-US";
  return e;
}

// ---------------------------------------------------------------------------
// Engine.

class PyEngine {
 public:
  PyEngine(std::string store, std::string geoip, bool auto_create_sites,
           double session_timeout, double checkpoint_interval, int max_batch)
      : store_url_(std::move(store)) {
    Options o;
    o.store_url = store_url_;
    o.geoip_path = std::move(geoip);
    o.auto_create_sites = auto_create_sites;
    o.session_timeout = absl::Seconds(session_timeout);
    o.checkpoint_interval = absl::Seconds(checkpoint_interval);
    o.max_batch = max_batch;
    absl::StatusOr<std::unique_ptr<Engine>> e;
    {
      py::gil_scoped_release nogil;
      e = Engine::Open(o);
    }
    engine_ = ValueOrRaise(std::move(e));
  }

  ~PyEngine() {
    if (engine_ != nullptr && !closed_.exchange(true)) {
      py::gil_scoped_release nogil;
      (void)engine_->Close();
    }
  }

  py::dict Track(const py::kwargs& fields) {
    EventInput in;
    OkOrRaise(ToEventInput(fields.ptr(), &in));
    Engine* e = engine();
    absl::StatusOr<TrackResult> r;
    {
      py::gil_scoped_release nogil;
      r = e->Track(in);
    }
    TrackResult t = ValueOrRaise(std::move(r));
    py::dict d;
    d["accepted"] = t.accepted;
    d["dropped"] = t.dropped_reason.empty() ? py::object(py::none())
                                            : py::str(t.dropped_reason);
    return d;
  }

  py::dict TrackMany(const py::iterable& events, size_t batch_size) {
    if (batch_size == 0) {
      RaiseStatus(FieldError("batch_size", "must be positive"));
    }
    Engine* e = engine();
    int64_t accepted = 0;
    std::map<std::string, int64_t> dropped;
    std::vector<std::pair<size_t, std::string>> rejected;
    std::vector<EventInput> batch;
    std::vector<size_t> index;  // batch position -> position in `events`
    batch.reserve(batch_size);
    index.reserve(batch_size);

    auto commit = [&] {
      if (batch.empty()) return;
      absl::StatusOr<BatchResult> r;
      {
        py::gil_scoped_release nogil;
        r = e->TrackBatch(batch);
      }
      BatchResult b = ValueOrRaise(std::move(r));
      accepted += b.accepted;
      for (const auto& [reason, n] : b.dropped) dropped[reason] += n;
      for (const auto& [i, status] : b.rejected) {
        rejected.emplace_back(index[i], std::string(status.message()));
      }
      batch.clear();
      index.clear();
    };

    size_t i = 0;
    for (py::handle item : events) {
      absl::Status s;
      py::object owned;
      PyObject* dict = item.ptr();
      if (!PyDict_Check(dict)) {
        // Any other mapping: dict(item).
        PyObject* d = PyObject_CallOneArg(
            reinterpret_cast<PyObject*>(&PyDict_Type), dict);
        if (d == nullptr) {
          PyErr_Clear();
          s = absl::InvalidArgumentError("event: expected a dict");
        } else {
          owned = py::reinterpret_steal<py::object>(d);
          dict = d;
        }
      }
      if (s.ok()) {
        batch.emplace_back();
        s = ToEventInput(dict, &batch.back());
        if (s.ok()) {
          index.push_back(i);
        } else {
          batch.pop_back();
        }
      }
      if (!s.ok()) rejected.emplace_back(i, std::string(s.message()));
      ++i;
      if (batch.size() >= batch_size) commit();
    }
    commit();

    std::sort(rejected.begin(), rejected.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    py::dict d;
    d["accepted"] = accepted;
    d["dropped"] = dropped;
    py::list rej;
    for (auto& [idx, msg] : rejected) rej.append(py::make_tuple(idx, msg));
    d["rejected"] = rej;
    return d;
  }

  py::object Query(const py::object& query) {
    std::string body;
    if (py::isinstance<py::str>(query)) {
      body = query.cast<std::string>();
    } else if (py::isinstance<py::bytes>(query)) {
      body = query.cast<std::string>();
    } else {
      body = Json().attr("dumps")(query).cast<std::string>();
    }
    Engine* e = engine();
    absl::StatusOr<std::string> r;
    {
      py::gil_scoped_release nogil;
      r = e->Query(body);
    }
    std::string out = ValueOrRaise(std::move(r));
    return Json().attr("loads")(py::str(out));
  }

  py::dict AddSite(std::string domain, std::string timezone,
                   std::string allowed_origins, std::string short_id) {
    Site s;
    s.domain = std::move(domain);
    s.timezone = std::move(timezone);
    s.allowed_origins = std::move(allowed_origins);
    s.short_id = std::move(short_id);
    Engine* e = engine();
    absl::StatusOr<Site> r;
    {
      py::gil_scoped_release nogil;
      r = e->AddSite(s);
    }
    return SiteDict(ValueOrRaise(std::move(r)));
  }

  py::list Sites() {
    Engine* e = engine();
    absl::StatusOr<std::vector<Site>> r;
    {
      py::gil_scoped_release nogil;
      r = e->ListSites();
    }
    py::list out;
    for (const Site& s : ValueOrRaise(std::move(r))) out.append(SiteDict(s));
    return out;
  }

  py::dict FindSite(std::string domain_or_short_id) {
    Engine* e = engine();
    absl::StatusOr<Site> r;
    {
      py::gil_scoped_release nogil;
      r = e->FindSite(domain_or_short_id);
    }
    return SiteDict(ValueOrRaise(std::move(r)));
  }

  // Goals and funnels (libanalytics/query/goals.h). Documents are dicts or
  // JSON strings; answers are parsed JSON.
  std::string ToJsonText(const py::object& o) {
    if (py::isinstance<py::str>(o) || py::isinstance<py::bytes>(o)) {
      return o.cast<std::string>();
    }
    return Json().attr("dumps")(o).cast<std::string>();
  }
  py::object Loads(const std::string& s) {
    return Json().attr("loads")(py::str(s));
  }
  int64_t SiteIdOf(Engine* e, const std::string& site) {
    absl::StatusOr<Site> r;
    {
      py::gil_scoped_release nogil;
      r = e->FindSite(site);
    }
    return ValueOrRaise(std::move(r)).id;
  }
  py::object AddGoalPy(std::string site, const py::object& goal) {
    Engine* e = engine();
    const int64_t id = SiteIdOf(e, site);
    std::string body = ToJsonText(goal);
    absl::StatusOr<Goal> r;
    {
      py::gil_scoped_release nogil;
      r = AddGoal(e->store(), id, body);
    }
    return Loads(ValueOrRaise(std::move(r)).ToJson());
  }
  py::object GoalsPy(std::string site) {
    Engine* e = engine();
    const int64_t id = SiteIdOf(e, site);
    absl::StatusOr<std::vector<Goal>> r;
    {
      py::gil_scoped_release nogil;
      r = ListGoals(e->store(), id);
    }
    return Loads(GoalsJson(ValueOrRaise(std::move(r))))["goals"];
  }
  py::object AddFunnelPy(std::string site, const py::object& funnel) {
    Engine* e = engine();
    const int64_t id = SiteIdOf(e, site);
    std::string body = ToJsonText(funnel);
    absl::StatusOr<Funnel> r;
    {
      py::gil_scoped_release nogil;
      r = AddFunnel(e->store(), id, body);
    }
    return Loads(ValueOrRaise(std::move(r)).ToJson());
  }
  py::object FunnelsPy(std::string site) {
    Engine* e = engine();
    const int64_t id = SiteIdOf(e, site);
    absl::StatusOr<std::vector<Funnel>> r;
    {
      py::gil_scoped_release nogil;
      r = ListFunnels(e->store(), id);
    }
    return Loads(FunnelsJson(ValueOrRaise(std::move(r))))["funnels"];
  }
  void RemoveConfig(std::string site, int64_t doc_id, bool goal) {
    Engine* e = engine();
    const int64_t id = SiteIdOf(e, site);
    absl::Status st;
    {
      py::gil_scoped_release nogil;
      st = goal ? DeleteGoal(e->store(), id, doc_id)
                : DeleteFunnel(e->store(), id, doc_id);
    }
    OkOrRaise(st);
  }
  py::object FunnelPy(const py::object& query) {
    Engine* e = engine();
    std::string body = ToJsonText(query);
    absl::StatusOr<std::string> r;
    {
      py::gil_scoped_release nogil;
      r = QueryFunnel(
          body, [e](std::string_view id) { return e->FindSite(id); },
          absl::Now(), QuerySources{e->store(), nullptr});
    }
    return Loads(ValueOrRaise(std::move(r)));
  }

  void RemoveSite(std::string domain) {
    Engine* e = engine();
    absl::Status s;
    {
      py::gil_scoped_release nogil;
      s = e->RemoveSite(domain);
    }
    OkOrRaise(s);
  }

  py::dict UpdateSite(std::string domain, std::optional<std::string> timezone,
                      std::optional<std::string> allowed_origins) {
    Engine* e = engine();
    absl::StatusOr<Site> r;
    {
      py::gil_scoped_release nogil;
      r = e->FindSite(domain);
      if (r.ok()) {
        Site s = *r;
        if (timezone.has_value()) s.timezone = *timezone;
        if (allowed_origins.has_value()) s.allowed_origins = *allowed_origins;
        r = e->UpdateSite(s);
      }
    }
    return SiteDict(ValueOrRaise(std::move(r)));
  }

  int64_t LiveVisitors(std::string site, double window_seconds) {
    Engine* e = engine();
    absl::StatusOr<int64_t> r;
    {
      py::gil_scoped_release nogil;
      r = e->LiveVisitors(site, absl::Seconds(window_seconds));
    }
    return ValueOrRaise(std::move(r));
  }

  py::dict Stats() {
    Engine* e = engine();
    EngineStats s;
    {
      py::gil_scoped_release nogil;
      s = e->Stats();
    }
    py::dict d;
    d["accepted"] = s.accepted;
    d["dropped"] = s.dropped;
    d["live_sessions"] = s.live_sessions;
    d["pending_rollup_events"] = s.pending_rollup_events;
    d["commits"] = s.commits;
    d["queue_depth"] = s.queue_depth;
    d["commit_latency_sum_ms"] = s.commit_latency_sum_ms;
    return d;
  }

  void Flush() {
    Engine* e = engine();
    absl::Status s;
    {
      py::gil_scoped_release nogil;
      s = e->Flush();
    }
    OkOrRaise(s);
  }

  void Close() {
    if (closed_.exchange(true)) return;  // idempotent
    absl::Status s;
    {
      py::gil_scoped_release nogil;
      s = engine_->Close();
    }
    OkOrRaise(s);
  }

  bool closed() const { return closed_.load(); }
  const std::string& store_url() const { return store_url_; }

  // Times Engine::TrackBatch on n events generated in C++ (the workload of
  // bench_track_many.py), in batches of batch_size. Generation is not timed.
  py::dict NativeBenchmark(int64_t n, size_t batch_size, std::string site,
                           double base_ts) {
    if (batch_size == 0) {
      RaiseStatus(FieldError("batch_size", "must be positive"));
    }
    Engine* e = engine();
    int64_t accepted = 0;
    double seconds = 0;
    absl::Status status;
    {
      py::gil_scoped_release nogil;
      std::vector<EventInput> events;
      events.reserve(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        events.push_back(BenchEvent(site, base_ts, i));
      }
      const auto start = std::chrono::steady_clock::now();
      for (size_t i = 0; i < events.size() && status.ok(); i += batch_size) {
        const size_t len = std::min(batch_size, events.size() - i);
        absl::StatusOr<BatchResult> r =
            e->TrackBatch(absl::MakeConstSpan(events).subspan(i, len));
        if (r.ok()) {
          accepted += r->accepted;
        } else {
          status = r.status();
        }
      }
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                              start)
                    .count();
    }
    OkOrRaise(status);
    py::dict d;
    d["events"] = n;
    d["accepted"] = accepted;
    d["seconds"] = seconds;
    return d;
  }

 private:
  Engine* engine() {
    if (closed_.load()) {
      RaiseStatus(absl::FailedPreconditionError("engine is closed"));
    }
    return engine_.get();
  }

  static py::module_& Json() {
    // Imported once; never released (module objects live for the process).
    static py::module_* json = new py::module_(py::module_::import("json"));
    return *json;
  }

  std::string store_url_;
  std::unique_ptr<Engine> engine_;
  std::atomic<bool> closed_{false};
};

PyObject* NewException(const char* name, const char* doc, PyObject* bases) {
  PyObject* e = PyErr_NewExceptionWithDoc(name, doc, bases, nullptr);
  if (e == nullptr) throw py::error_already_set();
  return e;
}

}  // namespace
}  // namespace analytics::python

PYBIND11_MODULE(_libanalytics, m) {
  using namespace analytics::python;  // NOLINT(build/namespaces)
  PyDateTime_IMPORT;
  if (PyDateTimeAPI == nullptr) throw py::error_already_set();

  m.doc() =
      "Native part of the libanalytics package: privacy-friendly web "
      "analytics (libanalytics C++ engine). Import `libanalytics`, not this "
      "module.";

  g_error = NewException(
      "libanalytics.Error",
      "Base class of every libanalytics error. Backend failures (store "
      "unavailable, I/O errors), a closed engine and other failures are "
      "raised as Error itself. `code` holds the engine's status code name.",
      PyExc_Exception);
  PyObject* bases = Py_BuildValue("(OO)", g_error, PyExc_ValueError);
  g_invalid = NewException(
      "libanalytics.InvalidArgumentError",
      "Invalid input (an event field, a query, a site's domain or time zone, "
      "an unknown store URL scheme). Also a ValueError; the message starts "
      "with the field.",
      bases);
  Py_DECREF(bases);
  bases = Py_BuildValue("(OO)", g_error, PyExc_LookupError);
  g_not_found = NewException(
      "libanalytics.NotFoundError",
      "An unknown site (or other missing object). Also a LookupError.", bases);
  Py_DECREF(bases);
  g_already_exists = NewException(
      "libanalytics.AlreadyExistsError",
      "add_site() of a domain or short id that is taken.", g_error);
  m.attr("Error") = py::handle(g_error);
  m.attr("InvalidArgumentError") = py::handle(g_invalid);
  m.attr("NotFoundError") = py::handle(g_not_found);
  m.attr("AlreadyExistsError") = py::handle(g_already_exists);

  py::class_<PyEngine> engine(m, "Engine", R"doc(
An embedded analytics engine on one store.

    Engine(store="memory://", *, geoip="", auto_create_sites=False,
           session_timeout=1800.0, checkpoint_interval=1.0, max_batch=4096)

store: "memory://", "sqlite:///abs/path.db", "sqlite://rel/path.db",
"postgres://user@host:port/db" or "redis://host:port/db" (Redis needs AOF).
Unknown schemes raise InvalidArgumentError with the engine's message. geoip: optional MaxMind-format .mmdb country database.
auto_create_sites: track() of an unknown site creates it (time zone UTC)
instead of raising NotFoundError. Times are in seconds.

Use as a context manager to close it:

    with libanalytics.Engine("sqlite:///tmp/a.db") as e:
        e.add_site("example.com", timezone="Europe/Berlin")
        e.track(site="example.com", url="https://example.com/", ip="203.0.113.9",
                user_agent="Mozilla/5.0 ...")
        e.query({"site_id": "example.com", "date_range": "day",
                 "metrics": ["visitors"]})

Thread-safe: methods may be called from many threads; storage I/O and
queries run without the GIL.
)doc");
  engine
      .def(py::init<std::string, std::string, bool, double, double, int>(),
           py::arg("store") = "memory://", py::kw_only(), py::arg("geoip") = "",
           py::arg("auto_create_sites") = false,
           py::arg("session_timeout") = 1800.0,
           py::arg("checkpoint_interval") = 1.0, py::arg("max_batch") = 4096)
      .def("track", &PyEngine::Track, R"doc(
track(**event) -> {"accepted": bool, "dropped": str | None}

Validates, enriches, sessionizes and durably stores one event. Fields
(keyword arguments, all optional except site and url):
  site (str): the site's domain;  name (str): "pageview" (default) or a
  custom event name;  url (str): full page URL;  referrer (str);
  ts (float/int seconds since the epoch, datetime (naive = UTC) or ISO 8601
  string; default now);  ip (str);  user_agent (str);
  props (dict of str -> str/int/float/bool);  screen_width (int px);
  locale (str, "en-US");  timezone (str, browser IANA zone);
  country (str, ISO code hint);  interactive (bool, default True);
  imported (bool).
"dropped" names why a well-formed event was not stored ("bot:crawler").
Raises InvalidArgumentError (a ValueError) naming the bad field,
NotFoundError for an unknown site, Error when the store failed.
)doc")
      .def("track_many", &PyEngine::TrackMany, py::arg("events"),
           py::arg("batch_size") = 1000, R"doc(
track_many(events, batch_size=1000) -> {"accepted": int,
    "dropped": {reason: count}, "rejected": [(index, message), ...]}

Stores an iterable of event dicts (the fields of track()) in batches of
batch_size, one durable commit per batch. Invalid events (bad field, unknown
site, not a dict) are listed in "rejected" with their index in `events` and
do not fail the others. A store failure raises Error; earlier batches may
already be stored then.
)doc")
      .def("query", &PyEngine::Query, py::arg("query"), R"doc(
query(query: dict | str) -> dict

Answers a Plausible Stats API v2 query and returns the response as Python
objects: {"results": [{"dimensions": [...], "metrics": [...]}, ...],
"meta": {...}, "query": {...}}. `site_id` is the site's domain.
Raises InvalidArgumentError naming the bad field of the query.
)doc")
      .def("add_site", &PyEngine::AddSite, py::arg("domain"),
           py::arg("timezone") = "UTC", py::arg("allowed_origins") = "",
           py::arg("short_id") = "",
           "add_site(domain, timezone='UTC', allowed_origins='', "
           "short_id='') -> site dict\n\nCreates a site (short_id assigned "
           "when empty). AlreadyExistsError when taken, InvalidArgumentError "
           "for a bad domain or time zone.")
      .def("add_goal", &PyEngine::AddGoalPy, py::arg("site"), py::arg("goal"),
           "add_goal(site, {\"event_name\": …} | {\"page_path\": …}) -> "
           "dict: stores a goal (see docs/API.md)")
      .def("goals", &PyEngine::GoalsPy, py::arg("site"),
           "goals(site) -> list[dict]: the site's goals")
      .def(
          "remove_goal",
          [](PyEngine& self, std::string site, int64_t id) {
            self.RemoveConfig(std::move(site), id, true);
          },
          py::arg("site"), py::arg("id"), "remove_goal(site, id)")
      .def("add_funnel", &PyEngine::AddFunnelPy, py::arg("site"),
           py::arg("funnel"),
           "add_funnel(site, {\"name\": …, \"steps\": […]}) -> dict")
      .def("funnels", &PyEngine::FunnelsPy, py::arg("site"),
           "funnels(site) -> list[dict]: the site's funnels")
      .def(
          "remove_funnel",
          [](PyEngine& self, std::string site, int64_t id) {
            self.RemoveConfig(std::move(site), id, false);
          },
          py::arg("site"), py::arg("id"), "remove_funnel(site, id)")
      .def("funnel", &PyEngine::FunnelPy, py::arg("query"),
           "funnel(query: dict | str) -> dict: evaluates a funnel (the "
           "/api/v2/funnel body; see docs/API.md)")
      .def("sites", &PyEngine::Sites,
           "sites() -> list of site dicts {id, domain, short_id, timezone, "
           "created_ms, allowed_origins}")
      .def("find_site", &PyEngine::FindSite, py::arg("domain_or_short_id"),
           "find_site(domain_or_short_id) -> site dict; NotFoundError when "
           "unknown")
      .def("remove_site", &PyEngine::RemoveSite, py::arg("domain"),
           "remove_site(domain): deletes the site and all its data; "
           "NotFoundError when unknown")
      .def("update_site", &PyEngine::UpdateSite, py::arg("domain"),
           py::kw_only(), py::arg("timezone") = py::none(),
           py::arg("allowed_origins") = py::none(),
           "update_site(domain, *, timezone=None, allowed_origins=None) -> "
           "site dict: changes the given attributes")
      .def("live_visitors", &PyEngine::LiveVisitors, py::arg("site"),
           py::arg("window") = 300.0,
           "live_visitors(site, window=300.0) -> int: distinct visitors "
           "seen in the last `window` seconds")
      .def("stats", &PyEngine::Stats,
           "stats() -> dict of engine counters (accepted, dropped, "
           "live_sessions, pending_rollup_events, commits, queue_depth, "
           "commit_latency_sum_ms)")
      .def("flush", &PyEngine::Flush,
           "flush(): writes pending rollup deltas to the store")
      .def("close", &PyEngine::Close,
           "close(): flushes and stops the engine. Idempotent; later calls "
           "of other methods raise Error.")
      .def_property_readonly("closed", &PyEngine::closed, "True after close()")
      .def_property_readonly("store", &PyEngine::store_url,
                             "The store URL the engine was opened with")
      .def("__enter__", [](py::object self) { return self; })
      .def(
          "__exit__",
          [](PyEngine& self, py::object, py::object, py::object) {
            self.Close();
            return false;
          },
          py::arg("exc_type"), py::arg("exc_value"), py::arg("traceback"))
      .def("__repr__",
           [](const PyEngine& self) {
             return absl::StrCat("<libanalytics.Engine store='",
                                 self.store_url(), "'",
                                 self.closed() ? " closed" : "", ">");
           })
      .def("_track_many_native_benchmark", &PyEngine::NativeBenchmark,
           py::arg("n"), py::arg("batch_size") = 1000,
           py::arg("site") = "bench.example", py::arg("base_ts") = 0.0,
           "Internal: times Engine::TrackBatch on n events generated in C++ "
           "(the workload of bench_track_many.py).");
  engine.attr("__module__") = "libanalytics";
}
