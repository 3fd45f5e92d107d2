"""make db-dashboard in a real browser: Debian's Chromium, driven by Playwright, against `cuisine-db dashboard` on a
seeded local cluster with backups and a WAL archive. Every page at 375 and 1440 px, without a console error; the
figures that matter (a blocking chain root-first, a deleted backup gone, a failing archive turning the overview red);
hostile input; every page under an ACCESS EXCLUSIVE lock on recipes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from activity import Background, wait_until, waiting_for_lock
from backup_fixtures import AgeKeys
from conftest import CLI, MIGRATIONS, REPO, available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.dashboard.app import REUSE_SECONDS
from cuisine_db.postgres import binaries
from cuisine_db.postgres.ports import free_port

CHROMIUM = Path("/usr/bin/chromium")
MAJOR = 18 if available(18) is not None or available(14) is None else 14
PAGES = ["/", "/recovery", "/database", "/live", "/incidents"]
WIDTHS = (375, 1440)
SCREENSHOTS = REPO / "docs" / "dashboard"

playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (make deps)", allow_module_level=True)


@dataclass
class Dashboard:
    project: PitrProject
    url: str
    process: subprocess.Popen[str]
    backups: list[str]

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as answer:  # noqa: S310 - our own loopback URL
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


def _backup(project: PitrProject, kind: str) -> str:
    time.sleep(1.1)  # backup names carry the second they were taken
    made = json.loads(project.ok("backup", "create", "--env", "production", "--type", kind, "--json").stdout)
    return str(made["name"])


def _wait_up(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the dashboard exited {process.returncode}: {said}")
        try:
            urllib.request.urlopen(url + "incidents", timeout=2).close()  # noqa: S310 - our own loopback URL
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError("the dashboard did not answer within 30 s")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys) -> Iterator[Dashboard]:
    if available(MAJOR) is None:
        binaries.install(MAJOR, cache_dir())
    root = tmp_path_factory.mktemp("dashboard")
    shutil.copytree(MIGRATIONS, root / "project" / "db" / "migrations")
    project = make_pitr_project(root / "project", MAJOR, age_keys)
    process = None
    try:
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        project.ok("migrate", "up", "--env", "production")
        project.ok("seed", "--env", "production", "--yes")
        project.ok("security", "setup-roles", "--env", "production")
        with project.connect() as conn:
            conn.execute('CREATE TABLE "<script>alert(1)</script>" (id int)')
            conn.execute("ANALYZE")
        project.wait_archived(project.switch())
        backups = [_backup(project, "full"), _backup(project, "logical"), _backup(project, "logical")]
        project.ok("backup", "verify", backups[1], "--env", "production")
        project.ok("incident", "create", "--severity", "2", "--description", "checkout is slow (\"quoted\" 'text')",
                   "--env", "production")
        project.ok("monitor", "--env", "production")
        port = free_port()
        environ = {**os.environ, "CUISINE_DB_CONFIG": str(project.config), **project.environ}
        environ.pop("CUISINE_DB_ENV", None)
        process = subprocess.Popen([*CLI, "dashboard", "--env", "production", "--port", str(port)], cwd=project.root,
                                   env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}/"
        _wait_up(url, process)
        yield Dashboard(project, url.rstrip("/"), process, backups)
    finally:
        if process is not None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        project.destroy()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as play:
        launched = play.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


def _open(browser: Any, url: str, width: int, errors: list[str]) -> Any:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"a dialog opened: {dialog.message}"))
    answer = page.goto(url, wait_until="load", timeout=30_000)
    assert answer is not None and answer.status == 200, f"{url}: {answer.status if answer else 'no answer'}"
    return page


def test_every_page_loads_at_both_widths_without_console_errors(dashboard: Dashboard, browser: Any,
                                                                 tmp_path: Path) -> None:
    keep = os.environ.get("CUISINE_DB_DASHBOARD_SCREENSHOTS") == "1"
    for width in WIDTHS:
        for path in PAGES:
            errors: list[str] = []
            page = _open(browser, dashboard.url + path, width, errors)
            assert errors == [], f"{path} at {width}px: {errors}"
            # Nothing overflows the viewport sideways: the page is readable on a phone.
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} at {width}px is {overflow}px wider than the screen"
            assert page.locator("nav a.on").count() == 1
            assert "Traceback" not in page.content()
            name = (path.strip("/") or "overview") + f"-{width}.png"
            # The phone's first screen as a person sees it; the whole page on the desktop.
            page.screenshot(path=str(tmp_path / name), full_page=width > 375)
            if keep:
                SCREENSHOTS.mkdir(exist_ok=True)
                shutil.copy(tmp_path / name, SCREENSHOTS / name)
            page.close()


def test_pages_show_the_expected_figures(dashboard: Dashboard, browser: Any) -> None:
    errors: list[str] = []
    page = _open(browser, dashboard.url + "/recovery", 1440, errors)
    listed = page.locator("[data-backup]").evaluate_all("rows => rows.map(r => r.dataset.backup)")
    assert listed == list(reversed(dashboard.backups)), listed
    verified = page.locator(f'[data-backup="{dashboard.backups[1]}"]').inner_text()
    assert "ok" in verified
    assert page.locator("#window svg").count() == 1, "the recovery window is drawn"
    page = _open(browser, dashboard.url + "/database", 1440, errors)
    assert page.locator('[data-table="public.recipes"]').count() == 1
    page = _open(browser, dashboard.url + "/incidents", 1440, errors)
    # The description is shown as typed, quotes and all.
    assert "checkout is slow (\"quoted\" 'text')" in page.locator("[data-incident]").first.inner_text()
    page = _open(browser, dashboard.url + "/", 1440, errors)
    statuses = dict(page.locator("[data-check]").evaluate_all(
        "rows => rows.map(r => [r.dataset.check, r.dataset.status])"))
    assert statuses["server"] == "green" and statuses["full backup"] == "green", statuses
    assert errors == []


def test_the_archive_lag_is_charted_after_a_few_readings(dashboard: Dashboard, browser: Any) -> None:
    with warnings.catch_warnings():  # Starlette's TestClient prefers a newer HTTP client; this one still works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from cuisine_db.dashboard.app import create_app
    from cuisine_db.monitor.store import Store, store_path

    project = dashboard.project
    settings, env = project.settings, project.settings.env("production")
    before = len(Store(store_path(settings, env)).archive_lag(0))
    # A second dashboard on the same environment that records every reading instead of one a minute.
    app = create_app(settings, env, reuse_seconds=0, lag_every=0)
    with TestClient(app, base_url="http://127.0.0.1:8080", raise_server_exceptions=False) as client:
        for _ in range(3):
            with project.connect() as conn:
                conn.execute("SELECT txid_current()")  # some WAL, so that the switch closes a segment
            project.wait_archived(project.switch())
            time.sleep(1.1)
            assert client.get("/recovery").status_code == 200
    rows = Store(store_path(settings, env)).archive_lag(0)
    assert len(rows) >= before + 3, rows
    assert all(age is not None and age >= 0 for _, age, _ in rows[-3:]), rows
    # The dashboard the person runs draws what every reading recorded (the local history file is shared).
    time.sleep(REUSE_SECONDS + 0.2)
    errors: list[str] = []
    page = _open(browser, dashboard.url + "/recovery", 1440, errors)
    chart = page.locator("#archive-lag svg polyline")
    assert chart.count() == 1, page.locator("#archive").inner_text()
    points = (chart.get_attribute("points") or "").split()
    assert len(points) >= 3, points
    assert "Minutes since the newest archived segment" in page.locator("#archive-lag").inner_text()
    assert errors == []
    if os.environ.get("CUISINE_DB_DASHBOARD_SCREENSHOTS") == "1":  # the Recovery page with its lag chart drawn
        page.screenshot(path=str(SCREENSHOTS / "recovery-1440.png"), full_page=True)


def test_a_plan_is_shown_on_demand_without_running_the_statement(dashboard: Dashboard, browser: Any) -> None:
    with dashboard.project.connect() as conn:
        for step in range(200):  # enough total time to be among the top statements
            conn.execute("SELECT count(*) FROM recipe_steps WHERE position > %s", (step % 5,))
    errors: list[str] = []
    page = _open(browser, dashboard.url + "/database", 1440, errors)
    row = page.locator("#queries tr", has_text="FROM recipe_steps WHERE position")
    assert row.count() >= 1, page.locator("#queries").inner_text()
    row.first.get_by_role("link", name="plan").click()
    page.wait_for_load_state("load")
    text = page.locator("main").inner_text()
    assert "recipe_steps" in text and "Aggregate" in text, text
    assert "Could not be read" not in text and "nothing ran" in text, text
    assert page.locator("nav a.on").inner_text() == "Database"
    assert errors == []


def test_a_table_named_script_renders_as_text(dashboard: Dashboard, browser: Any) -> None:
    errors: list[str] = []
    page = _open(browser, dashboard.url + "/database", 1440, errors)
    assert page.get_by_text("<script>alert(1)</script>").count() >= 1
    _, html = dashboard.get("/database")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert errors == []


def test_a_blocking_chain_appears_root_first(dashboard: Dashboard, browser: Any) -> None:
    project = dashboard.project
    root = project.connect()
    root.autocommit = False
    root.execute("LOCK TABLE kitchens IN ACCESS EXCLUSIVE MODE")
    first = Background(project.connect, "BEGIN", "LOCK TABLE kitchens IN ROW EXCLUSIVE MODE", "COMMIT",
                       application="waiter-1")
    second = None
    try:
        with project.connect() as watch:
            wait_until(lambda: waiting_for_lock(watch, first.pid), "the first waiter to queue")
            second = Background(project.connect, "SELECT count(*) FROM kitchens", application="waiter-2")
            wait_until(lambda: waiting_for_lock(watch, second.pid), "the second waiter to queue")
        time.sleep(REUSE_SECONDS + 0.2)  # no reading from before the chain is reused
        errors: list[str] = []
        page = _open(browser, dashboard.url + "/live", 1440, errors)
        pids = page.locator("#tree [data-pid]").evaluate_all("rows => rows.map(r => Number(r.dataset.pid))")
        assert pids[0] == root.info.backend_pid, pids
        assert set(pids[1:]) == {first.pid, second.pid}, pids
        assert f"pid={root.info.backend_pid}" in page.locator("#blocking").inner_text()
        assert page.locator('meta[http-equiv="refresh"]').count() == 1
        assert page.locator("#connections svg.meter").count() >= 2, "connections by state, drawn"
        assert errors == []
        if os.environ.get("CUISINE_DB_DASHBOARD_SCREENSHOTS") == "1":
            page.screenshot(path=str(SCREENSHOTS / "live-1440.png"), full_page=True)
            narrow = _open(browser, dashboard.url + "/live", 375, errors)
            narrow.screenshot(path=str(SCREENSHOTS / "live-375.png"))
    finally:
        root.rollback()
        root.close()
        for waiter in (first, second):
            if waiter is not None:
                waiter.done(30)
                waiter.close()


def test_every_page_loads_under_an_access_exclusive_lock_on_recipes(dashboard: Dashboard) -> None:
    holder = dashboard.project.connect()
    holder.autocommit = False
    holder.execute("LOCK TABLE recipes IN ACCESS EXCLUSIVE MODE")
    time.sleep(REUSE_SECONDS + 0.2)  # every page read anew, under the lock
    try:
        for path in PAGES:
            started = time.monotonic()
            status, html = dashboard.get(path)
            took = time.monotonic() - started
            assert status == 200 and took < 20, (path, status, took)
            if path == "/database":
                # Its size comes from the catalog, and the page says so, or the part is named as unread.
                assert "locked: size from the catalog" in html or "Could not be read" in html
    finally:
        holder.rollback()
        holder.close()


def test_hostile_requests_get_plain_404s(dashboard: Dashboard) -> None:
    for path in ["/nope", "/../../etc/passwd", "/database/plan/abc", "/database/plan/999999999",
                 "/database/plan/1%3B%20DROP%20TABLE%20recipes",
                 "/?q=1%27%20OR%201=1--", "/recovery?x=%3Cscript%3Ealert(1)%3C/script%3E",
                 "/live?env=staging", "/%3Cscript%3E"]:
        status, html = dashboard.get(path)
        assert status == 404, (path, status)
        assert "Traceback" not in html and "<script>" not in html and "alert(1)" not in html, path
    assert dashboard.get("/incidents")[0] == 200
    posted = urllib.request.Request(dashboard.url + "/live", data=b"pid=1", method="POST")  # noqa: S310
    try:
        urllib.request.urlopen(posted, timeout=30)  # noqa: S310 - our own loopback URL
        raise AssertionError("a POST was answered")
    except urllib.error.HTTPError as exc:
        assert exc.code == 405 and "Traceback" not in exc.read().decode()
    rebound = urllib.request.Request(dashboard.url + "/", headers={"Host": "attacker.example"})  # noqa: S310
    try:
        urllib.request.urlopen(rebound, timeout=30)  # noqa: S310 - our own loopback URL
        raise AssertionError("a foreign Host was answered")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400


def test_off_loopback_the_token_is_required(dashboard: Dashboard) -> None:
    with warnings.catch_warnings():  # Starlette's TestClient prefers a newer HTTP client; this one still works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from cuisine_db.dashboard.app import create_app

    settings = dashboard.project.settings
    token = "s3cret-token-0123456789abcdef"
    app = create_app(settings, settings.env("production"), token=token, loopback=False)
    with TestClient(app, base_url="http://192.0.2.1:8080", raise_server_exceptions=False) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {token}x"}):
            answer = client.get("/incidents", headers=headers)
            assert answer.status_code == 401 and "Traceback" not in answer.text and token not in answer.text
        assert client.get("/incidents?token=nope").status_code == 401
        assert client.get("/incidents", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        moved = client.get(f"/incidents?token={token}", follow_redirects=False)
        assert moved.status_code == 303 and moved.headers["location"] == "/incidents"
        assert client.get("/incidents").status_code == 200  # the cookie from the redirect
        assert client.get("/nope", headers={"Authorization": f"Bearer {token}"}).status_code == 404


def test_the_cli_refuses_another_address_without_a_token(dashboard: Dashboard) -> None:
    refused = dashboard.project.cli("dashboard", "--env", "production", "--address", "192.0.2.1")
    assert refused.returncode == 4 and "dashboard_token_env" in refused.stderr, refused.stderr
    bad = dashboard.project.cli("dashboard", "--env", "production", "--address", "not-an-address")
    assert bad.returncode == 2 and "not an IP address" in bad.stderr, bad.stderr
    through_make = dashboard.project.make("db-dashboard", "env=production", "address=192.0.2.1")
    assert through_make.returncode != 0 and "exit 4" in through_make.stderr, through_make.stderr
    assert "dashboard_token_env" in through_make.stderr


def test_a_failing_archive_turns_the_overview_red(dashboard: Dashboard, browser: Any) -> None:
    """Last: it breaks the archive (the deleted backup is checked first, on a repository still whole)."""
    project = dashboard.project
    shutil.rmtree(Path(project.repository.removeprefix("file://")) / "backups" / dashboard.backups[2])
    time.sleep(REUSE_SECONDS + 0.2)
    errors: list[str] = []
    page = _open(browser, dashboard.url + "/recovery", 1440, errors)
    listed = page.locator("[data-backup]").evaluate_all("rows => rows.map(r => r.dataset.backup)")
    assert dashboard.backups[2] not in listed and dashboard.backups[0] in listed, listed
    with project.connect() as conn:
        conn.execute("ALTER SYSTEM SET archive_command = 'false'")
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        conn.execute("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = conn.execute("SELECT failed_count FROM pg_stat_archiver").fetchone()
            if row and row[0] > 0:
                break
            time.sleep(0.5)
    page = _open(browser, dashboard.url + "/", 1440, errors)
    statuses = dict(page.locator("[data-check]").evaluate_all(
        "rows => rows.map(r => [r.dataset.check, r.dataset.status])"))
    assert statuses["archiving"] == "red" or statuses["WAL archive"] == "red", statuses
    assert "action needed" in page.locator("h1").inner_text()
    assert errors == []


def test_a_stopped_server_shows_as_down_and_is_not_started(dashboard: Dashboard) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from cuisine_db.dashboard.app import create_app

    settings = dashboard.project.settings
    app = create_app(settings, settings.env("development"))  # never started in this project
    with TestClient(app, base_url="http://127.0.0.1:8080", raise_server_exceptions=False) as client:
        for path in PAGES:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.status_code)
            assert "Traceback" not in answer.text
        overview = client.get("/").text
        assert 'data-check="server" data-status="red"' in overview and "Could not be read" in overview
        assert "make cluster-up env=development" in overview
    assert not dashboard.project.cluster("development").running()
