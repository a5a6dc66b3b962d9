"""libanalytics: privacy-friendly web analytics, embedded in your process.

Python bindings of the libanalytics C++ engine::

    import libanalytics

    with libanalytics.Engine("sqlite:///var/lib/app/analytics.db") as engine:
        engine.add_site("example.com", timezone="Europe/Berlin")
        engine.track(site="example.com", url="https://example.com/pricing",
                     ip="203.0.113.9", user_agent="Mozilla/5.0 ...")
        engine.query({"site_id": "example.com", "date_range": "7d",
                      "metrics": ["visitors", "pageviews"],
                      "dimensions": ["event:page"]})

Errors (all subclasses of ``libanalytics.Error``):

* ``InvalidArgumentError`` (also a ``ValueError``): invalid input; the message
  starts with the field, e.g. ``"ts: out of range (years 2000..2100)"``.
* ``NotFoundError`` (also a ``LookupError``): unknown site.
* ``AlreadyExistsError``: ``add_site`` of a taken domain.
* ``Error``: store failures, a closed engine, anything else.

See docs/python.md in the source tree.
"""

from ._libanalytics import (
    AlreadyExistsError,
    Engine,
    Error,
    InvalidArgumentError,
    NotFoundError,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "Engine",
    "Error",
    "InvalidArgumentError",
    "NotFoundError",
    "__version__",
]
