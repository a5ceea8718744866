"""GET /demo: the dashboard page (Jinja2, autoescaped), its static files, and plotly.js.

plotly.js is served from the installed `plotly` Python package, so the page works offline and
nothing is fetched from a CDN. The page holds no inline script (the CSP forbids it).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from blink import __version__
from blink.runtime import keys
from blink.web import products

routes = web.RouteTableDef()

ROOT = Path(__file__).resolve().parents[2]  # the project: templates/ and static/ at its top
STATIC_DIR = ROOT / "static"
TEMPLATES_DIR = ROOT / "templates"


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                              autoescape=True, undefined=jinja2.StrictUndefined)


@cache
def plotly_js() -> Path:
    """plotly.min.js inside the installed plotly package (located without importing it)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the plotly package is not installed")
    return Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    product = request.query.get("product")
    raise web.HTTPFound("/demo?" + urlencode({"product": product}) if product else "/demo")


@routes.get("/demo")
async def demo(request: web.Request) -> web.Response:
    """The page for one product (`?product=`, default the first); with several products it
    also carries the overview of all of them, which switches between them in place."""
    app = request.app
    settings = app[keys.SETTINGS]
    product = request.query.get("product") or settings.pair
    if product not in settings.pairs:
        raise web.HTTPFound("/demo")
    latest = products.latests(app).get(product, app[keys.LATEST])
    html = app[keys.TEMPLATES].get_template("demo.html").render(
        pair=product, products=settings.pairs, default=settings.pair, source=latest.source,
        version=__version__, auth=bool(settings.api_token))
    return web.Response(text=html, content_type="text/html",
                        headers={"Cache-Control": "no-cache"})


@routes.get(r"/static/{name:[A-Za-z0-9_-]+\.(?:js|css)}")
async def static(request: web.Request) -> web.FileResponse:
    """The dashboard's own files (a flat directory; a missing one is a JSON 404)."""
    path = STATIC_DIR / request.match_info["name"]
    if not path.is_file():
        raise web.HTTPNotFound()
    return _file(request, path, {"Cache-Control": "public, max-age=300"})


@routes.get("/static/vendor/plotly.min.js")
async def plotly(request: web.Request) -> web.FileResponse:
    return _file(request, plotly_js(), {"Cache-Control": "public, max-age=86400",
                                        "Content-Type": "text/javascript"})


def _file(request: web.Request, path: Path, headers: dict) -> web.FileResponse:
    """A file, its Range header checked first: aiohttp's own 416 for a malformed or
    unsatisfiable range would go out with the file's content type, not as a JSON error.
    `bytes=-0` (a suffix of length 0) is unsatisfiable (RFC 9110 14.1.1); aiohttp reads it
    as start 0, the whole file."""
    if "Range" in request.headers:
        try:
            start = request.http_range.start
        except ValueError:
            raise web.HTTPRequestRangeNotSatisfiable() from None
        suffix = request.headers["Range"].partition("=")[2].lstrip().startswith("-")
        if start is not None and (start >= path.stat().st_size or (suffix and start == 0)):
            raise web.HTTPRequestRangeNotSatisfiable()
    return web.FileResponse(path, headers=headers)
