// Props text encoding; see props_codec.h.
#include "libanalytics/store/props_codec.h"

#include "absl/strings/str_cat.h"
#include "libanalytics/core/strings.h"
#include "rapidjson/document.h"

namespace analytics {

// Props encoding: a JSON object (keys in order, duplicates kept); NULL when
// there are no props.

namespace {

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (u < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 0xf]);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

void EncodeProps(const Props& props, std::string* out) {
  out->clear();
  out->push_back('{');
  bool first = true;
  for (const auto& [k, v] : props) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(k, out);
    out->push_back(':');
    AppendJsonString(v, out);
  }
  out->push_back('}');
}

absl::Status DecodeProps(std::string_view json, Props* props,
                         std::string_view store) {
  props->clear();
  if (json.empty()) return absl::OkStatus();
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::DataLossError(absl::StrCat(
        "store: ", AV(store), ": events.props is not a JSON object"));
  }
  props->reserve(doc.MemberCount());
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string key(it->name.GetString(), it->name.GetStringLength());
    std::string value;
    if (it->value.IsString()) {
      value.assign(it->value.GetString(), it->value.GetStringLength());
    } else {
      return absl::DataLossError(absl::StrCat(
          "store: ", AV(store), ": events.props has a non-string value"));
    }
    props->emplace_back(std::move(key), std::move(value));
  }
  return absl::OkStatus();
}

}  // namespace analytics
