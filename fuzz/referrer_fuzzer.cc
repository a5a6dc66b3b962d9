// Fuzz target: URL splitting and normalisation, referrer -> source and UTM
// parameters. The input is "page URL \n referrer \n site domain".
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "libanalytics/core/utf8.h"
#include "libanalytics/enrich/referrer.h"
#include "libanalytics/enrich/url.h"

namespace {
std::string_view NextLine(std::string_view* text) {
  size_t nl = text->find('\n');
  std::string_view line = text->substr(0, nl);
  *text =
      nl == std::string_view::npos ? std::string_view() : text->substr(nl + 1);
  return line;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string_view page = NextLine(&text);
  std::string_view referrer = NextLine(&text);
  std::string_view domain = NextLine(&text);
  analytics::UrlParts parts = analytics::SplitUrl(page);
  (void)analytics::NormalizeHost(parts.host);
  (void)analytics::QueryParam(parts.query, "utm_source");
  analytics::Acquisition a =
      analytics::ParseAcquisition(page, referrer, domain);
  // Valid UTF-8 in, valid UTF-8 out: these become stored dimension values
  // that JSON answers carry (a "%FF" in a path used to be decoded into them).
  if (analytics::ValidUtf8(page) && analytics::ValidUtf8(referrer) &&
      analytics::ValidUtf8(domain)) {
    FUZZ_CHECK(analytics::ValidUtf8(a.source));
    FUZZ_CHECK(analytics::ValidUtf8(a.referrer));
    FUZZ_CHECK(analytics::ValidUtf8(a.utm_source));
    FUZZ_CHECK(analytics::ValidUtf8(a.utm_medium));
    FUZZ_CHECK(analytics::ValidUtf8(a.utm_campaign));
    FUZZ_CHECK(analytics::ValidUtf8(a.utm_term));
    FUZZ_CHECK(analytics::ValidUtf8(a.utm_content));
    FUZZ_CHECK(analytics::ValidUtf8(analytics::NormalizePath(parts.path)));
  }
  (void)analytics::SourceForHost(analytics::NormalizeHost(referrer));
  return 0;
}
