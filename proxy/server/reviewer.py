"""``/admin/``: the reviewers' page. A server-rendered shell (login form, queue, metrics) whose
one script drives the JSON API at ``/admin/api/*`` with the session cookie and CSRF header.

Everything the script needs travels in ``data-*`` attributes and meta tags, so the strict
Content-Security-Policy can forbid every inline script and style; no CDN, no build step.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from proxy.detectors.content import LABELS as CONTENT_CLASSES
from proxy.rules import RULES
from proxy.server.auth import SESSION_COOKIE, SESSION_SECONDS, AdminAuth
from proxy.server.bodies import BodyTooLarge, read_capped
from proxy.server.ratelimit import TooManyRequests
from proxy.stores.base import COMPONENTS

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CLOSED = "The admin is closed: start the server with --admin-token."
WRONG = "Wrong admin token."
TOO_MANY = "Too many wrong tokens from here: wait a minute, then try again."
FILTERS: tuple[str, ...] = ("all", *COMPONENTS)
MAX_FORM = 8 * 1024
ASSETS = {
    "reviewer.js": "text/javascript; charset=utf-8",
    "reviewer.css": "text/css; charset=utf-8",
}
KEYS = (
    ("a", "accept (crop: candidate 1)"),
    ("r", "reject"),
    ("e", "edit the alt text"),
    ("Ctrl+Enter", "save the edit / send"),
    ("Enter", "in the reason: send"),
    ("1 2 3", "pick a crop candidate"),
    ("o", "crop: thumbnails or outlines on the full image"),
    ("n", "skip"),
    ("Esc", "leave a field"),
)
# What a session cookie can carry unquoted and unescaped; "|" separates the session's fields.
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9 ._@-]+")


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    version: str


def load_assets() -> dict[str, Asset]:
    """The script and stylesheet from package data, versioned by content for long caching."""
    folder = resources.files("proxy.server").joinpath("reviewer_assets")
    found: dict[str, Asset] = {}
    for name, media_type in ASSETS.items():
        body = folder.joinpath(name).read_bytes()
        found[name] = Asset(body, media_type, hashlib.sha256(body).hexdigest()[:12])
    return found


def reviewer_name(raw: str) -> str:
    """A display name safe inside the session cookie (ASCII, no separators), or "reviewer"."""
    ascii_only = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()
    name = " ".join(_NOT_IN_NAME.sub(" ", ascii_only).split())[:64]
    return name or "reviewer"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class ReviewerPage:
    def __init__(self, auth: AdminAuth, off: frozenset[str] = frozenset()) -> None:
        self.auth = auth
        self.off = off  # components with nothing to decide (no VLM: no alt text)
        self.assets = load_assets()

    def routes(self) -> list[Route]:
        return [
            Route("/admin/", self.page, methods=["GET"]),
            Route("/admin/login", self.login, methods=["POST"]),
            Route("/admin/logout", self.logout, methods=["POST"]),
            Route("/admin/assets/{name}", self.asset, methods=["GET"]),
        ]

    # -- routes -------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        session = request.cookies.get(SESSION_COOKIE)
        reviewer = await self.auth.session_reviewer(session)
        if reviewer is None or session is None:
            return self._login_page(None, 403 if self.auth.token is None else 200)
        component = request.query_params.get("component", "all")
        if component not in FILTERS:
            component = "all"
        view = request.query_params.get("view", "queue")
        if view not in ("queue", "metrics", "rules", "search"):
            view = "queue"
        body = self._shell(reviewer, self.auth.csrf_for(session), component, view)
        return HTMLResponse(body, headers=PAGE_HEADERS)

    async def login(self, request: Request) -> Response:
        try:
            self.auth.throttle(request)
        except TooManyRequests as exc:
            return self._login_page(TOO_MANY, 429, exc.headers)
        try:  # a sign-in form is small: read no more
            raw = await read_capped(request, MAX_FORM)
        except BodyTooLarge:
            return self._login_page("The form is too large.", 413)
        try:
            form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
        except ValueError:  # more fields than a sign-in form has
            return self._login_page("The form is malformed.", 400)
        token = (form.get("token") or [""])[0]
        if not self.auth.check_token(request, token.encode("utf-8", "surrogatepass")):
            return self._login_page(CLOSED if self.auth.token is None else WRONG, 403)
        session = await self.auth.new_session(reviewer_name((form.get("reviewer") or [""])[0]))
        response = RedirectResponse("/admin/", status_code=303, headers=PAGE_HEADERS)
        response.set_cookie(
            SESSION_COOKIE, session, max_age=SESSION_SECONDS, **self.auth.cookie_options(request)
        )
        return response

    async def logout(self, request: Request) -> Response:
        """Ends the session in the store, not only in this browser: a copied cookie dies too."""
        await self.auth.end_session(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/admin/", status_code=303, headers=PAGE_HEADERS)
        response.delete_cookie(SESSION_COOKIE, **self.auth.cookie_options(request))
        return response

    async def asset(self, request: Request) -> Response:
        found = self.assets.get(request.path_params["name"])
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        # the page links each asset with its content hash, so a versioned URL never changes
        versioned = request.query_params.get("v") == found.version
        cache = "private, max-age=31536000, immutable" if versioned else "no-cache"
        return Response(
            found.body,
            media_type=found.media_type,
            headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"},
        )

    # -- rendering ----------------------------------------------------------------------

    def _head(self, title: str, csrf: str | None = None) -> str:
        css, js = self.assets["reviewer.css"], self.assets["reviewer.js"]
        meta = f'<meta name="loupe-csrf" content="{_e(csrf)}">' if csrf else ""
        script = (
            f'<script src="/admin/assets/reviewer.js?v={js.version}" defer></script>'
            if csrf
            else ""
        )
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,">'
            f"{meta}<title>{_e(title)}</title>"
            f'<link rel="stylesheet" href="/admin/assets/reviewer.css?v={css.version}">'
            f"{script}</head>"
        )

    def _login_page(
        self, error: str | None, status: int, headers: dict[str, str] | None = None
    ) -> HTMLResponse:
        message = error or (CLOSED if self.auth.token is None else "")
        alert = f'<p class="error" role="alert">{_e(message)}</p>' if message else ""
        body = (
            self._head("Loupe review: sign in")
            + '<body class="login"><main class="login-box"><h1>Loupe review</h1>'
            + alert
            + '<form method="post" action="/admin/login" id="login">'
            '<label for="reviewer">Your name</label>'
            '<input id="reviewer" name="reviewer" autocomplete="username" maxlength="64" '
            'placeholder="shown beside your decisions">'
            '<label for="token">Admin token</label>'
            '<input id="token" name="token" type="password" autocomplete="current-password" '
            "required>"
            '<button type="submit">Sign in</button></form></main></body></html>'
        )
        return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})

    def _shell(self, reviewer: str, csrf: str, component: str, view: str) -> str:
        def tab(label: str, href: str, current: bool) -> str:
            aria = ' aria-current="page"' if current else ""
            return f'<a href="{_e(href)}"{aria}>{_e(label)}</a>'

        queue_href = "/admin/" + (
            f"?{urlencode({'component': component})}" if component != "all" else ""
        )
        header = (
            '<header class="bar"><h1>Loupe review</h1><nav class="tabs" aria-label="Views">'
            + tab("Queue", queue_href, view == "queue")
            + tab("Metrics", "/admin/?view=metrics", view == "metrics")
            + tab("Rules", "/admin/?view=rules", view == "rules")
            + tab("Search", "/admin/?view=search", view == "search")
            + '</nav><form method="post" action="/admin/logout" class="who">'
            f'<span>Signed in as <strong id="reviewer-name">{_e(reviewer)}</strong></span>'
            '<button type="submit" class="quiet">Sign out</button></form></header>'
        )
        views = {"metrics": self._metrics, "rules": self._rules, "search": self._search}
        main = views[view]() if view in views else self._queue(component)
        return self._head("Loupe review", csrf) + f"<body>{header}{main}</body></html>"

    def _queue(self, component: str) -> str:
        filters = "".join(
            self._filter_link(name, name == component, name in self.off) for name in FILTERS
        )
        legend = "".join(f"<li><kbd>{_e(k)}</kbd> {_e(v)}</li>" for k, v in KEYS)
        off = " ".join(sorted(self.off))
        return (
            f'<main id="queue" class="queue" data-component="{_e(component)}" '
            f'data-off="{_e(off)}">'
            f'<nav class="filters" aria-label="Component">{filters}</nav>'
            '<div class="status-line"><p id="counter" class="counter" aria-live="polite">'
            'Loading…</p><p id="message" class="message" role="status"></p>'
            '<p id="held" class="held" role="status" hidden></p></div>'
            '<article id="item" class="item" hidden>'
            '<div class="stage-wrap"><div class="stage" id="stage">'
            '<img id="picture" alt="The image under review"></div>'
            '<div id="crops" class="crops" role="group" aria-label="Crop candidates, as '
            'served" hidden></div>'
            '<p id="view-toggle-box" class="view-toggle" hidden>'
            '<button type="button" id="view-toggle" class="quiet" aria-pressed="false">'
            "<kbd>o</kbd> <span>Outlines on the full image</span></button></p>"
            '<p id="picture-note" class="note" hidden></p></div>'
            '<section class="details" aria-label="Decision">'
            '<h2 id="item-title"></h2><dl id="ai" class="ai"></dl>'
            '<ol id="candidates" class="candidates" hidden></ol>'
            '<ul id="checks" class="checks" hidden></ul>'
            '<div id="draft-box" class="field" hidden><label for="draft">Alt text draft '
            "(<kbd>e</kbd> to edit, <kbd>Ctrl+Enter</kbd> to save)</label>"
            '<textarea id="draft" rows="4" maxlength="1000"></textarea></div>'
            '<div class="field"><label for="reason">Reason <span class="hint">(required when '
            "you override the AI: reject, edit, candidate 2 or 3)</span></label>"
            '<input id="reason" maxlength="2000" autocomplete="off"></div>'
            '<div class="actions" id="actions">'
            '<button type="button" data-action="accept"><kbd>a</kbd> Accept</button>'
            '<button type="button" data-action="reject"><kbd>r</kbd> Reject</button>'
            '<button type="button" data-action="edit"><kbd>e</kbd> Edit</button>'
            '<button type="button" data-action="skip" class="quiet"><kbd>n</kbd> Skip</button>'
            "</div></section></article>"
            '<div id="empty" class="empty" hidden><p id="empty-text">Nothing pending here.</p>'
            '<button type="button" id="restart" class="quiet" hidden>Show skipped items'
            "</button></div>"
            f'<aside class="legend" aria-label="Keyboard"><h2>Keys</h2><ul>{legend}</ul></aside>'
            "</main>"
        )

    @staticmethod
    def _filter_link(name: str, current: bool, off: bool = False) -> str:
        href = "/admin/" + ("" if name == "all" else "?" + urlencode({"component": name}))
        aria = ' aria-current="true"' if current else ""
        label = f"{name} (off)" if off else name
        return f'<a href="{_e(href)}"{aria} data-filter="{_e(name)}">{_e(label)}</a>'

    def _metrics(self) -> str:
        return (
            '<main id="metrics" class="metrics">'
            '<p id="metrics-status" class="message" role="status">Loading…</p>'
            '<section class="tiles" id="tiles" aria-label="Totals"></section>'
            '<section class="chart"><h2>Per component</h2>'
            '<p class="hint">Auto-accept rate (the AI decided alone) and override rate (humans '
            "changed the AI's output), of each component.</p>"
            '<div id="bars"></div><div class="legend-row"><span class="swatch auto"></span>'
            'auto-accept <span class="swatch override"></span>override</div>'
            '<div class="table-wrap"><table id="component-table"><thead><tr><th>component</th>'
            "<th>auto</th><th>sent to review</th><th>reviewed</th><th>pending</th></tr></thead>"
            "<tbody></tbody></table></div></section>"
            '<section class="chart"><h2>Seconds per review</h2>'
            '<p class="hint" id="trend-hint"></p><div id="trend"></div></section>'
            '<section class="chart" id="costs" aria-label="Costs"><h2>What the AI costs</h2>'
            '<p class="hint" id="costs-hint"></p>'
            '<div class="tiles" id="cost-tiles"></div>'
            '<div class="table-wrap"><table id="cost-table"><thead><tr><th>component</th>'
            "<th>inferences</th><th>wall s</th><th>CPU s</th><th>saved: same look</th>"
            "<th>other size</th><th>re-upload</th><th>cost</th><th>saved cost</th></tr>"
            "</thead><tbody></tbody></table></div>"
            '<h3>Per day</h3><div id="cost-trend"></div></section>'
            '<section class="chart" id="calibration" aria-label="Calibration">'
            "<h2>What a confidence means</h2>"
            '<p class="hint" id="calibration-hint"></p>'
            '<div id="reliability" class="reliability-row"></div></section>'
            "</main>"
        )

    @staticmethod
    def _search() -> str:
        """A search box over the lane's findings; a result opens the source's decisions."""
        classes = "".join(
            f'<option value="{_e(name)}">{_e(name)}</option>' for name in CONTENT_CLASSES
        )
        return (
            '<main id="search" class="metrics">'
            '<section class="chart"><h2>Search sources</h2>'
            '<form id="search-form" class="rule-form" role="search">'
            '<div class="field"><label for="search-q">Words <span class="hint">(alt text, '
            "path, class, faces, moderation state, duplicate group)</span></label>"
            '<input id="search-q" type="search" maxlength="200" autocomplete="off"></div>'
            '<div class="field"><label for="search-class">Class</label>'
            f'<select id="search-class"><option value="">any</option>{classes}</select></div>'
            '<div class="field"><label for="search-folder">Folder</label>'
            '<input id="search-folder" maxlength="1024" autocomplete="off"></div>'
            '<button type="submit">Search</button></form>'
            '<p id="search-status" class="message" role="status"></p>'
            '<ol id="search-results" class="search-results"></ol></section>'
            '<section class="chart" id="source-decisions" hidden><h2 id="source-title"></h2>'
            '<img id="source-thumb" alt="" width="160" height="160">'
            '<dl id="source-facts" class="ai"></dl>'
            '<h3>Reviews</h3><div class="table-wrap"><table id="source-reviews"><thead><tr>'
            "<th>component</th><th>status</th><th>decision</th><th>decided</th></tr></thead>"
            "<tbody></tbody></table></div></section></main>"
        )

    @staticmethod
    def _rules() -> str:
        """Exception rules for a source or folder: the pipeline honours them at once."""
        options = "".join(
            f'<option value="{_e(name)}">{_e(name)}: {_e(meaning)}</option>'
            for name, meaning in RULES.items()
        )
        return (
            '<main id="rules" class="metrics">'
            '<section class="chart"><h2>Add an exception rule</h2>'
            '<form id="rule-form" class="rule-form">'
            '<div class="field"><label for="rule-prefix">Source or folder '
            '<span class="hint">(e.g. shop/ or shop/shoe.jpg; empty: every source)</span>'
            '</label><input id="rule-prefix" maxlength="1024" autocomplete="off"></div>'
            f'<div class="field"><label for="rule-name">Rule</label>'
            f'<select id="rule-name">{options}</select></div>'
            '<div class="field"><label for="rule-reason">Reason</label>'
            '<input id="rule-reason" maxlength="2000" required autocomplete="off"></div>'
            '<button type="submit">Add rule</button></form>'
            '<p id="rules-status" class="message" role="status"></p></section>'
            '<section class="chart"><h2>Rules in force</h2><div class="table-wrap">'
            '<table id="rule-table"><thead><tr><th>source or folder</th><th>rule</th>'
            "<th>reason</th><th>by</th><th></th></tr></thead><tbody></tbody></table></div>"
            "</section></main>"
        )


def reviewer_routes(auth: AdminAuth, off: frozenset[str] = frozenset()) -> list[Route]:
    """The page's routes; ``auth`` is the admin API's, so one token and one session scheme."""
    return ReviewerPage(auth, off).routes()
