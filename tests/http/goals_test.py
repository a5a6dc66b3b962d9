"""HTTP tests of goals and funnels: /api/v1/goals, /api/v1/funnels,
/api/v2/funnel, event:goal in v2 and v1 queries, has_done filters.

Usage: goals_test.py path/to/analyticsd  (Python 3 standard library only)
"""
import json
import unittest

import harness

ADMIN = harness.ADMIN_TOKEN
SITE = "goals.test"


def ua(i):
    return ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
            f"Firefox/128.{i}")


class GoalsHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(BINARY, name="goals")
        cls.srv.add_site(SITE)
        # Visitor 0: / -> /blog/x -> /pricing -> Signup(pro)
        # Visitor 1: / -> /blog/y/z ; visitor 2: /pricing
        journeys = [
            [("pageview", "/", None), ("pageview", "/blog/x", None),
             ("pageview", "/pricing", None), ("Signup", "/pricing",
                                              {"plan": "pro"})],
            [("pageview", "/", None), ("pageview", "/blog/y/z", None)],
            [("pageview", "/pricing", None)],
        ]
        for i, events in enumerate(journeys):
            for name, path, props in events:
                body = {"n": name, "u": f"https://{SITE}{path}", "d": SITE}
                if props:
                    body["p"] = props
                r = cls.srv.request("POST", "/api/event", json.dumps(body),
                                    {"User-Agent": ua(i),
                                     "Content-Type": "application/json"})
                assert r.status == 202, r

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def v2(self, body, path="/api/v2/query"):
        return self.srv.admin("POST", path, dict({"site_id": SITE}, **body))

    def test_goals_funnels_end_to_end(self):
        # Management needs the admin token.
        r = self.srv.request("POST", "/api/v1/goals",
                             {"site_id": SITE, "event_name": "Signup"})
        self.assertEqual(r.status, 401, r)
        # Validation names the field.
        for body, field in (({}, "event_name"),
                            ({"page_path": "blog"}, "page_path"),
                            ({"event_name": "Signup", "props": [1]}, "props"),
                            ({"event_name": ""}, "event_name")):
            r = self.srv.admin("POST", "/api/v1/goals",
                               dict({"site_id": SITE}, **body))
            self.assertEqual(r.status, 400, r)
            self.assertIn(field, r.json()["error"], r)
        r = self.srv.admin("POST", "/api/v1/goals", {"event_name": "Signup"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("site_id", r.json()["error"])
        r = self.srv.admin("POST", "/api/v1/goals",
                           {"site_id": "nosuch.test", "event_name": "Signup"})
        self.assertEqual(r.status, 404, r)

        ids = []
        for body in ({"event_name": "Signup"},
                     {"page_path": "/blog/*"},
                     {"page_path": "/blog/**", "display_name": "Any blog"}):
            r = self.srv.admin("POST", "/api/v1/goals",
                               dict({"site_id": SITE}, **body))
            self.assertEqual(r.status, 201, r)
            ids.append(r.json()["id"])
        r = self.srv.admin("POST", "/api/v1/goals",
                           {"site_id": SITE, "event_name": "Signup"})
        self.assertEqual(r.status, 409, r)
        r = self.srv.admin("GET", f"/api/v1/goals?site_id={SITE}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([g["display_name"] for g in r.json()["goals"]],
                         ["Signup", "Visit /blog/*", "Any blog"])

        # v2: event:goal breakdown with conversion_rate (3 visitors in all).
        r = self.v2({"date_range": "day",
                     "metrics": ["visitors", "events", "conversion_rate"],
                     "dimensions": ["event:goal"]})
        self.assertEqual(r.status, 200, r)
        rows = {x["dimensions"][0]: x["metrics"] for x in r.json()["results"]}
        self.assertEqual(rows, {"Signup": [1, 1, 33.33],
                                "Visit /blog/*": [1, 1, 33.33],
                                "Any blog": [2, 2, 66.67]})
        # event:goal filter and has_not_done.
        r = self.v2({"date_range": "day", "metrics": ["visitors"],
                     "filters": [["is", "event:goal", ["Any blog"]]]})
        self.assertEqual(r.json()["results"][0]["metrics"], [2], r)
        r = self.v2({"date_range": "day", "metrics": ["visitors", "pageviews"],
                     "filters": [["has_not_done",
                                  ["is", "event:goal", ["Signup"]]]]})
        self.assertEqual(r.json()["results"][0]["metrics"], [2, 3], r)
        r = self.v2({"date_range": "day", "metrics": ["visitors"],
                     "filters": [["has_done", ["is", "event:goal", ["Signup"]]],
                                 ["is", "event:page", ["/blog/x"]]]})
        self.assertEqual(r.json()["results"][0]["metrics"], [1], r)
        r = self.v2({"date_range": "day", "metrics": ["group_conversion_rate"]})
        self.assertEqual(r.status, 400, r)
        self.assertIn("metrics", r.json()["error"])

        # v1: event:goal property.
        r = self.srv.admin("GET", f"/api/v1/stats/breakdown?site_id={SITE}"
                           "&period=day&property=event:goal&metrics=visitors")
        self.assertEqual(r.status, 200, r)
        got = {x["goal"]: x["visitors"] for x in r.json()["results"]}
        self.assertEqual(got, {"Signup": 1, "Visit /blog/*": 1, "Any blog": 2})
        r = self.srv.admin("GET", f"/api/v1/stats/aggregate?site_id={SITE}"
                           "&period=day&metrics=visitors,pageviews"
                           "&filters=event:goal%3D%3DAny%20blog")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["results"]["visitors"]["value"], 2, r)

        # Funnels.
        steps = [{"page": "/"}, {"goal": "Any blog"}, {"page": "/pricing"},
                 {"goal": "Signup"}]
        r = self.srv.admin("POST", "/api/v1/funnels",
                           {"site_id": SITE, "name": "Signup flow",
                            "steps": steps[:1]})
        self.assertEqual(r.status, 400, r)
        self.assertIn("steps", r.json()["error"])
        r = self.srv.admin("POST", "/api/v1/funnels",
                           {"site_id": SITE, "name": "Signup flow",
                            "steps": steps})
        self.assertEqual(r.status, 201, r)
        fid = r.json()["id"]
        r = self.srv.admin("GET", f"/api/v1/funnels?site_id={SITE}")
        self.assertEqual([f["name"] for f in r.json()["funnels"]],
                         ["Signup flow"])
        r = self.v2({"date_range": "day", "funnel": "Signup flow"},
                    "/api/v2/funnel")
        self.assertEqual(r.status, 200, r)
        f = r.json()["funnel"]
        self.assertEqual([s["visitors"] for s in f["steps"]], [2, 2, 1, 1])
        self.assertEqual([s["dropoff"] for s in f["steps"]], [0, 0, 1, 0])
        self.assertEqual(f["conversion_rate"], 50)
        r = self.v2({"date_range": "day", "funnel": "nope"}, "/api/v2/funnel")
        self.assertEqual(r.status, 400, r)
        self.assertIn("funnel", r.json()["error"])
        # Ad-hoc funnel with a filter.
        r = self.v2({"date_range": "day",
                     "filters": [["is", "event:page", ["/blog/x"]]],
                     "funnel": {"steps": steps[:2]}}, "/api/v2/funnel")
        self.assertEqual([s["visitors"] for s in r.json()["funnel"]["steps"]],
                         [1, 1], r)

        # Deletes.
        r = self.srv.admin("DELETE", f"/api/v1/funnels/{fid}?site_id={SITE}")
        self.assertEqual(r.status, 200, r)
        r = self.srv.admin("DELETE", f"/api/v1/funnels/{fid}?site_id={SITE}")
        self.assertEqual(r.status, 404, r)
        r = self.srv.admin("DELETE", f"/api/v1/goals/{ids[0]}?site_id={SITE}")
        self.assertEqual(r.status, 200, r)
        r = self.srv.admin("GET", f"/api/v1/goals?site_id={SITE}")
        self.assertEqual(len(r.json()["goals"]), 2)


if __name__ == "__main__":
    BINARY = harness.binary_from_argv()
    unittest.main(verbosity=2)
