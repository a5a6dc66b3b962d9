// Event record and block encodings; see event_codec.h.
#include "libanalytics/store/event_codec.h"

#include <string>
#include <string_view>
#include <utility>

#include "libanalytics/core/visit_fields.h"
#include "libanalytics/store/varint.h"

namespace analytics {
namespace {

constexpr uint8_t kEventFormat = 1;
constexpr uint8_t kBlockFormat = 1;

using codec::PutSigned;
using codec::PutStr;
using codec::PutVar;
using codec::Reader;

// EncodeEvent without clearing *out.
void AppendEvent(const Event& e, std::string* out) {
  out->push_back(static_cast<char>(kEventFormat));
  PutSigned(out, e.site_id);
  PutSigned(out, e.ts_ms);
  PutStr(out, e.name);
  PutStr(out, e.hostname);
  PutStr(out, e.page);
  PutVar(out, e.props.size());
  for (const auto& [k, v] : e.props) {
    PutStr(out, k);
    PutStr(out, v);
  }
  PutVar(out, e.visitor_id);
  PutVar(out, e.session_id);
  PutSigned(out, e.session_start_ms);
  for (auto field : kVisitFields) PutStr(out, e.visit.*field);
  uint8_t flags = (e.first_in_session ? 1 : 0) | (e.first_page ? 2 : 0) |
                  (e.first_name ? 4 : 0) | (e.s_bounce ? 8 : 0) |
                  (e.imported ? 16 : 0);
  out->push_back(static_cast<char>(flags));
  PutSigned(out, e.s_pageviews);
  PutSigned(out, e.s_events);
  PutSigned(out, e.s_duration_ms);
  PutStr(out, e.s_exit_page);
  PutSigned(out, e.d_bounce);
  PutSigned(out, e.d_duration_ms);
}

}  // namespace

void EncodeEvent(const Event& e, std::string* out) {
  out->clear();
  AppendEvent(e, out);
}

absl::Status DecodeEvent(std::string_view in, Event* e) {
  Reader r(in);
  uint8_t version = 0, flags = 0;
  uint64_t nprops = 0;
  bool ok = r.Byte(&version) && version == kEventFormat &&
            r.Signed(&e->site_id) && r.Signed(&e->ts_ms) && r.Str(&e->name) &&
            r.Str(&e->hostname) && r.Str(&e->page) && r.Var(&nprops) &&
            nprops <= in.size();
  if (ok) {
    e->props.clear();
    e->props.reserve(nprops);
    for (uint64_t i = 0; ok && i < nprops; ++i) {
      std::string k, v;
      ok = r.Str(&k) && r.Str(&v);
      e->props.emplace_back(std::move(k), std::move(v));
    }
  }
  ok = ok && r.Var(&e->visitor_id) && r.Var(&e->session_id) &&
       r.Signed(&e->session_start_ms);
  for (auto field : kVisitFields) ok = ok && r.Str(&(e->visit.*field));
  ok = ok && r.Byte(&flags) && r.Signed(&e->s_pageviews) &&
       r.Signed(&e->s_events) && r.Signed(&e->s_duration_ms) &&
       r.Str(&e->s_exit_page) && r.Signed(&e->d_bounce) &&
       r.Signed(&e->d_duration_ms) && r.done();
  if (!ok) return absl::DataLossError("store: malformed event record");
  e->first_in_session = flags & 1;
  e->first_page = flags & 2;
  e->first_name = flags & 4;
  e->s_bounce = flags & 8;
  e->imported = flags & 16;
  return absl::OkStatus();
}

void EncodeEventBlock(absl::Span<const Event* const> events, int64_t base_seq,
                      std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(kBlockFormat));
  PutVar(out, events.size());
  int64_t prev = base_seq;
  std::string record;
  for (const Event* e : events) {
    PutVar(out, static_cast<uint64_t>(e->seq - prev));
    prev = e->seq;
    record.clear();
    AppendEvent(*e, &record);
    PutStr(out, record);
  }
}

absl::Status DecodeEventBlock(std::string_view in, int64_t base_seq,
                              int32_t worker, std::vector<Event>* out) {
  Reader r(in);
  uint8_t format = 0;
  uint64_t n = 0;
  if (!r.Byte(&format) || format != kBlockFormat || !r.Var(&n) ||
      n > in.size()) {
    return absl::DataLossError("store: malformed event block header");
  }
  out->reserve(out->size() + n);
  int64_t seq = base_seq;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t delta = 0;
    std::string_view record;
    if (!r.Var(&delta) || !r.View(&record)) {
      return absl::DataLossError("store: malformed event block");
    }
    seq += static_cast<int64_t>(delta);
    Event& e = out->emplace_back();
    absl::Status st = DecodeEvent(record, &e);
    if (!st.ok()) {
      out->pop_back();
      return st;
    }
    e.seq = seq;
    e.worker = worker;
  }
  if (!r.done()) return absl::DataLossError("store: malformed event block");
  return absl::OkStatus();
}

}  // namespace analytics
