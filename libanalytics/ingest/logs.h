// Web-server access-log import: line parsers, page filters, a line reader
// (plain, gzip, stdin) and the importer that feeds Engine::TrackBatch with
// resumable progress.
//
// Formats:
//   combined   Apache/nginx: %h %l %u [%t] "%r" %>s %b "%{Referer}i"
//              "%{User-Agent}i" (nginx's default `combined` is the same;
//              extra fields after the user agent are ignored)
//   common     Apache/nginx: %h %l %u [%t] "%r" %>s %b
//   caddy-json Caddy's JSON access log: {"ts":…,"request":{"remote_ip"|
//              "client_ip","method","host","uri","headers":{"User-Agent":[…],
//              "Referer":[…]}},"status":…}
//   auto       decided per file from its first non-empty lines
//
// The parsers are hand-written std::string_view scanners: no packaged library
// parses these formats, and a regex per line would cost more than the rest of
// the import (millions of lines). Caddy's JSON goes through RapidJSON (a JSON
// parser, not a log parser), in situ.
//
// Resume: the byte offset and line count fully imported are remembered per
// (site, file identity) in the store's meta under
// "import:<site>:<16 hex digits>", where the identity is a stable hash of the
// file's first line (its decompressed content for .gz): a rotated or
// compressed copy of a log has the same identity as the original, so it is
// not imported twice; a log that grew imports only its new lines. Batches are
// pipelined (Engine::SubmitBatch: the next batch is read and prepared while
// the engine commits the previous one); the meta advances past a batch only
// after the engine acknowledged it durable, in order, and never past a
// failed batch. A crash between a commit and that meta write re-imports at
// most the batches then in flight (ImportOptions::in_flight + 1). stdin is
// never resumed.
#ifndef ANALYTICS_INGEST_LOGS_H_
#define ANALYTICS_INGEST_LOGS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "analytics/engine.h"
#include "analytics/event.h"

namespace analytics {

enum class LogFormat { kAuto, kCombined, kCommon, kCaddyJson };

// "combined", "nginx" (= combined), "common", "caddy-json", "auto".
std::optional<LogFormat> LogFormatFromName(std::string_view name);
std::string_view LogFormatName(LogFormat format);

// One parsed line. Views point into the line or into the scratch string given
// to the parser (unescaped fields); valid until the next parse.
struct LogRecord {
  std::string_view ip;
  std::string_view method;      // "" when the request line is not "METHOD …"
  std::string_view target;      // request target as logged, e.g. "/a?b=1"
  std::string_view host;        // "" unless the format logs it
  std::string_view referrer;    // "" for "-"
  std::string_view user_agent;  // "" for "-"
  int status = 0;
  absl::Time ts;
};

// Parses one line (no trailing newline) in `format` (not kAuto). On failure
// returns false and sets *error to a short reason.
bool ParseLogLine(LogFormat format, std::string_view line, LogRecord* out,
                  std::string* scratch, std::string_view* error);

// The format of the first non-empty lines (at most 20 are looked at): JSON
// objects with a "request" member are caddy-json; otherwise the format most
// of them parse in (combined preferred over common). nullopt when none parse.
std::optional<LogFormat> DetectLogFormat(
    const std::vector<std::string_view>& lines);

// Which parsed lines are pageviews.
struct LogFilter {
  bool include_assets = false;
  int status_min = 200;  // inclusive
  int status_max = 399;  // inclusive
};

// Parses "200-399" or "200".
std::optional<std::pair<int, int>> ParseStatusRange(std::string_view s);

// True when the path (query and fragment ignored) ends in a static-asset
// extension (.css .js .png .jpg … case-insensitive).
bool IsAssetPath(std::string_view path);

// Why a record is not a pageview: "method" (not GET), "status", "asset",
// "host" (logged host is another site); "" when it is one.
std::string_view SkipReason(const LogRecord& r, const LogFilter& filter,
                            std::string_view site);

// Fills `ev` (reusing its strings) as an imported pageview of `site`:
// url = "https://" + host + path where host is the logged host when it is the
// site (or a subdomain of it), else the site. Absolute-form targets
// ("http://host/p") keep only their path.
void ToEventInput(const LogRecord& r, std::string_view site, EventInput* ev);

// Reads lines from a file (plain or gzip, detected by content), or stdin for
// "-". Lines longer than max_line are returned with `too_long` set and their
// text truncated.
class LogReader {
 public:
  static constexpr size_t kDefaultMaxLine = 64 * 1024;
  static absl::StatusOr<std::unique_ptr<LogReader>> Open(
      const std::string& path, size_t max_line = kDefaultMaxLine);
  ~LogReader();

  struct Line {
    std::string_view text;   // without "\n" / "\r\n"
    bool terminated = true;  // false: the last line had no newline
    bool too_long = false;
  };
  // Next line; false at end of input (or on error, see status()).
  bool Next(Line* line);
  absl::Status status() const { return status_; }
  // Decompressed bytes consumed up to the end of the last line returned.
  int64_t offset() const { return offset_; }
  // Compressed bytes read so far (for progress against the file size).
  int64_t raw_offset() const;
  // Skips to decompressed byte `offset` (a line start).
  absl::Status Seek(int64_t offset);
  bool is_stdin() const { return stdin_; }
  // Size of the file on disk (compressed for .gz); 0 for stdin or pipes.
  int64_t file_size() const { return file_size_; }

 private:
  LogReader() = default;
  bool Fill();

  void* gz_ = nullptr;  // gzFile
  bool stdin_ = false;
  int64_t file_size_ = 0;
  size_t max_line_ = kDefaultMaxLine;
  std::vector<char> buf_;
  size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
  int64_t offset_ = 0;
  std::string long_;  // a too-long line's kept prefix
  absl::Status status_;
};

// Counts of one import (added up over files by the caller).
struct ImportTotals {
  int64_t lines = 0;     // lines read in this run (after the resume point)
  int64_t imported = 0;  // pageviews accepted by the engine
  // Reason -> count: method, status, asset, host, bot:*, duplicate (lines
  // skipped because an earlier run imported them), and the engine's other
  // drop reasons.
  std::map<std::string, int64_t> skipped;
  int64_t malformed = 0;
  std::vector<std::pair<int64_t, std::string>> malformed_shown;  // line, why
  int64_t rejected = 0;  // parsed, but the engine refused the event
  std::vector<std::pair<int64_t, std::string>> rejected_shown;
};

struct ImportOptions {
  std::string site;
  LogFormat format = LogFormat::kAuto;
  LogFilter filter;
  size_t batch_size = 4000;
  // Batches left committing in the engine while the next one is read and
  // prepared (Engine::SubmitBatch); 0 waits for each batch before reading
  // the next.
  size_t in_flight = 1;
  size_t max_shown = 5;  // malformed/rejected line numbers kept
  // Parse and filter only: no events tracked, no progress remembered
  // (`imported` then counts the pageviews that would be sent to the engine,
  // bots included). For measuring the parser alone.
  bool dry_run = false;
  // Called about every batch: lines and bytes (raw, see raw_offset) so far.
  std::function<void(int64_t lines, int64_t raw_bytes)> progress;
};

// What ImportLog did to one file.
struct FileImport {
  std::string file_id;  // 16 hex digits, "" for stdin or an empty file
  LogFormat format = LogFormat::kAuto;
  int64_t resumed_at_line = 0;  // lines an earlier run had imported
  int64_t end_offset = 0;       // decompressed bytes done after this run
  int64_t end_line = 0;
  bool partial_last_line = false;  // an unterminated, unparsable last line
                                   // was left for the next run
};

// Imports one open log into `engine` for options.site, resuming from and
// updating the store meta (files only). Adds to *totals.
absl::StatusOr<FileImport> ImportLog(Engine& engine, LogReader& reader,
                                     const ImportOptions& options,
                                     ImportTotals* totals);

// Stable 64-bit FNV-1a, for file identities.
uint64_t Fnv1a64(std::string_view s);

}  // namespace analytics

#endif  // ANALYTICS_INGEST_LOGS_H_
