"""The Python Engine on the real PostgreSQL and Redis stores.

Run by CTest (python_backends) inside tests/services/postgres.sh and
tests/services/redis.sh, which start throwaway servers and export their URLs.
Without those URLs the tests fail: they never skip.
"""
import os
import time

import libanalytics
import pytest

UA = ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
      "Firefox/128.0")


def _url(name):
    url = os.environ.get(name)
    assert url, f"{name} is not set: run through tests/services/*.sh"
    return url


@pytest.mark.parametrize("env", ["ANALYTICS_TEST_POSTGRES_URL",
                                 "ANALYTICS_TEST_REDIS_URL"])
def test_track_query_round_trip(env):
    url = _url(env)
    domain = f"py-{env.split('_')[2].lower()}-{int(time.time() * 1000)}.test"
    with libanalytics.Engine(url) as engine:
        engine.add_site(domain, timezone="Europe/Berlin")
        now = time.time()
        result = engine.track_many(
            {"site": domain, "url": f"https://{domain}/p{i % 3}",
             "ip": f"10.0.0.{i % 5}", "user_agent": UA, "ts": now - i}
            for i in range(30))
        assert result["accepted"] == 30, result
        engine.flush()
        r = engine.query({"site_id": domain, "date_range": "day",
                          "metrics": ["pageviews", "visitors"],
                          "dimensions": ["event:page"]})
        pages = {row["dimensions"][0]: row["metrics"] for row in r["results"]}
        assert pages == {"/p0": [10, 5], "/p1": [10, 5], "/p2": [10, 5]}, r
    # Durable: a new engine on the same store sees the same numbers.
    with libanalytics.Engine(url) as engine:
        r = engine.query({"site_id": domain, "date_range": "day",
                          "metrics": ["pageviews"]})
        assert r["results"][0]["metrics"] == [30], r
