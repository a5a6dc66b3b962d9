// analytics: command-line access to a libanalytics store.
//
//   analytics ingest --store URL [--create-sites] [--geoip PATH] [FILE|-]
//   analytics import --store URL --site DOMAIN [--format F] FILE… | -
//   analytics query  --store URL 'QUERY_JSON' | -
//   analytics sites add    --store URL DOMAIN [--timezone TZ]
//   analytics sites list   --store URL
//   analytics sites remove --store URL DOMAIN
//
// --store defaults to $ANALYTICS_STORE, then sqlite://./data/analytics.db.
// Exit codes: 0 success, 1 store or query error, 2 usage error.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "analytics/engine.h"
#include "analytics/event.h"
#include "libanalytics/ingest/logs.h"
#include "libanalytics/query/goals.h"
#include "server/common.h"

namespace analytics::server {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr size_t kBatchSize = 1000;
constexpr size_t kMaxRejectedShown = 20;

constexpr char kMainHelp[] = R"(usage: analytics COMMAND [OPTIONS]

commands:
  ingest   load JSON-lines events into a store
  import   import web-server access logs (Apache, nginx, Caddy) as pageviews
  query    answer a Stats API v2 query (JSON)
  sites    add, list or remove sites
  goals    add, list or remove a site's goals
  funnels  add, list, remove or evaluate a site's funnels

Every command takes --store URL (default: $ANALYTICS_STORE, then
sqlite://./data/analytics.db). `analytics COMMAND --help` for details.
)";

constexpr char kIngestHelp[] =
    R"(usage: analytics ingest [--store URL] [--create-sites] [--geoip PATH] [FILE|-]

Reads one canonical JSON event per line from FILE (or stdin for - or no
FILE), e.g.
  {"site":"example.com","url":"https://example.com/a","ts":1790812840,
   "ip":"203.0.113.9","user_agent":"Mozilla/5.0 ..."}
and stores them in batches of 1000. Blank lines are ignored. Prints a summary:
accepted, dropped (by reason) and rejected lines (the first 20 with errors).

  --store URL       store to write to
  --create-sites    create unknown sites (time zone UTC) instead of failing
  --geoip PATH      MaxMind-format country database (.mmdb);
                    default $ANALYTICS_GEOIP

Exit code 0 when the input was read completely (even with rejected lines),
1 on a store error, 2 on a usage error.
)";

constexpr char kImportHelp[] =
    R"(usage: analytics import [--store URL] --site DOMAIN [--format FORMAT]
                        [--include-assets] [--status LO-HI] FILE... | -

Imports web-server access logs as pageviews of DOMAIN (which must exist, see
`analytics sites add`). FILE may be gzip-compressed; - reads stdin.

  --site DOMAIN       the site the log belongs to
  --format FORMAT     combined (Apache/nginx default), nginx (= combined),
                      common, caddy-json, or auto (default: per file, from
                      its first lines)
  --include-assets    also import static files (.css .js .png .jpg .svg
                      .woff2 .txt .xml .json .pdf .zip ...)
  --status LO-HI      status codes to keep (default 200-399)
  --geoip PATH        MaxMind-format country database (.mmdb)
  --dry-run           parse and filter only; store nothing (imported then
                      counts the pageviews that would be sent, bots included)

Kept: GET requests with a status in range for pages (not static files) of
the site (the logged host, when the format has one, must be DOMAIN or a
subdomain). Bots are dropped by the engine and counted. Each pageview gets
url https://HOST/PATH, the referrer, the line's time, and is marked imported
(queries can leave imports out with "include":{"imports":false}).

Re-running is safe: the byte offset and line count imported are remembered
per file (identified by its first line, so a rotated or gzipped copy is the
same file) in the store; an interrupted import resumes, a grown log imports
only its new lines. stdin is not remembered: importing it twice counts twice.

Prints a summary: imported, skipped by reason, malformed lines (the first
few line numbers). Exit code 0 when every file was read, 1 on a store or
read error, 2 on a usage error.
)";

constexpr char kQueryHelp[] =
    R"(usage: analytics query [--store URL] 'QUERY_JSON' | -

Answers a Plausible Stats API v2 query body and prints the response JSON.
With -, the body is read from stdin. Example:
  analytics query '{"site_id":"example.com","date_range":"7d",
                    "metrics":["visitors","pageviews"]}'
)";

constexpr char kSitesHelp[] = R"(usage:
  analytics sites add    [--store URL] DOMAIN [--timezone TZ]
  analytics sites list   [--store URL]
  analytics sites remove [--store URL] DOMAIN

add prints the new site as JSON (id, domain, short_id, timezone); list prints
a JSON array of sites. --timezone is an IANA zone (default UTC).
)";

constexpr char kGoalsHelp[] = R"(usage:
  analytics goals   add    [--store URL] SITE JSON
  analytics goals   list   [--store URL] SITE
  analytics goals   remove [--store URL] SITE ID
  analytics funnels add    [--store URL] SITE JSON
  analytics funnels list   [--store URL] SITE
  analytics funnels remove [--store URL] SITE ID
  analytics funnels query  [--store URL] JSON

A goal is {"event_name":"Signup","props":{"plan":"pro"}} or
{"page_path":"/blog/*"} (optional "display_name"); a funnel is
{"name":"Checkout","steps":[{"goal":"Signup"},{"page":"/pricing"},…],
"window_seconds":86400} (2 to 8 steps; no window: within one session).
funnels query takes the /api/v2/funnel body (see docs/API.md).
)";

// Command-line arguments after the subcommand: known options and positionals.
struct Args {
  std::string store = EnvOr("ANALYTICS_STORE", kDefaultStore);
  std::string geoip = EnvOr("ANALYTICS_GEOIP", "");
  std::string timezone;
  std::string site;
  std::string format = "auto";
  std::string status = "200-399";
  bool include_assets = false;
  bool dry_run = false;
  bool create_sites = false;
  bool help = false;
  std::vector<std::string> positional;
};

// Parses `argv[first..argc)`. `allowed` lists the value options and flags
// this command accepts (besides --store and --help).
absl::StatusOr<Args> ParseArgs(int argc, char** argv, int first,
                               const std::vector<std::string_view>& allowed) {
  Args args;
  auto is_allowed = [&](std::string_view name) {
    if (name == "store") return true;
    for (std::string_view a : allowed) {
      if (a == name) return true;
    }
    return false;
  };
  bool only_positional = false;
  for (int i = first; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (only_positional || arg == "-" || arg.size() < 2 || arg[0] != '-') {
      args.positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      args.help = true;
      continue;
    }
    std::string_view name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string_view::npos) {
      value = std::string(name.substr(eq + 1));
      name = name.substr(0, eq);
    }
    if (!is_allowed(name)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("unknown option %s", arg));
    }
    if (name == "create-sites") {
      if (value.has_value()) {
        return absl::InvalidArgumentError("--create-sites takes no value");
      }
      args.create_sites = true;
      continue;
    }
    if (name == "include-assets" || name == "dry-run") {
      if (value.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("--%s takes no value", name));
      }
      (name == "dry-run" ? args.dry_run : args.include_assets) = true;
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(
            absl::StrFormat("option --%s needs a value", name));
      }
      value = argv[++i];
    }
    if (name == "store") {
      args.store = *value;
    } else if (name == "geoip") {
      args.geoip = *value;
    } else if (name == "timezone") {
      args.timezone = *value;
    } else if (name == "site") {
      args.site = *value;
    } else if (name == "format") {
      args.format = *value;
    } else if (name == "status") {
      args.status = *value;
    }
  }
  if (args.store.empty()) {
    return absl::InvalidArgumentError("--store must not be empty");
  }
  return args;
}

int Usage(absl::string_view message, absl::string_view help) {
  std::fprintf(stderr, "analytics: %.*s\n\n%.*s",
               static_cast<int>(message.size()), message.data(),
               static_cast<int>(help.size()), help.data());
  return kExitUsage;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "analytics: %s\n", status.ToString().c_str());
  return kExitError;
}

absl::StatusOr<std::unique_ptr<Engine>> OpenEngine(const Args& args) {
  EnsureStoreDir(args.store);
  Options options;
  options.store_url = args.store;
  options.geoip_path = args.geoip;
  options.auto_create_sites = args.create_sites;
  return Engine::Open(options);
}

// Closes the engine and reports its error, if any, as the exit code.
int CloseEngine(Engine& engine, int code) {
  absl::Status st = engine.Close();
  if (!st.ok()) return Fail(st);
  return code;
}

std::string OneLine(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"\n", " "}, {"\r", " "}});
}

// ---------------------------------------------------------------- ingest ---

// A progress line on stderr, redrawn about 5 times a second.
class Progress {
 public:
  Progress(bool enabled, int64_t total_bytes)
      : enabled_(enabled),
        total_bytes_(total_bytes),
        start_(Clock::now()),
        last_(start_) {}

  void Update(int64_t lines, int64_t bytes, bool force = false) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? lines / secs : 0;
    std::string line = absl::StrFormat("%d lines  %.0f lines/s", lines, rate);
    if (total_bytes_ > 0) {
      double frac = std::min(1.0, static_cast<double>(bytes) / total_bytes_);
      line += absl::StrFormat("  %.1f%%", frac * 100);
      if (frac > 0 && secs > 0.5) {
        int64_t eta = static_cast<int64_t>(secs / frac - secs + 0.5);
        line += absl::StrFormat("  ETA %d:%02d", eta / 60, eta % 60);
      }
    }
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  void Clear() {
    if (!drawn_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  int64_t total_bytes_;
  Clock::time_point start_;
  Clock::time_point last_;
  bool drawn_ = false;
};

struct IngestTotals {
  int64_t lines = 0;
  int64_t accepted = 0;
  std::map<std::string, int64_t> dropped;
  int64_t rejected = 0;
  std::vector<std::pair<int64_t, std::string>> rejected_shown;

  void Reject(int64_t line, const absl::Status& status) {
    ++rejected;
    if (rejected_shown.size() < kMaxRejectedShown) {
      rejected_shown.emplace_back(line, OneLine(status.message()));
    }
  }
};

void PrintSummary(const IngestTotals& t) {
  int64_t dropped = 0;
  for (const auto& [reason, n] : t.dropped) dropped += n;
  std::printf("accepted %lld\n", static_cast<long long>(t.accepted));
  std::printf("dropped %lld\n", static_cast<long long>(dropped));
  for (const auto& [reason, n] : t.dropped) {
    std::printf("  %s %lld\n", reason.c_str(), static_cast<long long>(n));
  }
  std::printf("rejected %lld\n", static_cast<long long>(t.rejected));
  for (const auto& [line, message] : t.rejected_shown) {
    std::printf("  line %lld: %s\n", static_cast<long long>(line),
                message.c_str());
  }
  if (t.rejected > static_cast<int64_t>(t.rejected_shown.size())) {
    std::printf("  ... and %lld more\n",
                static_cast<long long>(t.rejected - t.rejected_shown.size()));
  }
  std::fflush(stdout);
}

// Sends one batch; `line_numbers[i]` is the input line of `events[i]`.
// Sends events[0, *used) and empties the batch (*used = 0; the EventInputs
// stay, to be parsed into again).
absl::Status SendBatch(Engine& engine, const std::vector<EventInput>& events,
                       size_t* used, std::vector<int64_t>& line_numbers,
                       IngestTotals& t) {
  if (*used == 0) return absl::OkStatus();
  absl::StatusOr<BatchResult> r =
      engine.TrackBatch(absl::MakeConstSpan(events).first(*used));
  if (!r.ok()) return r.status();
  t.accepted += r->accepted;
  for (const auto& [reason, n] : r->dropped) t.dropped[reason] += n;
  for (const auto& [index, status] : r->rejected) {
    t.Reject(index < line_numbers.size() ? line_numbers[index] : 0, status);
  }
  *used = 0;
  line_numbers.clear();
  return absl::OkStatus();
}

int Ingest(int argc, char** argv) {
  absl::StatusOr<Args> args =
      ParseArgs(argc, argv, 2, {"create-sites", "geoip"});
  if (!args.ok()) return Usage(args.status().message(), kIngestHelp);
  if (args->help) {
    std::fputs(kIngestHelp, stdout);
    return kExitOk;
  }
  if (args->positional.size() > 1) {
    return Usage("ingest takes at most one input file", kIngestHelp);
  }
  std::string path = args->positional.empty() ? "-" : args->positional[0];
  FILE* in = stdin;
  if (path != "-") {
    in = std::fopen(path.c_str(), "rb");
    if (in == nullptr) {
      std::fprintf(stderr, "analytics: cannot open %s: %s\n", path.c_str(),
                   std::strerror(errno));
      return kExitUsage;
    }
  }
  int64_t total_bytes = 0;
  if (struct stat st; fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)) {
    total_bytes = st.st_size;
  }

  absl::StatusOr<std::unique_ptr<Engine>> engine = OpenEngine(*args);
  if (!engine.ok()) {
    if (in != stdin) std::fclose(in);
    return Fail(engine.status());
  }

  Progress progress(isatty(STDERR_FILENO) != 0, total_bytes);
  auto start = std::chrono::steady_clock::now();
  IngestTotals totals;
  // Lines are parsed into the batch's EventInputs in place (their strings
  // keep their capacity from batch to batch).
  std::vector<EventInput> events;
  size_t used = 0;
  std::vector<int64_t> line_numbers;
  events.reserve(kBatchSize);
  line_numbers.reserve(kBatchSize);
  char* buf = nullptr;
  size_t cap = 0;
  int64_t bytes = 0;
  absl::Status store_error;
  ssize_t n;
  while ((n = getline(&buf, &cap, in)) >= 0) {
    ++totals.lines;
    bytes += n;
    std::string_view line(buf, static_cast<size_t>(n));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r' ||
                             line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      line.remove_prefix(1);
    }
    if (line.empty()) continue;
    if (used == events.size()) events.emplace_back();
    absl::Status parsed = ParseEventJson(line, &events[used]);
    if (!parsed.ok()) {
      totals.Reject(totals.lines, parsed);
    } else {
      ++used;
      line_numbers.push_back(totals.lines);
    }
    if (used >= kBatchSize) {
      store_error = SendBatch(**engine, events, &used, line_numbers, totals);
      if (!store_error.ok()) break;
    }
    progress.Update(totals.lines, bytes);
  }
  bool read_error = store_error.ok() && std::ferror(in);
  int read_errno = errno;
  std::free(buf);
  if (in != stdin) std::fclose(in);
  if (store_error.ok()) {
    store_error = SendBatch(**engine, events, &used, line_numbers, totals);
  }
  if (store_error.ok()) store_error = (*engine)->Flush();
  progress.Update(totals.lines, bytes, /*force=*/true);
  progress.Clear();

  PrintSummary(totals);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::fprintf(stderr, "analytics: read %lld lines in %.2f s\n",
               static_cast<long long>(totals.lines), secs);
  if (!store_error.ok()) {
    std::fprintf(stderr, "analytics: store error after line %lld: %s\n",
                 static_cast<long long>(totals.lines),
                 store_error.ToString().c_str());
    (*engine)->Close().IgnoreError();
    return kExitError;
  }
  if (read_error) {
    std::fprintf(stderr, "analytics: read error on %s: %s\n", path.c_str(),
                 std::strerror(read_errno));
    (*engine)->Close().IgnoreError();
    return kExitError;
  }
  return CloseEngine(**engine, kExitOk);
}

// ---------------------------------------------------------------- import ---

void PrintImportSummary(const ImportTotals& t) {
  int64_t skipped = 0;
  for (const auto& [reason, n] : t.skipped) skipped += n;
  std::printf("lines %lld\n", static_cast<long long>(t.lines));
  std::printf("imported %lld\n", static_cast<long long>(t.imported));
  std::printf("skipped %lld\n", static_cast<long long>(skipped));
  for (const auto& [reason, n] : t.skipped) {
    std::printf("  %s %lld\n", reason.c_str(), static_cast<long long>(n));
  }
  auto shown = [](const char* what, int64_t count,
                  const std::vector<std::pair<int64_t, std::string>>& lines) {
    std::printf("%s %lld\n", what, static_cast<long long>(count));
    for (const auto& [line, message] : lines) {
      std::printf("  line %lld: %s\n", static_cast<long long>(line),
                  OneLine(message).c_str());
    }
    if (count > static_cast<int64_t>(lines.size())) {
      std::printf("  ... and %lld more\n",
                  static_cast<long long>(count - lines.size()));
    }
  };
  shown("malformed", t.malformed, t.malformed_shown);
  shown("rejected", t.rejected, t.rejected_shown);
  std::fflush(stdout);
}

int Import(int argc, char** argv) {
  absl::StatusOr<Args> args = ParseArgs(
      argc, argv, 2,
      {"site", "format", "include-assets", "status", "geoip", "dry-run"});
  if (!args.ok()) return Usage(args.status().message(), kImportHelp);
  if (args->help) {
    std::fputs(kImportHelp, stdout);
    return kExitOk;
  }
  if (args->site.empty()) return Usage("import needs --site", kImportHelp);
  if (args->positional.empty()) {
    return Usage("import needs at least one FILE (or -)", kImportHelp);
  }
  std::optional<LogFormat> format = LogFormatFromName(args->format);
  if (!format) {
    return Usage(absl::StrFormat("unknown --format %s", args->format),
                 kImportHelp);
  }
  std::optional<std::pair<int, int>> status = ParseStatusRange(args->status);
  if (!status) {
    return Usage("--status wants LO-HI, e.g. 200-399", kImportHelp);
  }
  // Open every file first: a typo fails before anything is imported.
  std::vector<std::unique_ptr<LogReader>> readers;
  int64_t total_bytes = 0;
  bool unknown_size = false;
  for (const std::string& path : args->positional) {
    absl::StatusOr<std::unique_ptr<LogReader>> r = LogReader::Open(path);
    if (!r.ok()) {
      std::fprintf(stderr, "analytics: %s\n",
                   std::string(r.status().message()).c_str());
      return kExitUsage;
    }
    total_bytes += (*r)->file_size();
    unknown_size |= (*r)->file_size() == 0 && (*r)->is_stdin();
    readers.push_back(*std::move(r));
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = OpenEngine(*args);
  if (!engine.ok()) return Fail(engine.status());
  absl::StatusOr<Site> site = (*engine)->FindSite(args->site);
  if (!site.ok()) {
    Fail(site.status());
    (*engine)->Close().IgnoreError();
    return kExitError;
  }

  Progress progress(isatty(STDERR_FILENO) != 0, unknown_size ? 0 : total_bytes);
  auto start = std::chrono::steady_clock::now();
  ImportTotals totals;
  ImportOptions options;
  options.site = site->domain;
  options.format = *format;
  options.filter.include_assets = args->include_assets;
  options.filter.status_min = status->first;
  options.filter.status_max = status->second;
  options.dry_run = args->dry_run;
  // Import batches left committing while the next is prepared (benchmarks
  // compare 0 and 1; see docs/BENCHMARKS.md "Log import").
  if (const char* v = std::getenv("ANALYTICS_IMPORT_IN_FLIGHT")) {
    int64_t n = 0;
    if (absl::SimpleAtoi(v, &n) && n >= 0 && n <= 8) {
      options.in_flight = static_cast<size_t>(n);
    }
  }
  int64_t bytes_before = 0;
  options.progress = [&](int64_t lines, int64_t raw_bytes) {
    progress.Update(lines, bytes_before + raw_bytes);
  };
  int code = kExitOk;
  for (size_t i = 0; i < readers.size(); ++i) {
    const std::string& path = args->positional[i];
    absl::StatusOr<FileImport> r =
        ImportLog(**engine, *readers[i], options, &totals);
    bytes_before += readers[i]->file_size();
    progress.Clear();
    if (!r.ok()) {
      std::fprintf(stderr, "analytics: %s: %s\n", path.c_str(),
                   r.status().ToString().c_str());
      code = kExitError;
      if (!absl::IsInvalidArgument(r.status())) break;  // store/read error
      continue;
    }
    std::fprintf(stderr, "analytics: %s: %s", path.c_str(),
                 std::string(LogFormatName(r->format)).c_str());
    if (r->resumed_at_line > 0) {
      std::fprintf(stderr, ", resumed after line %lld",
                   static_cast<long long>(r->resumed_at_line));
    }
    std::fprintf(stderr, ", done up to line %lld (byte %lld)",
                 static_cast<long long>(r->end_line),
                 static_cast<long long>(r->end_offset));
    if (r->partial_last_line) {
      std::fprintf(stderr, "; incomplete last line left for the next run");
    }
    std::fprintf(stderr, "\n");
  }
  readers.clear();
  absl::Status flushed = (*engine)->Flush();
  progress.Update(totals.lines, bytes_before, /*force=*/true);
  progress.Clear();
  PrintImportSummary(totals);
  if (args->dry_run) std::printf("dry run: nothing stored\n");
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::fprintf(stderr, "analytics: read %lld lines in %.2f s (%.0f lines/s)\n",
               static_cast<long long>(totals.lines), secs,
               secs > 0 ? totals.lines / secs : 0.0);
  if (!flushed.ok()) {
    Fail(flushed);
    (*engine)->Close().IgnoreError();
    return kExitError;
  }
  return CloseEngine(**engine, code);
}

// ----------------------------------------------------------------- query ---

int Query(int argc, char** argv) {
  absl::StatusOr<Args> args = ParseArgs(argc, argv, 2, {});
  if (!args.ok()) return Usage(args.status().message(), kQueryHelp);
  if (args->help) {
    std::fputs(kQueryHelp, stdout);
    return kExitOk;
  }
  if (args->positional.size() != 1) {
    return Usage("query takes exactly one argument: the query JSON or -",
                 kQueryHelp);
  }
  std::string body = args->positional[0];
  if (body == "-") {
    body.assign(std::istreambuf_iterator<char>(std::cin),
                std::istreambuf_iterator<char>());
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = OpenEngine(*args);
  if (!engine.ok()) return Fail(engine.status());
  absl::StatusOr<std::string> result = (*engine)->Query(body);
  if (!result.ok()) {
    Fail(result.status());
    (*engine)->Close().IgnoreError();
    return kExitError;
  }
  std::printf("%s\n", result->c_str());
  std::fflush(stdout);
  return CloseEngine(**engine, kExitOk);
}

// ----------------------------------------------------------------- sites ---

int Sites(int argc, char** argv) {
  if (argc < 3) return Usage("sites needs add, list or remove", kSitesHelp);
  std::string_view verb = argv[2];
  if (verb == "-h" || verb == "--help" || verb == "help") {
    std::fputs(kSitesHelp, stdout);
    return kExitOk;
  }
  if (verb != "add" && verb != "list" && verb != "remove") {
    return Usage(absl::StrFormat("unknown sites command %s", verb), kSitesHelp);
  }
  absl::StatusOr<Args> args =
      ParseArgs(argc, argv, 3,
                verb == "add" ? std::vector<std::string_view>{"timezone"}
                              : std::vector<std::string_view>{});
  if (!args.ok()) return Usage(args.status().message(), kSitesHelp);
  if (args->help) {
    std::fputs(kSitesHelp, stdout);
    return kExitOk;
  }
  size_t want = verb == "list" ? 0 : 1;
  if (args->positional.size() != want) {
    return Usage(want == 0 ? "sites list takes no arguments"
                           : absl::StrFormat("sites %s needs a DOMAIN", verb),
                 kSitesHelp);
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = OpenEngine(*args);
  if (!engine.ok()) return Fail(engine.status());
  Engine& e = **engine;
  absl::Status status;
  if (verb == "add") {
    Site site;
    site.domain = args->positional[0];
    if (!args->timezone.empty()) site.timezone = args->timezone;
    absl::StatusOr<Site> added = e.AddSite(site);
    if (added.ok()) {
      std::printf("%s\n", SiteJson(*added).c_str());
    } else {
      status = added.status();
    }
  } else if (verb == "list") {
    absl::StatusOr<std::vector<Site>> sites = e.ListSites();
    if (sites.ok()) {
      std::printf("%s\n", SitesJson(*sites).c_str());
    } else {
      status = sites.status();
    }
  } else {
    status = e.RemoveSite(args->positional[0]);
  }
  std::fflush(stdout);
  if (!status.ok()) {
    Fail(status);
    e.Close().IgnoreError();
    return kExitError;
  }
  return CloseEngine(e, kExitOk);
}

// `analytics goals …` and `analytics funnels …`.
int GoalsCmd(int argc, char** argv, bool goals) {
  if (argc < 3) return Usage("needs add, list, remove or query", kGoalsHelp);
  std::string_view verb = argv[2];
  if (verb == "-h" || verb == "--help" || verb == "help") {
    std::fputs(kGoalsHelp, stdout);
    return kExitOk;
  }
  const size_t want = verb == "add"               ? 2
                      : verb == "list"            ? 1
                      : verb == "remove"          ? 2
                      : verb == "query" && !goals ? 1
                                                  : 0;
  if (want == 0) {
    return Usage(absl::StrFormat("unknown command %s", verb), kGoalsHelp);
  }
  absl::StatusOr<Args> args = ParseArgs(argc, argv, 3, {});
  if (!args.ok()) return Usage(args.status().message(), kGoalsHelp);
  if (args->help) {
    std::fputs(kGoalsHelp, stdout);
    return kExitOk;
  }
  if (args->positional.size() != want) {
    return Usage(absl::StrFormat("%s takes %d argument(s)", verb, want),
                 kGoalsHelp);
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = OpenEngine(*args);
  if (!engine.ok()) return Fail(engine.status());
  Engine& e = **engine;
  absl::Status status;
  std::string out;
  if (verb == "query") {
    absl::StatusOr<std::string> r = QueryFunnel(
        args->positional[0],
        [&e](std::string_view id) { return e.FindSite(id); }, absl::Now(),
        QuerySources{e.store(), nullptr});
    if (r.ok()) out = *r;
    status = r.status();
  } else {
    absl::StatusOr<Site> site = e.FindSite(args->positional[0]);
    if (!site.ok()) {
      status = site.status();
    } else if (verb == "add") {
      if (goals) {
        absl::StatusOr<Goal> g =
            AddGoal(e.store(), site->id, args->positional[1]);
        if (g.ok()) out = g->ToJson();
        status = g.status();
      } else {
        absl::StatusOr<Funnel> f =
            AddFunnel(e.store(), site->id, args->positional[1]);
        if (f.ok()) out = f->ToJson();
        status = f.status();
      }
    } else if (verb == "list") {
      if (goals) {
        absl::StatusOr<std::vector<Goal>> g = ListGoals(e.store(), site->id);
        if (g.ok()) out = GoalsJson(*g);
        status = g.status();
      } else {
        absl::StatusOr<std::vector<Funnel>> f =
            ListFunnels(e.store(), site->id);
        if (f.ok()) out = FunnelsJson(*f);
        status = f.status();
      }
    } else {
      int64_t id = 0;
      if (!absl::SimpleAtoi(args->positional[1], &id) || id <= 0) {
        status = absl::InvalidArgumentError("ID: want a positive integer");
      } else {
        status = goals ? DeleteGoal(e.store(), site->id, id)
                       : DeleteFunnel(e.store(), site->id, id);
      }
    }
  }
  if (!out.empty()) std::printf("%s\n", out.c_str());
  std::fflush(stdout);
  if (!status.ok()) {
    Fail(status);
    e.Close().IgnoreError();
    return kExitError;
  }
  return CloseEngine(e, kExitOk);
}

int Main(int argc, char** argv) {
  if (argc < 2) return Usage("missing command", kMainHelp);
  std::string_view cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kMainHelp, stdout);
    return kExitOk;
  }
  if (cmd == "ingest") return Ingest(argc, argv);
  if (cmd == "import") return Import(argc, argv);
  if (cmd == "query") return Query(argc, argv);
  if (cmd == "sites") return Sites(argc, argv);
  if (cmd == "goals") return GoalsCmd(argc, argv, true);
  if (cmd == "funnels") return GoalsCmd(argc, argv, false);
  return Usage(absl::StrFormat("unknown command %s", cmd), kMainHelp);
}

}  // namespace
}  // namespace analytics::server

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, which leaves absl::Mutex's
  // deadlock detection on: ~25 ns of bookkeeping under a global lock per
  // lock/unlock. The locking order is checked by the TSan build instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return analytics::server::Main(argc, argv);
}
