"""The sandbox machinery every provider API uses: routing, credentials, injected faults."""

from __future__ import annotations

import http.client
import json
import time

import pytest
import requests

from statex_bi.demo.sandbox import Response, Sandbox


@pytest.fixture
def sandbox():
    def auth(request):
        if request.headers.get("authorization") != "Bearer good":
            return Response(401, {"error": "bad token"})
        return None

    box = Sandbox("test", auth=auth)

    @box.route("GET", r"/v1/items/(?P<item>\w+)")
    def item(request):
        return Response(200, {"item": request.match["item"], "page": request.arg("page", "1"), "pad": "x" * 200})

    @box.route("GET", r"/health", public=True)
    def health(request):
        return Response(200, {"ok": True})

    with box:
        yield box


def _get(sandbox, path, token="good"):
    return requests.get(sandbox.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_routes_and_credentials(sandbox):
    assert _get(sandbox, "/v1/items/abc?page=2").json()["item"] == "abc"
    assert _get(sandbox, "/v1/items/abc?page=2").json()["page"] == "2"
    assert _get(sandbox, "/v1/items/abc", token="bad").status_code == 401
    assert requests.get(sandbox.url + "/health", timeout=10).status_code == 200
    assert _get(sandbox, "/nowhere").status_code == 404


@pytest.mark.parametrize(
    ("kind", "status", "retry_after"),
    [("429", 429, "1"), ("429-bare", 429, None), ("500", 500, None), ("503", 503, None)],
    ids=["429", "429-bare", "500", "503"],
)
def test_status_faults_hit_the_next_requests_only(sandbox, kind, status, retry_after):
    sandbox.inject(kind, times=2, path="/v1/items")
    first, second, third = (_get(sandbox, "/v1/items/a") for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [status, status, 200]
    assert first.headers.get("Retry-After") == retry_after


def test_faults_can_be_requested_over_http(sandbox):
    reply = requests.post(sandbox.url + "/_sandbox/faults", json={"kind": "503", "times": 1}, timeout=10)
    assert reply.status_code == 201
    assert _get(sandbox, "/v1/items/a").status_code == 503
    assert _get(sandbox, "/v1/items/a").status_code == 200


def test_slow_responses_are_delayed(sandbox):
    sandbox.inject("slow", delay=0.6)
    started = time.monotonic()
    assert _get(sandbox, "/v1/items/a").status_code == 200
    assert time.monotonic() - started >= 0.6


def test_a_truncated_body_is_cut_short(sandbox):
    sandbox.inject("truncated")
    host, port = sandbox.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/v1/items/a", headers={"Authorization": "Bearer good"})
    reply = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead) as caught:
        reply.read()
    with pytest.raises(json.JSONDecodeError):
        json.loads(caught.value.partial)


def test_unknown_faults_are_refused(sandbox):
    with pytest.raises(ValueError, match="unknown fault 'teapot'"):
        sandbox.inject("teapot")
