# The web dashboard (server/dashboard/, server/static/dashboard/): included by
# server/CMakeLists.txt, so analytics_embed() reads server/static/.
add_library(analytics_dashboard STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/dashboard/dashboard.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/dashboard/session.cc)
target_include_directories(analytics_dashboard PUBLIC ${ANALYTICS_REPO_DIR})
target_include_directories(analytics_dashboard SYSTEM PRIVATE
  ${RAPIDJSON_INCLUDE_DIRS})
target_link_libraries(analytics_dashboard PUBLIC
  analytics_engine analytics_headers PkgConfig::HTTPLIB OpenSSL::Crypto)
analytics_embed(analytics_dashboard dashboard/index.html kDashboardHtml)
analytics_embed(analytics_dashboard dashboard/login.html kLoginHtml)
analytics_embed(analytics_dashboard dashboard/app.js kDashboardJs)
analytics_embed(analytics_dashboard dashboard/app.css kDashboardCss)

# Cookie signing and verification.
analytics_test(dashboard_session_test
  ${CMAKE_CURRENT_SOURCE_DIR}/dashboard/session_test.cc analytics_dashboard)

# HTTP level: login, cookies, CSRF, security headers, shared links (Python
# standard library only).
add_test(NAME dashboard_http_test
  COMMAND python3 ${ANALYTICS_REPO_DIR}/tests/browser/dashboard_http_test.py
          $<TARGET_FILE:analyticsd>)
set_tests_properties(dashboard_http_test PROPERTIES TIMEOUT 120)

# Headless Chromium: the dashboard against the Stats API's own answers.
add_test(NAME dashboard_browser_test
  COMMAND bash ${ANALYTICS_REPO_DIR}/tests/browser/run.sh
          $<TARGET_FILE:analyticsd> dashboard_test.mjs)
set_tests_properties(dashboard_browser_test PROPERTIES TIMEOUT 300
  ENVIRONMENT "TEST_OUTPUT_DIR=${CMAKE_BINARY_DIR}/test-output")
