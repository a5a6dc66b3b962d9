// Keyed visitor hashing (XXH3-128 digest, then SipHash-2-4 under the salt).
//
// Owns: the visitor-id function.
//   message    = site id in decimal ASCII, 0x00, ip, 0x00, user agent
//   digest     = XXH3_128bits(message), unkeyed, as 16 bytes: the low 64 bits
//                then the high 64 bits, each little-endian
//   visitor_id = SipHash-2-4 keyed by the 16-byte daily salt over digest
// The raw IP and UA, and the digest, go no further than this function.
//
// Why this is still a keyed PRF of (site, ip, user agent): the message is an
// injective encoding of the triple (the site id has no NUL, nor has an IP in
// text form, so the first two NULs end the first two fields and the rest,
// NULs included, is the user agent). XXH3-128 is not cryptographic, but it is
// only a compression step: the id is PRF(salt, digest), so two triples share
// an id only if their 128-bit digests collide (or with SipHash's 2^-64 chance,
// as before). A collision, even one a sender crafts (XXH3 is not collision
// resistant), merges two visitors' ids; it reveals nothing about either. The
// secret enters through SipHash-2-4 under the salt: without the salt an
// observer of ids cannot test a candidate (ip, UA) pair, since the digest of
// a guess is useless without the key, exactly as with SipHash over the whole
// message. Once a day's salt is deleted nobody can recompute that day's ids.
//
// Why not SipHash over the whole message (until session 11): SipHash does two
// rounds per 8 bytes, ~1,580 instructions per event for the two salts over a
// ~150-byte message; XXH3 reads it once (~4x fewer instructions per byte) and
// the two SipHash runs then cover 16 bytes each. Changing the scheme changed
// every id once: a visitor in a session at upgrade time starts a new session.
//
// SipHash is written here (about 60 lines, from the reference description by
// Aumasson and Bernstein) because OpenSSL's EVP_MAC route costs a context
// allocation per call on the hottest path of ingestion. XXH3 comes from
// Debian's libxxhash-dev, inlined (XXH_INLINE_ALL).
#ifndef ANALYTICS_ENRICH_VISITOR_ID_H_
#define ANALYTICS_ENRICH_VISITOR_ID_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace analytics {

// `key` must be 16 bytes (shorter keys are zero-padded, longer truncated).
uint64_t SipHash24(std::string_view key, std::string_view data);

// The visitor id under `salt16` (see the top of this file). A salt of another
// length is zero-padded or truncated to 16 bytes, as by SipHash24.
uint64_t VisitorId(std::string_view salt16, int64_t site_id,
                   std::string_view ip, std::string_view user_agent);

// VisitorId under two salts (e.g. today's and yesterday's) from one digest of
// the message; the same results as two VisitorId calls.
void VisitorIds(std::string_view salt16, std::string_view prev_salt16,
                int64_t site_id, std::string_view ip,
                std::string_view user_agent, uint64_t* id, uint64_t* prev_id);

// 16 random bytes from the OS (getrandom).
std::string NewSalt();

}  // namespace analytics

#endif  // ANALYTICS_ENRICH_VISITOR_ID_H_
