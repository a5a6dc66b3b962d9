"""pytest suite of the libanalytics Python bindings (run by `make test`)."""
import ast
import datetime
import os
import threading
import time

import pytest

import libanalytics

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
BOT_UA = "Googlebot/2.1 (+http://www.google.com/bot.html)"
SITE = "example.com"


def event(i=0, **kw):
    e = {"site": SITE, "url": f"https://{SITE}/p{i % 3}", "ip": f"203.0.113.{i % 200}",
         "user_agent": UA}
    e.update(kw)
    return e


def pages(engine, date_range="day"):
    r = engine.query({"site_id": SITE, "date_range": date_range,
                      "metrics": ["visitors", "pageviews"], "dimensions": ["event:page"]})
    return {row["dimensions"][0]: row["metrics"] for row in r["results"]}


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request, tmp_path):
    if request.param == "memory":
        return "memory://"
    return f"sqlite://{tmp_path}/a.db"  # tmp_path is absolute: sqlite:///…


@pytest.fixture
def engine(store_url):
    with libanalytics.Engine(store_url) as e:
        e.add_site(SITE)
        yield e


# --- round trips ------------------------------------------------------------


def test_track_and_query(engine):
    r = engine.track(site=SITE, url=f"https://{SITE}/pricing", ip="203.0.113.9",
                     user_agent=UA, referrer="https://www.google.com/",
                     props={"plan": "pro", "n": 3, "x": 2.5, "ok": True, "none": None},
                     screen_width=1440, locale="en-US", timezone="Europe/Berlin",
                     country="DE")
    assert r == {"accepted": True, "dropped": None}
    bot = engine.track(site=SITE, url=f"https://{SITE}/", ip="203.0.113.9",
                       user_agent=BOT_UA)
    assert bot["accepted"] is False and bot["dropped"].startswith("bot"), bot
    assert pages(engine) == {"/pricing": [1, 1]}
    r = engine.query({"site_id": SITE, "date_range": "day", "metrics": ["visitors"],
                      "dimensions": ["event:props:plan"]})
    assert r["results"] == [{"dimensions": ["pro"], "metrics": [1]}]
    assert set(r) >= {"results", "meta", "query"}
    r = engine.query({"site_id": SITE, "date_range": "day", "metrics": ["visitors"],
                      "dimensions": ["visit:source"]})
    assert r["results"][0]["dimensions"] == ["Google"]
    # Number props are written like JSON ingestion does.
    for value, text in ((3, "3"), (2.5, "2.5")):
        key = "n" if value == 3 else "x"
        r = engine.query({"site_id": SITE, "date_range": "day", "metrics": ["visitors"],
                          "dimensions": [f"event:props:{key}"]})
        assert r["results"][0]["dimensions"] == [text]


def test_query_accepts_json_string(engine):
    engine.track(**event())
    r = engine.query('{"site_id":"example.com","date_range":"day","metrics":["pageviews"]}')
    assert r["results"][0]["metrics"] == [1]


def test_ts_forms(engine):
    now = time.time()
    base = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    forms = [
        now - 3600,  # float
        int(now - 3500),  # int
        base - datetime.timedelta(minutes=50),  # aware datetime
        (base - datetime.timedelta(minutes=40)).replace(tzinfo=None),  # naive = UTC
        (base - datetime.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),  # ISO
    ]
    for i, ts in enumerate(forms):
        assert engine.track(**event(0, ts=ts, url=f"https://{SITE}/t{i}"))["accepted"]
    r = engine.query({"site_id": SITE, "date_range": "24h", "metrics": ["pageviews"]})
    assert r["results"][0]["metrics"] == [len(forms)]


def test_ts_iso_is_exact(engine):
    engine.track(**event(0, ts="2024-03-01T10:00:00+02:00"))
    engine.track(**event(1, ts=datetime.datetime(2024, 3, 1, 8, 0, 0)))  # naive UTC
    r = engine.query({"site_id": SITE,
                      "date_range": ["2024-03-01T08:00:00Z", "2024-03-01T08:00:00Z"],
                      "metrics": ["pageviews"]})
    assert r["results"][0]["metrics"] == [2]


def test_track_many(engine):
    events = [event(i) for i in range(2500)]
    events[5] = {"site": SITE, "url": f"https://{SITE}/", "ts": "not a date"}
    events[1500] = "not a dict"
    events[2000] = event(0, user_agent=BOT_UA)
    events[2100] = event(0, site="unknown.example")
    r = engine.track_many(iter(events), batch_size=1000)
    assert r["accepted"] == 2496
    assert r["dropped"] == {"bot:crawler": 1}
    idx = [i for i, _ in r["rejected"]]
    assert idx == [5, 1500, 2100]
    msgs = dict(r["rejected"])
    assert msgs[5].startswith("ts:")
    assert "dict" in msgs[1500]
    assert "unknown.example" in msgs[2100] or "site" in msgs[2100]
    p = pages(engine)
    assert sum(v[1] for v in p.values()) == 2496


def test_track_many_generator_and_mappings(engine):
    class M(dict):
        pass

    r = engine.track_many((M(event(i)) for i in range(10)))
    assert r == {"accepted": 10, "dropped": {}, "rejected": []}


def test_sqlite_persists(tmp_path):
    url = f"sqlite://{tmp_path}/p.db"
    with libanalytics.Engine(url) as e:
        e.add_site(SITE, timezone="Europe/Berlin")
        e.track_many(event(i) for i in range(20))
    assert os.path.exists(tmp_path / "p.db")
    with libanalytics.Engine(url) as e:
        assert [s["domain"] for s in e.sites()] == [SITE]
        assert e.find_site(SITE)["timezone"] == "Europe/Berlin"
        assert sum(v[1] for v in pages(e).values()) == 20


def test_sites(engine):
    s = engine.add_site("other.example", timezone="Europe/Paris",
                        allowed_origins="https://other.example")
    assert s["domain"] == "other.example" and len(s["short_id"]) == 12
    assert s["timezone"] == "Europe/Paris" and s["id"] > 0
    assert {x["domain"] for x in engine.sites()} == {SITE, "other.example"}
    assert engine.find_site(s["short_id"])["domain"] == "other.example"
    u = engine.update_site("other.example", timezone="UTC")
    assert u["timezone"] == "UTC" and u["allowed_origins"] == "https://other.example"
    engine.remove_site("other.example")
    assert [x["domain"] for x in engine.sites()] == [SITE]


def test_auto_create_sites():
    with libanalytics.Engine("memory://", auto_create_sites=True) as e:
        assert e.track(**event(0, site="new.example", url="https://new.example/"))["accepted"]
        assert e.find_site("new.example")["timezone"] == "UTC"


def test_flush_stats_live(engine):
    engine.track(**event())
    engine.flush()
    s = engine.stats()
    assert s["accepted"] == 1 and s["pending_rollup_events"] == 0
    assert engine.live_visitors(SITE) == 1


# --- errors -----------------------------------------------------------------


def test_exception_hierarchy():
    E = libanalytics
    assert issubclass(E.Error, Exception)
    assert issubclass(E.InvalidArgumentError, E.Error)
    assert issubclass(E.InvalidArgumentError, ValueError)
    assert issubclass(E.NotFoundError, E.Error)
    assert issubclass(E.NotFoundError, LookupError)
    assert issubclass(E.AlreadyExistsError, E.Error)
    assert E.Error.__module__ == "libanalytics"


@pytest.mark.parametrize("url", ["mysql://localhost/analytics"])
def test_unsupported_store(url):
    with pytest.raises(libanalytics.Error) as info:
        libanalytics.Engine(url)
    assert "store" in str(info.value) and url.split(":")[0] in str(info.value)
    assert info.value.code == "INVALID_ARGUMENT"


def test_redis_store_without_server_is_unavailable():
    # Nothing listens on loopback port 1.
    with pytest.raises(libanalytics.Error) as info:
        libanalytics.Engine("redis://127.0.0.1:1/0")
    assert "redis" in str(info.value)
    assert info.value.code == "UNAVAILABLE"


def test_postgres_store_without_server_is_unavailable():
    # Nothing listens on loopback port 1.
    with pytest.raises(libanalytics.Error) as info:
        libanalytics.Engine("postgres://127.0.0.1:1/analytics")
    assert "postgres" in str(info.value)
    assert info.value.code == "UNAVAILABLE"


def test_bad_sqlite_path(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(libanalytics.Error) as info:
        libanalytics.Engine(f"sqlite://{tmp_path}/file/a.db")
    assert str(info.value)
    assert not isinstance(info.value, ValueError)


@pytest.mark.parametrize("fields,field", [
    ({"ts": "yesterday"}, "ts"),
    ({"ts": 12.0}, "ts"),
    ({"ts": float("nan")}, "ts"),
    ({"ts": [1]}, "ts"),
    ({"url": 42}, "url"),
    ({"screen_width": -1}, "screen_width"),
    ({"screen_width": "wide"}, "screen_width"),
    ({"interactive": 1}, "interactive"),
    ({"props": {"a": [1]}}, "props.a"),
    ({"props": "x"}, "props"),
    ({"colour": "red"}, "colour"),
    ({"name": "x" * 200}, "name"),
    ({"url": "https://example.com/" + "a" * 3000}, "url"),
])
def test_invalid_event(engine, fields, field):
    with pytest.raises(ValueError) as info:
        engine.track(**event(0, **fields))
    assert isinstance(info.value, libanalytics.InvalidArgumentError)
    assert str(info.value).startswith(field), str(info.value)
    assert info.value.code == "INVALID_ARGUMENT"


def test_unknown_site(engine):
    with pytest.raises(LookupError) as info:
        engine.track(**event(0, site="nope.example"))
    assert isinstance(info.value, libanalytics.NotFoundError)
    assert "nope.example" in str(info.value) or "site" in str(info.value)
    with pytest.raises(libanalytics.NotFoundError):
        engine.find_site("nope.example")
    with pytest.raises(libanalytics.NotFoundError):
        engine.remove_site("nope.example")


def test_site_errors(engine):
    with pytest.raises(libanalytics.AlreadyExistsError):
        engine.add_site(SITE)
    with pytest.raises(libanalytics.InvalidArgumentError) as info:
        engine.add_site("ok.example", timezone="Mars/Olympus")
    assert "timezone" in str(info.value)
    with pytest.raises(ValueError):
        engine.add_site("not a domain")


def test_invalid_query(engine):
    with pytest.raises(libanalytics.InvalidArgumentError) as info:
        engine.query({"site_id": SITE, "date_range": "fortnight", "metrics": ["visitors"]})
    assert str(info.value).startswith("date_range")
    with pytest.raises(libanalytics.InvalidArgumentError) as info:
        engine.query({"site_id": SITE, "date_range": "day", "metrics": ["bogus"]})
    assert "metrics" in str(info.value)
    with pytest.raises(libanalytics.NotFoundError):
        engine.query({"site_id": "nope.example", "date_range": "day", "metrics": ["visitors"]})
    with pytest.raises(TypeError):  # not JSON-serializable
        engine.query({"site_id": object()})


def test_closed_engine_raises():
    e = libanalytics.Engine("memory://")
    e.close()
    e.close()  # idempotent
    for call in (lambda: e.track(**event()), lambda: e.track_many([event()]),
                 lambda: e.query({}), e.sites, e.flush, lambda: e.add_site("x.example")):
        with pytest.raises(libanalytics.Error) as info:
            call()
        assert "closed" in str(info.value)
        assert info.value.code == "FAILED_PRECONDITION"


# --- context manager --------------------------------------------------------


def test_context_manager_closes(tmp_path):
    with libanalytics.Engine(f"sqlite://{tmp_path}/c.db") as e:
        assert not e.closed
        e.add_site(SITE)
        assert "c.db" in repr(e)
    assert e.closed
    assert "closed" in repr(e)
    with pytest.raises(libanalytics.Error):
        e.sites()


def test_context_manager_closes_on_exception():
    with pytest.raises(RuntimeError):
        with libanalytics.Engine("memory://") as e:
            raise RuntimeError("boom")
    assert e.closed


# --- GIL release ------------------------------------------------------------


def test_gil_released_during_track_many():
    """A second Python thread keeps running while track_many commits."""
    with libanalytics.Engine("memory://") as e:
        e.add_site(SITE)
        events = [event(i, ip=f"10.0.{i // 250 % 250}.{i % 250}") for i in range(60000)]
        counter = [0]
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                counter[0] += 1

        # Baseline: how fast the spinner counts alone.
        t = threading.Thread(target=spin)
        t.start()
        time.sleep(0.2)
        stop.set()
        t.join()
        alone_rate = counter[0] / 0.2

        counter[0] = 0
        stop.clear()
        t = threading.Thread(target=spin)
        t.start()
        start = time.perf_counter()
        r = e.track_many(events, batch_size=1000)
        elapsed = time.perf_counter() - start
        stop.set()
        t.join()
        assert r["accepted"] == len(events)
        during_rate = counter[0] / elapsed
        print(f"spinner: {alone_rate:.0f}/s alone, {during_rate:.0f}/s during track_many "
              f"({elapsed:.2f}s)")
        # The batches run without the GIL: the spinner gets a real share of
        # the time (holding the GIL throughout would starve it to ~0).
        assert during_rate > 0.05 * alone_rate, (alone_rate, during_rate)


def test_gil_released_during_query():
    with libanalytics.Engine("memory://") as e:
        e.add_site(SITE)
        e.track_many(event(i, ip=f"10.1.{i // 250 % 250}.{i % 250}") for i in range(20000))
        seen = []
        done = threading.Event()

        def q():
            # A raw-events query (exit page is not rolled up) over all events.
            for _ in range(5):
                e.query({"site_id": SITE, "date_range": "day", "metrics": ["visitors"],
                         "dimensions": ["visit:exit_page"]})
            done.set()

        t = threading.Thread(target=q)
        t.start()
        while not done.is_set():
            seen.append(1)
            time.sleep(0.001)
        t.join()
        assert len(seen) > 1


# --- stubs and docs ---------------------------------------------------------


def public_names(obj):
    return {n for n in dir(obj) if not n.startswith("_")}


def test_stub_names_every_public_method():
    pkg = os.path.dirname(libanalytics.__file__)
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    with open(os.path.join(pkg, "__init__.pyi")) as f:
        tree = ast.parse(f.read())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for name in ("Engine", "Error", "InvalidArgumentError", "NotFoundError",
                 "AlreadyExistsError"):
        assert name in classes, name
    stub_methods = {n.name for n in classes["Engine"].body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    missing = public_names(libanalytics.Engine) - stub_methods
    assert not missing, missing
    for dunder in ("__init__", "__enter__", "__exit__"):
        assert dunder in stub_methods
    exported = set(libanalytics.__all__)
    stub_top = set(classes) | {t.id for n in tree.body if isinstance(n, ast.AnnAssign)
                               for t in [n.target]}
    assert exported <= stub_top, exported - stub_top


def test_docstrings():
    assert "with libanalytics.Engine" in libanalytics.Engine.__doc__
    for name in public_names(libanalytics.Engine):
        assert getattr(libanalytics.Engine, name).__doc__, name
    text = libanalytics.Engine.track.__doc__
    for field in ("site", "url", "referrer", "ts", "ip", "user_agent", "props",
                  "screen_width", "locale", "timezone", "country", "interactive"):
        assert field in text, field
