"""Goals and funnels from Python (libanalytics/query/goals.h)."""
import pytest

import libanalytics

SITE = "example.com"


def ua(i):
    return f"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.{i}"


@pytest.fixture(params=["memory", "sqlite"])
def engine(request, tmp_path):
    url = "memory://" if request.param == "memory" else f"sqlite://{tmp_path}/a.db"
    with libanalytics.Engine(url) as e:
        e.add_site(SITE)
        journeys = [["/", "/blog/a", "/pricing", "Signup"], ["/", "/blog/b"], ["/pricing"]]
        for i, steps in enumerate(journeys):
            for s in steps:
                ev = {"site": SITE, "ip": "203.0.113.7", "user_agent": ua(i),
                      "url": f"https://{SITE}{s if s.startswith('/') else '/pricing'}"}
                if not s.startswith("/"):
                    ev["name"] = s
                e.track(**ev)
        yield e


def test_goals_and_funnels(engine):
    g = engine.add_goal(SITE, {"event_name": "Signup"})
    assert g["display_name"] == "Signup" and g["id"] > 0
    engine.add_goal(SITE, '{"page_path": "/blog/*"}')
    with pytest.raises(libanalytics.InvalidArgumentError, match="page_path"):
        engine.add_goal(SITE, {"page_path": "no-slash"})
    with pytest.raises(libanalytics.AlreadyExistsError):
        engine.add_goal(SITE, {"event_name": "Signup"})
    assert [x["display_name"] for x in engine.goals(SITE)] == ["Signup", "Visit /blog/*"]

    r = engine.query({"site_id": SITE, "date_range": "day",
                      "metrics": ["visitors", "conversion_rate"],
                      "dimensions": ["event:goal"]})
    rows = {x["dimensions"][0]: x["metrics"] for x in r["results"]}
    assert rows == {"Signup": [1, 33.33], "Visit /blog/*": [2, 66.67]}

    engine.add_funnel(SITE, {"name": "F", "steps": [
        {"page": "/"}, {"goal": "Visit /blog/*"}, {"page": "/pricing"}, {"goal": "Signup"}]})
    f = engine.funnel({"site_id": SITE, "date_range": "day", "funnel": "F"})["funnel"]
    assert [s["visitors"] for s in f["steps"]] == [2, 2, 1, 1]
    assert f["steps"][2]["dropoff"] == 1
    assert [x["name"] for x in engine.funnels(SITE)] == ["F"]
    engine.remove_funnel(SITE, engine.funnels(SITE)[0]["id"])
    assert engine.funnels(SITE) == []
    engine.remove_goal(SITE, g["id"])
    with pytest.raises(libanalytics.NotFoundError):
        engine.remove_goal(SITE, g["id"])
