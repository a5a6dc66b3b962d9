// SMTP and webhook delivery with libcurl; MIME by hand (no packaged MIME
// writer in Debian fits: the message is two base64 parts and a few headers).
#include "libanalytics/jobs/delivery.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libanalytics/core/strings.h"

namespace analytics::jobs {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 &&
           static_cast<unsigned char>(c) < 0x7f;
  });
}

std::string EncodeHeader(std::string_view s) {
  if (IsAscii(s)) return std::string(s);
  return absl::StrCat("=?UTF-8?B?", absl::Base64Escape(AV(s)), "?=");
}

// Header values never carry CR or LF (no header injection).
std::string OneLine(std::string_view s) {
  std::string out(s);
  std::replace_if(
      out.begin(), out.end(), [](char c) { return c == '\r' || c == '\n'; },
      ' ');
  return out;
}

std::string Base64Lines(std::string_view s) {
  std::string b = absl::Base64Escape(AV(s));
  std::string out;
  for (size_t i = 0; i < b.size(); i += 76) {
    absl::StrAppend(&out, b.substr(i, 76), "\r\n");
  }
  return out;
}

struct Upload {
  const std::string* data;
  size_t pos = 0;
};

size_t ReadUpload(char* buf, size_t size, size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  size_t len = std::min(size * n, up->data->size() - up->pos);
  std::memcpy(buf, up->data->data() + up->pos, len);
  up->pos += len;
  return len;
}

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

struct CurlHandle {
  CURL* h = curl_easy_init();
  curl_slist* list = nullptr;
  ~CurlHandle() {
    if (list) curl_slist_free_all(list);
    if (h) curl_easy_cleanup(h);
  }
};

}  // namespace

std::string BuildMime(const Mail& mail, absl::Time date) {
  // The boundary cannot occur in base64 text (it holds '=' and '_' runs).
  const std::string boundary = "=_analytics_alt_boundary_=";
  std::string out;
  absl::StrAppend(&out, "From: ", OneLine(mail.from), "\r\n");
  absl::StrAppend(&out, "To: ", OneLine(mail.to), "\r\n");
  absl::StrAppend(&out, "Subject: ", EncodeHeader(OneLine(mail.subject)),
                  "\r\n");
  absl::StrAppend(&out, "Date: ",
                  absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", date,
                                   absl::UTCTimeZone()),
                  "\r\n");
  if (!mail.message_id.empty()) {
    absl::StrAppend(&out, "Message-ID: <", OneLine(mail.message_id), ">\r\n");
  }
  if (!mail.list_unsubscribe.empty()) {
    absl::StrAppend(&out, "List-Unsubscribe: <", OneLine(mail.list_unsubscribe),
                    ">\r\n",
                    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
  }
  absl::StrAppend(&out, "MIME-Version: 1.0\r\n",
                  "Content-Type: multipart/alternative; boundary=\"", boundary,
                  "\"\r\n\r\n");
  absl::StrAppend(&out, "--", boundary, "\r\n",
                  "Content-Type: text/plain; charset=utf-8\r\n",
                  "Content-Transfer-Encoding: base64\r\n\r\n",
                  Base64Lines(mail.text));
  absl::StrAppend(&out, "--", boundary, "\r\n",
                  "Content-Type: text/html; charset=utf-8\r\n",
                  "Content-Transfer-Encoding: base64\r\n\r\n",
                  Base64Lines(mail.html));
  absl::StrAppend(&out, "--", boundary, "--\r\n");
  return out;
}

absl::Status SendMail(const SmtpOptions& options, std::string_view to,
                      const std::string& mime) {
  if (options.url.empty()) {
    return absl::FailedPreconditionError(
        "smtp: no --smtp-url configured, email disabled");
  }
  GlobalInit();
  CurlHandle c;
  if (c.h == nullptr) return absl::InternalError("smtp: curl_easy_init failed");
  std::string from = absl::StrCat("<", OneLine(options.from), ">");
  c.list =
      curl_slist_append(nullptr, absl::StrCat("<", OneLine(to), ">").c_str());
  Upload up{&mime};
  char err[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c.h, CURLOPT_URL, options.url.c_str());
  curl_easy_setopt(c.h, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(c.h, CURLOPT_MAIL_RCPT, c.list);
  curl_easy_setopt(c.h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c.h, CURLOPT_READFUNCTION, ReadUpload);
  curl_easy_setopt(c.h, CURLOPT_READDATA, &up);
  curl_easy_setopt(c.h, CURLOPT_INFILESIZE_LARGE,
                   static_cast<curl_off_t>(mime.size()));
  curl_easy_setopt(c.h, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(
      c.h, CURLOPT_TIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options.timeout)));
  curl_easy_setopt(c.h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  if (options.starttls) curl_easy_setopt(c.h, CURLOPT_USE_SSL, CURLUSESSL_ALL);
  if (!options.ca_file.empty()) {
    curl_easy_setopt(c.h, CURLOPT_CAINFO, options.ca_file.c_str());
  }
  if (!options.user.empty()) {
    curl_easy_setopt(c.h, CURLOPT_USERNAME, options.user.c_str());
    curl_easy_setopt(c.h, CURLOPT_PASSWORD, options.password.c_str());
  }
  CURLcode rc = curl_easy_perform(c.h);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("smtp: ", err[0] ? err : curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

absl::Status PostWebhook(std::string_view url, const std::string& json,
                         absl::Duration timeout) {
  GlobalInit();
  CurlHandle c;
  if (c.h == nullptr) {
    return absl::InternalError("webhook: curl_easy_init failed");
  }
  std::string u(url);
  c.list = curl_slist_append(nullptr, "Content-Type: application/json");
  char err[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c.h, CURLOPT_URL, u.c_str());
  curl_easy_setopt(c.h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, c.list);
  curl_easy_setopt(c.h, CURLOPT_POSTFIELDS, json.c_str());
  curl_easy_setopt(c.h, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(json.size()));
  curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(c.h, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.h, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(c.h, CURLOPT_USERAGENT, "analyticsd-alerts/1");
  CURLcode rc = curl_easy_perform(c.h);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("webhook: ", err[0] ? err : curl_easy_strerror(rc)));
  }
  long code = 0;
  curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code >= 300) {
    return absl::UnavailableError(absl::StrCat("webhook: HTTP ", code));
  }
  return absl::OkStatus();
}

}  // namespace analytics::jobs
