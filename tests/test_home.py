"""The landing page at /: what runs, links onward, nothing from other hosts; the admin's
"View site" leads to it; an API step at / owns the path."""

import importlib.util
import re
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.auth.models import User

import workflow.urls
from workflow.embedded import EmbeddedCluster
from workflow.steps import ApiStep, EventStep

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def links(html):
    return re.findall(r'\b(?:href|src)="([^"]*)"', html)


def test_the_landing_page_links_the_workbench_the_api_documents_and_the_guide(client):
    """200, with links to the workbench, the four API documents and the admin, the
    tutorial named by its place in the project, and how to make a superuser."""
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for href in [
        "/admin/workbench/flows/",
        "/api/docs/",
        "/api/redoc/",
        "/api/schema/",
        "/api/asyncapi.json",
        "/admin/",
    ]:
        assert href in links(html), href
    assert "<code>docs/tutorial.md</code>" in html
    assert "python manage.py createsuperuser" in html
    for href in links(html):  # every link on the page is served
        if href.startswith("/") and not href.startswith("/static/"):
            assert client.get(href).status_code in (200, 302), href


def test_the_landing_page_shows_the_flows_and_api_steps_of_the_registry(client, shipped_steps):
    """The shipped project's: the tutorial's flow with its five steps, its
    email-verification chain with four, and the bookings example's with eight (each
    linked to its graph), and each API step as METHOD /path."""
    html = client.get("/").content.decode()
    assert 'href="/admin/workbench/flows/?flow=user-registration"' in html
    assert 'href="/admin/workbench/flows/?flow=trip-booking"' in html
    for step in [
        "RegisterUser",
        "GetUserStatus",
        "SendWelcomeEmail",
        "SetupUserAccount",
        "LogNotification",
    ]:
        assert step in html
    assert re.search(r">POST</td><td><code>/users/register</code>", html)
    assert re.search(r">GET</td><td><code>/users/:userId/status</code>", html)
    assert re.search(r">POST</td><td><code>/bookings</code>", html)
    assert re.search(r">GET</td><td><code>/bookings/:bookingId</code>", html)
    assert "17 steps in 3 flows." in html


def test_the_landing_page_shows_the_steps_registered_now(client, steps):
    """Flows and API steps come from the registry as it is, not from a fixed list."""
    steps.add(
        EventStep(name="Ship", subscribes=["order.paid"], flows=["orders"]),
        lambda input, ctx: None,
    )
    html = client.get("/").content.decode()
    assert 'href="/admin/workbench/flows/?flow=orders"' in html and "Ship" in html
    assert "user-registration" not in html
    assert "No API steps yet." in html and "1 step in 1 flow." in html


def test_the_landing_page_says_whether_workers_run_beside_this_server(client):
    """Running when runserver's embedded cluster runs in this process; otherwise it says
    where event steps run instead."""
    html = client.get("/").content.decode()
    assert "not started by this server" in html and "manage.py qcluster" in html
    with mock.patch.object(EmbeddedCluster, "running_here", return_value=True):
        html = client.get("/").content.decode()
    assert re.search(r"running</span>\s+beside this server", html)
    assert "not started by this server" not in html


def test_the_landing_page_loads_nothing_from_other_hosts(client):
    """Every src and href is a path on this site (no CDN, no web fonts), and no CSS
    url() or @import reaches out either."""
    html = client.get("/").content.decode()
    assert links(html)
    for link in links(html):
        assert not re.match(r"^(?:[a-z]+:)?//", link, re.IGNORECASE), link
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", html)


def test_the_landing_page_is_for_reading_only(client):
    """GET and HEAD are served; a POST to / (no API step there) is refused with 405."""
    assert client.head("/").status_code == 200
    assert client.post("/").status_code == 405


def test_the_admins_view_site_link_leads_to_the_landing_page(client):
    """The admin (here its index, for a staff user) links "View site" to /."""
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "x" * 12))
    html = client.get("/admin/").content.decode()
    assert '<a href="/">View site</a>' in html
    assert '<div id="site-name"><a href="/admin/">Workflow steps</a></div>' in html
    assert client.get("/").status_code == 200


@pytest.fixture
def project_urls(settings, monkeypatch):
    """config/urls.py loaded afresh as the URLconf, with the API steps registered now."""

    def load():
        monkeypatch.setattr(workflow.urls, "urlpatterns", workflow.urls.step_urlpatterns())
        spec = importlib.util.spec_from_file_location(
            "config.urls_under_test", ROOT / "config" / "urls.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        settings.ROOT_URLCONF = module

    return load


def test_an_api_step_at_the_root_owns_it(client, steps, project_urls):
    """A step that declares GET / answers /, not the landing page; one that declares only
    POST / still owns / (GET gets 405), so the landing page never hides an API step."""
    steps.add(
        ApiStep(name="Root", method="GET", path="/", emits=[]),
        lambda request, ctx: {"status": 200, "body": {"root": True}},
    )
    project_urls()
    response = client.get("/")
    assert response.status_code == 200 and response.json() == {"root": True}

    steps.steps.clear()
    steps.add(
        ApiStep(name="Hook", method="POST", path="/", emits=[]),
        lambda request, ctx: {"status": 202, "body": {}},
    )
    project_urls()
    assert client.post("/", {}, content_type="application/json").status_code == 202
    assert client.get("/").status_code == 405


def test_without_an_api_step_at_the_root_the_landing_page_is_served(client, project_urls):
    """The same fresh URLconf with the tutorial's steps serves the landing page at /."""
    project_urls()
    response = client.get("/")
    assert response.status_code == 200
    assert response.templates[0].name == "home.html"
