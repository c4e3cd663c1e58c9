"""The operator's Airflow UI against a real API server (simple auth manager, named users and roles).

One stack (stand-in dossier over ODBC, SSM simulator over HTTP), three runs of the real DAG (``airflow dags test``
sharing its metadata database with ``airflow api-server``), checked from the outside over HTTP and in headless
Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium; nothing downloaded):
1. the first sync, with a customer row saved without ``CT_Num`` (quarantined, G3);
2. a day of changes on both sides (a contact's job title edited in Sage and in SSM: a G2 conflict) and five more
   customers deleted in Sage under a tight guard: G4 withholds the deletions and the run asks for approval. In
   the browser an operator logs in, opens the approval in Airflow's "Required actions" screen and approves the
   accounts. The approved set is applied in SSM;
3. eight contacts deleted in Sage: the run asks again (contacts, a new set); rejected over the REST API, they
   stay withheld, and the approval task run once more for that run does not ask again (the same set).
Anonymous callers and users the auth manager does not allow on the sync DAG are refused on every plugin route;
the sync page shows the quarantined row (first seen, runs since), the conflict (both values, the winner) and the
withheld deletions with the decision. Screenshots of each page go to the test's folder (``screens/``).
"""

from __future__ import annotations

import html
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sage_sync.engine.staging import run_name
from sage_sync.settings import DAG_ID
from sage_sync_tools.api_server import ApiServer
from sage_sync_tools.stack import DagRunOutcome, DayOfChanges, SyncStack, day_of_changes
from tests.support.sage_edits import insert_customer_without_code, purge_customers
from tests.support.ssm_reads import by_ext_id

#: Five more deletions of the stand-in's 60 accounts trip it (G4); a person has 5 minutes to answer.
SETTINGS = {"guard_ratio": 0.05, "guard_minimum": 2, "approval_timeout_minutes": 5}
#: viewer: reads DAGs; op: also acts on them (answers approvals); "" (no role): the auth manager allows nothing.
USERS = {"vera": "viewer", "otto": "op", "nora": ""}
PLUGIN_ROUTES = (
    "/sage-sync/sync",
    "/sage-sync/reports",
    "/sage-sync/data-docs/index.html",
    f"/sage-sync/dags/{DAG_ID}/sync",
    f"/sage-sync/dags/{DAG_ID}/reports",
    f"/sage-sync/dags/{DAG_ID}/data-docs/index.html",
)
ASK_TIMEOUT_S = 240.0


@dataclass
class Scenario:
    """The stack, its runs' reports and what the test did to both sides and in the UI."""

    stack: SyncStack
    server: ApiServer
    screens: Path
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    day: DayOfChanges = field(default_factory=DayOfChanges)
    deleted: list[str] = field(default_factory=list)
    ssm_before: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    browser_seen: dict[str, str] = field(default_factory=dict)
    deleted_more: list[str] = field(default_factory=list)
    asked_second: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked_again: str = ""
    page_after_day: str = ""
    dag_page_after_day: str = ""


def _delete_contacts(stack: SyncStack, count: int) -> list[str]:
    """``count`` contacts deleted in Sage (a clean-up of the address book): ``CT_Num/CT_No`` keys."""
    engine = stack.sage()
    try:
        with engine.begin() as db:
            rows = db.execute(
                sa.text(
                    "SELECT k.CT_Num, k.CT_No FROM F_CONTACTT k JOIN F_COMPTET c ON c.CT_Num = k.CT_Num "
                    "WHERE c.CT_Type = 0 ORDER BY k.CT_Num DESC, k.CT_No LIMIT :n"
                ),
                {"n": count},
            ).all()
            for code, number in rows:
                db.execute(
                    sa.text("DELETE FROM F_CONTACTT WHERE CT_Num = :c AND CT_No = :n"),
                    {"c": code, "n": number},
                )
        return [f"{code}/{number}" for code, number in rows]
    finally:
        engine.dispose()


def _keep(scenario: Scenario, name: str, outcome: DagRunOutcome) -> dict[str, Any]:
    assert outcome.returncode == 0, f"{name}: rc {outcome.returncode}\n{outcome.log_tail()}"
    assert outcome.report is not None, f"{name}: no report\n{outcome.log_tail()}"
    scenario.reports[name] = outcome.report
    return outcome.report


class Background:
    """One DAG run in a thread (``airflow dags test`` waits there for answers given in the UI)."""

    def __init__(self, stack: SyncStack) -> None:
        self.outcome: DagRunOutcome | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(stack,), daemon=True)
        self.thread.start()

    def _run(self, stack: SyncStack) -> None:
        try:
            self.outcome = stack.run_dag()
        except BaseException as exc:  # reported by ``result``
            self.error = exc

    def result(self, timeout: float) -> DagRunOutcome:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the run did not finish within {timeout:.0f} s"
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


def _pending(server: ApiServer) -> list[dict[str, Any]]:
    reply = server.get(f"/api/v2/dags/{DAG_ID}/dagRuns/~/hitlDetails", user="otto")
    assert reply.status_code == 200, reply.text[:300]
    return [d for d in reply.json()["hitl_details"] if not d.get("response_received")]


def _wait_for_asks(server: ApiServer, run: Background, timeout: float) -> list[dict[str, Any]]:
    """The approvals a run asks for, once it has asked for them and runs nothing else (bounded wait)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        asks = _pending(server)
        if asks:
            time.sleep(3)  # other entities' approvals come a moment later
            return _pending(server)
        assert run.thread.is_alive(), "the run finished without asking for approval"
        time.sleep(1)
    raise AssertionError(f"no approval asked within {timeout:.0f} s")


def _browser(scenario: Scenario) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def _wait(driver: Any, what: str, check: Any, timeout: float = 60.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: check(d))
    except Exception as exc:
        raise AssertionError(f"{what}: not seen within {timeout:.0f} s at {driver.current_url}") from exc


def _log_in(driver: Any, scenario: Scenario, user: str) -> None:
    from selenium.webdriver.common.by import By

    server = scenario.server
    driver.get(f"{server.url}/")
    username = _wait(
        driver, "the login form", lambda d: d.find_elements(By.CSS_SELECTOR, "input[name='username']")
    )
    username[0].send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "input[type='password']").send_keys(server.passwords[user])
    driver.save_screenshot(str(scenario.screens / "01-login.png"))
    driver.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    _wait(driver, "the signed-in UI", lambda d: any(c["name"] == "_token" for c in d.get_cookies()))


def _approve_in_ui(driver: Any, scenario: Scenario, ask: dict[str, Any]) -> None:
    """Open the task's "Required actions" screen, read the question, click Approve."""
    from selenium.webdriver.common.by import By

    ti = ask["task_instance"]
    driver.get(
        f"{scenario.server.url}/dags/{DAG_ID}/runs/{ti['dag_run_id']}/tasks/{ti['task_id']}/required_actions"
    )
    _wait(driver, "the question", lambda d: "Delete" in d.find_element(By.TAG_NAME, "body").text)
    scenario.browser_seen["approval"] = driver.find_element(By.TAG_NAME, "body").text
    driver.save_screenshot(str(scenario.screens / "03-approval.png"))

    def answered() -> bool:
        return not any(a["ti_id"] == ask["ti_id"] for a in _pending(scenario.server))

    for _ in range(3):  # the screen may still be wiring its buttons on the first click
        button = _wait(
            driver,
            "the Approve button",
            lambda d: [b for b in d.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Approve"],
        )[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
        button.click()
        try:
            _wait(driver, "the answer recorded", lambda d: answered(), timeout=15)
            break
        except AssertionError:
            continue
    assert answered(), "the approval was not recorded after three clicks on Approve"
    driver.save_screenshot(str(scenario.screens / "04-approved.png"))


def _reject_by_api(scenario: Scenario, ask: dict[str, Any]) -> None:
    ti = ask["task_instance"]
    server = scenario.server
    import requests

    reply = requests.patch(
        f"{server.url}/api/v2/dags/{DAG_ID}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/-1/hitlDetails",
        json={"chosen_options": ["Reject"]},
        headers={"Authorization": f"Bearer {server.token('otto')}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text[:300]


def _sync_page_in_browser(driver: Any, scenario: Scenario) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{scenario.server.url}/sage-sync/sync")
    _wait(driver, "the sync page", lambda d: "Open quarantine" in d.find_element(By.TAG_NAME, "body").text)
    scenario.browser_seen["sync"] = driver.find_element(By.TAG_NAME, "body").text
    driver.save_screenshot(str(scenario.screens / "05-sync-page.png"))
    # The same page inside the Airflow UI (the DAG's "Sync" tab, an iframe the session cookie authenticates).
    driver.get(f"{scenario.server.url}/dags/{DAG_ID}/plugin/sage-sync-dag")
    _wait(driver, "the DAG's Sync tab", lambda d: d.find_elements(By.TAG_NAME, "iframe"))
    frame = driver.find_element(By.TAG_NAME, "iframe")
    # The plugin's href is relative: the UI resolves it against its base URL, not against the tab's own path.
    scenario.browser_seen["tab_src"] = frame.get_property("src")
    driver.switch_to.frame(frame)
    _wait(
        driver,
        "the sync page in the tab",
        lambda d: "Open quarantine" in d.find_element(By.TAG_NAME, "body").text,
    )
    driver.switch_to.default_content()
    driver.save_screenshot(str(scenario.screens / "06-dag-sync-tab.png"))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("operator_ui")
    stack = SyncStack(root, settings=SETTINGS)
    server = ApiServer(stack, USERS)
    (root / "screens").mkdir()
    driver = None
    try:
        stack.start(scale="60", seed=5)
        s = Scenario(stack, server, root / "screens")
        insert_customer_without_code(stack)
        _keep(s, "first", stack.run_dag())
        server.start()
        s.day = day_of_changes(stack)
        s.deleted = purge_customers(stack, 5)
        s.ssm_before = by_ext_id(stack, "accounts")
        run = Background(stack)
        asks = _wait_for_asks(server, run, ASK_TIMEOUT_S)
        s.asked = {a["task_instance"]["task_id"].split(".")[0]: a for a in asks}
        driver = _browser(s)
        _log_in(driver, s, "otto")
        driver.get(f"{server.url}/required_actions?response_received=false")
        time.sleep(2)
        driver.save_screenshot(str(s.screens / "02-required-actions.png"))
        for entity, ask in s.asked.items():
            if entity == "accounts":
                _approve_in_ui(driver, s, ask)
                s.answers[entity] = "Approve"
            else:  # not expected with this dossier: another entity's purge is not approved here
                _reject_by_api(s, ask)
                s.answers[entity] = "Reject"
        _keep(s, "day", run.result(300))
        reply = server.get("/sage-sync/sync", user="vera")
        assert reply.status_code == 200, reply.text[:500]
        s.page_after_day = reply.text
        s.dag_page_after_day = server.get(f"/sage-sync/dags/{DAG_ID}/sync", user="vera").text
        _sync_page_in_browser(driver, s)
        # A clean-up of contacts: the run asks again (another entity, a new set); rejected, they stay withheld.
        s.deleted_more = _delete_contacts(stack, 8)
        purge = Background(stack)
        s.asked_second = {
            a["task_instance"]["task_id"].split(".")[0]: a for a in _wait_for_asks(server, purge, 120)
        }
        for ask in s.asked_second.values():
            _reject_by_api(s, ask)
        rejected = _keep(s, "rejected", purge.result(120))
        # The approval task of that run once more, as Airflow runs it: the rejected set is not asked about again.
        s.asked_again = stack.airflow(
            "tasks", "test", DAG_ID, "contacts.approve", str(rejected["run_id"]), check=False, timeout=120
        ).stdout
        yield s
    finally:
        if driver is not None:
            driver.quit()
        server.stop()
        stack.stop()


def test_plugin_routes_refuse_anonymous_callers_and_users_without_access_to_the_dag(
    scenario: Scenario,
) -> None:
    server = scenario.server
    name = f"{run_name(str(scenario.reports['day']['run_id']))}.html"
    report, dag_report = f"/sage-sync/reports/{name}", f"/sage-sync/dags/{DAG_ID}/reports/{name}"
    for path in (*PLUGIN_ROUTES, report, dag_report):
        anonymous = server.get(path)
        assert anonymous.status_code == 401, (path, anonymous.text[:200])
        assert "Sans Code" not in anonymous.text
        refused = server.get(path, user="nora")
        assert refused.status_code == 403, (path, refused.text[:200])
    forged = server.get(PLUGIN_ROUTES[0], headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code in (401, 403)
    # The same user is refused by the core API too: the plugin asks the same auth manager the same question.
    assert server.get(f"/api/v2/dags/{DAG_ID}", user="nora").status_code == 403
    assert server.get(report, user="vera").status_code == 200
    assert server.get(dag_report, user="vera").content == server.get(report, user="vera").content
    # Only the sync DAGs of this deployment have pages.
    assert server.get("/sage-sync/dags/another_dag/sync", user="vera").status_code == 404
    assert server.get("/sage-sync/reports/..%2Fstate.db", user="vera").status_code == 404
    # Encoded, so that no client normalises the path before the app sees it.
    escape = server.get("/sage-sync/data-docs/..%2F..%2Fstate.db", user="vera")
    assert escape.status_code == 404 and not escape.content.startswith(b"SQLite format")


def test_g3_g2_g4_the_sync_page_shows_quarantine_conflict_and_withheld_deletions(scenario: Scenario) -> None:
    text = scenario.page_after_day
    first, day = scenario.reports["first"], scenario.reports["day"]
    for report in (first, day):
        assert str(report["run_id"]) in text
        assert f"reports/{run_name(str(report['run_id']))}.html" in text
    assert "Signed in as <strong>vera</strong>" in text
    # G3: the row without CT_Num, quarantined since the first run.
    quarantined = day["entities"]["accounts"]["quarantined"]
    assert quarantined, day["entities"]["accounts"]
    assert html.escape(str(quarantined[0]["reason"])) in text and f"{first['run_id']}</small>" in text
    # G2: the contact's job title, both values and the winner.
    assert scenario.day.sage_job_title in text and scenario.day.ssm_job_title in text
    assert any(c["winner"] == "sage" for c in day["entities"]["contacts"]["conflicts"])
    # G4: the withheld set of the day, with the decision taken in the UI.
    accounts = day["entities"]["accounts"]
    assert accounts["withheld_set"] and accounts["withheld_set"] in text
    assert scenario.deleted[0] in text and "approved by otto" in text
    # The browser showed the same page (rendered, signed in through the login form).
    assert scenario.day.ssm_job_title in scenario.browser_seen["sync"]
    assert "Open quarantine" in scenario.browser_seen["sync"]
    # The DAG's Sync tab frames the same page: the plugin's relative href resolved against the UI's base URL.
    assert scenario.browser_seen["tab_src"] == f"{scenario.server.url}/sage-sync/dags/{DAG_ID}/sync"
    # The DAG's page: the same content, its links to Airflow's pages going up from sage-sync/dags/<dag_id>/.
    run_link = f"../../../dags/{DAG_ID}/runs/{day['run_id']}".replace(":", "%3A").replace("+", "%2B")
    assert (
        run_link in scenario.dag_page_after_day and scenario.day.ssm_job_title in scenario.dag_page_after_day
    )
    assert f"'../dags/{DAG_ID}/runs/" in text


def test_g4_a1_deletions_approved_in_the_ui_are_applied_exactly_and_recorded(scenario: Scenario) -> None:
    day = scenario.reports["day"]
    accounts = day["entities"]["accounts"]
    asked = scenario.asked["accounts"]
    # The question showed the count and a sample of the records.
    count = sum(1 for d in accounts["deferred"] if d["rule"] == "G4")
    assert f"Delete {count} accounts" in asked["subject"], asked
    assert scenario.deleted[0] in asked["body"] and accounts["withheld_set"] in asked["body"]
    assert (
        "Approve" in scenario.browser_seen["approval"]
        and scenario.deleted[0] in scenario.browser_seen["approval"]
    )
    # Who decided and when is in the run report; the approved pass applied exactly the withheld set.
    decision = accounts["approval_decision"]
    assert decision["decision"] == "approved" and decision["by"] == "otto" and decision["at"]
    assert decision["set"] == accounts["withheld_set"] and decision["applied"] is True
    assert decision["deleted"] == count
    # SSM: every withheld account is deleted now, and no other account was deleted.
    withheld = {d["key"] for d in accounts["deferred"] if d["rule"] == "G4"}
    assert set(scenario.deleted) <= withheld
    after = by_ext_id(scenario.stack, "accounts")
    deleted_now = {
        k for k, r in after.items() if r.get("deleted") and not scenario.ssm_before[k].get("deleted")
    }
    assert deleted_now == withheld


def test_g4_a_rejected_set_stays_withheld_and_is_not_asked_again(scenario: Scenario) -> None:
    rejected = scenario.reports["rejected"]["entities"]["contacts"]
    assert list(scenario.asked_second) == ["contacts"]
    decision = rejected["approval_decision"]
    assert decision["decision"] == "rejected" and decision["by"] == "otto"
    assert decision["set"] == rejected["withheld_set"] and "applied" not in decision
    # Nothing of the second purge reached SSM.
    after = by_ext_id(scenario.stack, "contacts")
    assert all(not after[key].get("deleted") for key in scenario.deleted_more)
    assert set(scenario.deleted_more) <= {d["key"] for d in rejected["deferred"] if d["rule"] == "G4"}
    # The same set again: skipped with the reason, no new question.
    assert (
        f"set {rejected['withheld_set']}" in scenario.asked_again
        and "not asked again" in scenario.asked_again
    )
    assert _pending(scenario.server) == []
