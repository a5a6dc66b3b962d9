#include "server/dashboard/session.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace analytics::server {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);
const std::string kSecret(64, 's');

SessionClaims Key(int64_t id) {
  SessionClaims c;
  c.key_id = id;
  c.expires_s = 1'800'000'100;
  return c;
}

TEST(SessionTest, RoundTrip) {
  SessionClaims admin;
  admin.admin = true;
  admin.expires_s = 1'800'000'100;
  std::string cookie = SignSession(kSecret, admin, "hash-a");
  absl::StatusOr<SessionClaims> c =
      VerifySession(kSecret, cookie, "hash-a", kNow);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->admin);
  EXPECT_EQ(c->expires_s, 1'800'000'100);

  cookie = SignSession(kSecret, Key(42), "hash-k");
  c = VerifySession(kSecret, cookie, "hash-k", kNow);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->admin);
  EXPECT_EQ(c->key_id, 42);
  // The cookie value needs no quoting in a Set-Cookie header.
  EXPECT_EQ(cookie.find_first_of(" ;,\"="), std::string::npos) << cookie;
}

TEST(SessionTest, RejectsOtherSecretBindingOrExpiry) {
  std::string cookie = SignSession(kSecret, Key(7), "hash-k");
  EXPECT_TRUE(absl::IsUnauthenticated(
      VerifySession(std::string(64, 't'), cookie, "hash-k", kNow).status()));
  // The credential was replaced (admin token set anew, key re-created).
  EXPECT_TRUE(absl::IsUnauthenticated(
      VerifySession(kSecret, cookie, "hash-other", kNow).status()));
  EXPECT_TRUE(absl::IsUnauthenticated(
      VerifySession(kSecret, cookie, "hash-k",
                    absl::FromUnixSeconds(1'800'000'100))
          .status()));
  EXPECT_TRUE(absl::IsUnauthenticated(
      VerifySession("", cookie, "hash-k", kNow).status()));
}

TEST(SessionTest, RejectsTampering) {
  std::string cookie = SignSession(kSecret, Key(7), "hash-k");
  ASSERT_EQ(cookie.substr(0, 7), "v1.k.7.");
  // Another key id, a later expiry, admin, a flipped signature character.
  std::string sig = cookie.substr(cookie.rfind('.'));
  for (std::string forged :
       {absl::StrCat("v1.k.8.1800000100", sig),
        absl::StrCat("v1.k.7.1900000100", sig),
        absl::StrCat("v1.a.0.1800000100", sig),
        absl::StrCat("v1.k.07.1800000100", sig), cookie + "x",
        cookie.substr(0, cookie.size() - 1) +
            (cookie.back() == 'A' ? "B" : "A"),
        std::string("v1.k.7.1800000100."), std::string("garbage")}) {
    EXPECT_TRUE(absl::IsUnauthenticated(
        VerifySession(kSecret, forged, "hash-k", kNow).status()))
        << forged;
  }
}

TEST(SessionTest, Helpers) {
  EXPECT_EQ(
      CookieValue("a=1; analytics_session=v1.x; b=2", "analytics_session"),
      "v1.x");
  EXPECT_EQ(CookieValue("xanalytics_session=1", "analytics_session"), "");
  EXPECT_EQ(RandomHex(16).size(), 32u);
  EXPECT_NE(RandomHex(16), RandomHex(16));
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(ConstantTimeEqual("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "ab"));
}

}  // namespace
}  // namespace analytics::server
