// Delivery: email over SMTP and JSON webhooks, both through libcurl, plus the
// MIME message the email reports and alerts are sent as.
//
// Thread-safety: every function may be called from any thread (each call
// uses its own curl handle; curl_global_init runs once).
#ifndef ANALYTICS_JOBS_DELIVERY_H_
#define ANALYTICS_JOBS_DELIVERY_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace analytics::jobs {

struct SmtpOptions {
  // "smtp://host:port" (plain, or STARTTLS when `starttls`) or
  // "smtps://host:port" (TLS from the first byte). "" disables email.
  std::string url;
  bool starttls = false;
  std::string user;
  std::string password;  // from the environment only; never logged
  std::string from = "analytics@localhost";
  // PEM CA bundle to verify the server's certificate with ("": the system's
  // CAs). The certificate is always verified on smtps:// and STARTTLS.
  std::string ca_file;
  absl::Duration timeout = absl::Seconds(30);
};

// An email with a plain-text and an HTML part (multipart/alternative).
struct Mail {
  std::string from;
  std::string to;
  std::string subject;  // UTF-8; encoded (RFC 2047) when not ASCII
  std::string text;
  std::string html;
  std::string list_unsubscribe;  // URL for List-Unsubscribe, "" for none
  std::string message_id;        // without <>; stable per (job, period)
};

// The RFC 5322 message (CRLF line ends, base64 bodies).
std::string BuildMime(const Mail& mail, absl::Time date);

// Sends `mime` to `to`. Unavailable (with curl's reason, never the password)
// when the server cannot be reached or refuses; FailedPrecondition when
// options.url is empty.
absl::Status SendMail(const SmtpOptions& options, std::string_view to,
                      const std::string& mime);

// POSTs `json` with Content-Type application/json; Unavailable unless the
// answer is a 2xx.
absl::Status PostWebhook(std::string_view url, const std::string& json,
                         absl::Duration timeout);

}  // namespace analytics::jobs

#endif  // ANALYTICS_JOBS_DELIVERY_H_
