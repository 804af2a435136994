"""The API's answers that need no projection: the bearer token for any header bytes, the
`{"error", "detail"}` shape for every error (unknown routes and methods included), the security
headers on every response, and JSON 503s on every endpoint while Redis does not answer — here a real
connection to a port where nothing listens, so each request really fails to connect."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import ApiConfig, create_app, token_matches
from api.guard import CONTENT_SECURITY_POLICY
from api.limits import ApiLimits, env_name

TOKEN = "s3cret-for-tests"
NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused, at once
SECURITY = {"content-security-policy": CONTENT_SECURITY_POLICY, "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


@pytest.fixture(scope="module")
def client():
    config = ApiConfig(redis_url=NOWHERE, namespace="guards", token=TOKEN,
                       limits=ApiLimits(redis_timeout=0.2))
    with TestClient(create_app(config), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("header", [
    "Bearer tök".encode(), "Bearer tök".encode("latin-1"), b"Bearer \xff\xfe\x00", "Bearer " + "é" * 5000,
    "Bearer", "bearer ", "Basic " + TOKEN, "Bearer " + TOKEN + " ", "Bearer " + TOKEN.upper(),
])
def test_a_wrong_or_non_ascii_bearer_token_is_a_401_never_a_500(client, header):
    try:
        response = client.post("/api/admin/rebuild", headers={"Authorization": header})
    except ValueError:  # httpx refuses to send a NUL in a header: nothing to test for that one
        return
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized",
                               "detail": "a valid bearer token is required for write endpoints"}


def test_the_token_comparison_takes_any_text():
    assert token_matches(TOKEN, TOKEN) and token_matches("tök".encode().decode("latin-1"), "tök")
    assert not token_matches("tök", "tok") and not token_matches("", TOKEN) and not token_matches("\x00", TOKEN)


@pytest.mark.parametrize(("method", "path", "status", "error"), [
    ("GET", "/nope", 404, "not_found"),
    ("GET", "/api/units", 404, "not_found"),
    ("GET", "/static/nope.js", 404, "not_found"),
    ("GET", "/docs", 404, "not_found"),  # Swagger UI needs a CDN and inline script: not served
    ("DELETE", "/api/health", 405, "method_not_allowed"),
    ("GET", "/api/admin/rebuild", 405, "method_not_allowed"),
    ("GET", "/api/leaderboard?period=year:2026&group=" + "x" * 3000, 414, "query_too_long"),
    ("GET", "/api/units/H15?period=2026", 400, "malformed_period"),
    ("GET", "/api/alerts?kind=everything", 422, "invalid_request"),
])
def test_every_error_has_the_documented_shape_and_the_security_headers(client, method, path, status, error):
    response = client.request(method, path)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == error and body["detail"]
    assert {name: response.headers.get(name) for name in SECURITY} == SECURITY


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css", "/static/favicon.svg", "/api/ruleset",
                                  "/openapi.json", "/metrics"])
def test_the_dashboard_and_the_api_carry_the_security_headers(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert {name: response.headers.get(name) for name in SECURITY} == SECURITY
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == policy["script-src"] == policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"


def test_the_dashboard_has_no_inline_script_or_style(client):
    """What the Content-Security-Policy would block: the browser test checks the console too."""
    page = client.get("/").text
    script = client.get("/static/app.js").text
    assert "<script>" not in page and "style=" not in page and " on" not in page.split("<body>")[1].split(">")[0]
    assert "style=" not in script and "setAttribute(\"style\"" not in script


def paths_with_parameters(schema: dict) -> list[str]:
    """Every GET of the OpenAPI document, with a valid value for each required parameter."""
    values = {"period": "year:2026", "month": "2026-05", "code": "H15", "officer": "H15.01-CB01", "unit": "H15"}
    found = []
    for path, operations in schema["paths"].items():
        if "get" not in operations:
            continue
        required = [p for p in operations["get"].get("parameters", []) if p.get("required")]
        # The notice is monthly: a year is refused before Redis is asked.
        chosen = {**values, "period": "month:2026-05"} if path == "/api/notice" else values
        query = "&".join(f"{p['name']}={chosen[p['name']]}" for p in required if p["in"] == "query")
        found.append(path.format(**values) + (f"?{query}" if query else ""))
    return found


def test_with_redis_unreachable_every_endpoint_answers_a_json_503(client):
    paths = paths_with_parameters(client.get("/openapi.json").json())
    assert len(paths) >= 13 and "/api/live" in paths
    for path in paths:
        response = client.get(path)
        if path == "/api/ruleset":  # the ruleset is the API's own file: it needs no Redis
            assert response.status_code == 200
            continue
        assert response.status_code == 503, (path, response.text)
        body = response.json()
        assert body["error"] == "projection_unavailable" and body["detail"], path
        assert response.headers["retry-after"] == "5"
        assert "127.0.0.1:1" not in response.text  # no address (nor password) of the server
    health = client.get("/api/health").json()
    assert health["dependencies"] == {"redis": "unavailable"} and health["status"] == "unavailable"
    assert client.post("/api/admin/rebuild", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 503


def test_limits_come_from_the_environment_and_a_bad_one_names_its_variable():
    limits = ApiLimits.from_env({env_name("live_total"): "20", env_name("header_timeout"): "2.5",
                                 env_name("trusted_proxies"): " 10.0.0.1 "})
    assert (limits.live_total, limits.header_timeout, limits.trusted_proxies) == (20, 2.5, "10.0.0.1")
    assert ApiLimits.from_env({}) == ApiLimits()
    for value in ("many", "0", "-3", "1.5x"):
        with pytest.raises(ValueError, match="CHISO766_API_LIVE_PER_CLIENT"):
            ApiLimits.from_env({"CHISO766_API_LIVE_PER_CLIENT": value})


def test_anything_that_raises_is_a_json_500_with_the_headers():
    app = create_app(ApiConfig(redis_url=NOWHERE, namespace="guards", token=TOKEN, limits=ApiLimits(redis_timeout=0.2)))

    @app.get("/api/broken")
    async def broken() -> dict:
        raise KeyError("a bug")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/api/broken")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "the server failed to answer; it is logged"}
    assert "a bug" not in response.text and response.headers["x-content-type-options"] == "nosniff"
