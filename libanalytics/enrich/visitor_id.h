// Keyed visitor hashing (SipHash-2-4).
//
// Owns: the visitor-id function. visitor_id = SipHash-2-4 keyed by the 16-byte
// daily salt over (site id, 0x00, ip, 0x00, user agent). The raw IP and UA go
// no further than this function.
//
// SipHash is written here (about 60 lines, from the reference description by
// Aumasson and Bernstein) because OpenSSL's EVP_MAC route costs a context
// allocation per call on the hottest path of ingestion.
#ifndef ANALYTICS_ENRICH_VISITOR_ID_H_
#define ANALYTICS_ENRICH_VISITOR_ID_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace analytics {

// `key` must be 16 bytes.
uint64_t SipHash24(std::string_view key, std::string_view data);

uint64_t VisitorId(std::string_view salt16, int64_t site_id,
                   std::string_view ip, std::string_view user_agent);

// VisitorId under two salts (e.g. today's and yesterday's) in one pass over
// the message; the same results as two VisitorId calls.
void VisitorIds(std::string_view salt16, std::string_view prev_salt16,
                int64_t site_id, std::string_view ip,
                std::string_view user_agent, uint64_t* id, uint64_t* prev_id);

// 16 random bytes from the OS (getrandom).
std::string NewSalt();

}  // namespace analytics

#endif  // ANALYTICS_ENRICH_VISITOR_ID_H_
