"""The web console in a real browser: sign in, drag-and-drop upload with per-file status,
versions, delete and restore, a streamed answer seen before it is done, citations opening the
exact quoted characters, the student's view, the admin's, and a phone-sized screen."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ROOT, TIMEOUT_MS, Console, drop_files

pytestmark = pytest.mark.browser

EXAMPLES = ROOT / "examples"
TITLES = {"lesson.pdf": "Flight: how wings lift", "four-forces.md": "The four forces of flight"}
QUESTION = "How does the pressure difference make lift, and how does lift balance weight?"
PASSWORD = "a long passphrase"
# `EDGERAG_CONSOLE_SCREENSHOT=docs/console.png` also writes the README's picture from this run.
README_SHOT = os.environ.get("EDGERAG_CONSOLE_SCREENSHOT")


async def _page(browser: Any, console: Console, **context: Any) -> Any:
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    ctx = await browser.new_context(**{"viewport": {"width": 1200, "height": 820}, **context})
    page = await ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors  # checked at the end of each test: no script errors, no CSP reports
    await page.goto(console.url)
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return page


async def _sign_in(page: Any, console: Console, email: str) -> None:
    form = page.locator("#login-form")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_label("Tenant id").fill(console.tenant_id)
    await form.get_by_role("button", name="Sign in").click()


async def test_a_teacher_uploads_asks_and_opens_the_quoted_source(
    browser: Any, console: Console, shots: Any
) -> None:
    from playwright.async_api import expect

    await console.register("ada@school.edu", PASSWORD, "Ada", "teacher")

    async def ada() -> dict[str, str]:
        return await console.login("ada@school.edu", PASSWORD)

    page = await _page(browser, console)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await shots(page, "01-sign-in")
    await _sign_in(page, console, "ada@school.edu")
    await expect(page.get_by_role("heading", name="Documents")).to_be_visible()
    await expect(page.locator("#who-role")).to_have_text("teacher")

    # Two files dropped at once: each has its own progress and status, until ready.
    files = [EXAMPLES / "lesson.pdf", EXAMPLES / "four-forces.md"]
    await drop_files(page, "#dropzone", files)
    for path in files:
        item = page.locator(f'li.upload[data-name="{path.name}"]')
        await expect(item).to_have_attribute("data-status", "ready")
        await expect(item.locator(".status")).to_contain_text("Ready")
        assert await item.locator("progress").get_attribute("value") == "100"
    table = page.locator("#document-table tbody")
    for title in TITLES.values():  # the documents' own titles (the PDF's, the first heading)
        row = table.locator("tr", has=page.get_by_role("rowheader", name=title))
        await expect(row.locator(".badge")).to_have_text("ready")
    await shots(page, "02-uploaded")

    # Versions of one document, then delete and restore another.
    pdf_row = table.locator("tr", has=page.get_by_role("rowheader", name=TITLES["lesson.pdf"]))
    await pdf_row.get_by_role("button", name="Versions").click()
    await expect(table.locator("tr.versions .versions-table")).to_contain_text("v1 (live)")
    forces = TITLES["four-forces.md"]
    md_row = table.locator("tr", has=page.get_by_role("rowheader", name=forces))
    await md_row.get_by_role("button", name="Delete").click()
    deleted = page.locator("#deleted-list li")
    await expect(deleted).to_contain_text(forces)
    await expect(page.get_by_role("rowheader", name=forces)).to_have_count(0)
    await deleted.get_by_role("button", name="Restore").click()
    await expect(page.get_by_role("rowheader", name=forces)).to_have_count(1)
    await expect(page.locator("#deleted-panel")).to_be_hidden()

    # Ask: the model is held after its first sentence, so the page must show it while the
    # answer is still streaming; then the rest, confidence and follow-ups arrive.
    await page.get_by_role("link", name="Ask").click()
    question = page.get_by_label("Ask about your documents")
    await question.fill(QUESTION)
    console.model.hold_next = True
    await question.press("Enter")  # Enter asks; Shift+Enter is a new line
    await asyncio.wait_for(console.model.held.wait(), TIMEOUT_MS / 1000)
    answer = page.locator("li.msg.assistant").last
    text = answer.locator(".answer")
    await expect(text).not_to_be_empty()
    await expect(answer).to_have_attribute("data-state", "streaming")
    await expect(text).to_have_attribute("aria-busy", "true")
    partial = (await text.text_content() or "").strip()
    await shots(page, "03-streaming")
    console.model.gate.set()
    await expect(answer).to_have_attribute("data-state", "done")
    await expect(text).to_have_attribute("aria-busy", "false")
    final = (await text.text_content() or "").strip()
    assert partial and final.startswith(partial) and len(final) > len(partial), (partial, final)
    await expect(text.locator("button.marker")).not_to_have_count(0)  # [n] opens source n
    await expect(answer.locator(".confidence")).to_contain_text("Confidence")
    await expect(answer.locator(".abstained")).to_have_count(0)

    # What the server sent, as it stored the message: the same text, these citations.
    session_id = await page.locator('#session-list .session[aria-current="true"]').get_attribute(
        "data-session-id"
    )
    stored = await console.http.get(f"/v1/chat/sessions/{session_id}", headers=await ada())
    last = stored.json()["messages"][-1]
    assert last["role"] == "assistant" and last["status"] == "complete"
    assert last["content"] == final and not last["meta"]["abstained"]
    citations = last["citations"]
    assert citations
    await expect(answer.locator(".chip")).to_have_count(len(citations))
    await shots(page, "04-answer")
    if README_SHOT:
        clip = {"x": 0, "y": 0, "width": 1200, "height": 480}
        shutil.copyfile(await shots(page, "readme", clip=clip), ROOT / Path(README_SHOT))

    # Each citation opens its source with exactly the quoted characters highlighted; a PDF
    # citation shows its page. Escape closes the dialog (it is a modal <dialog>).
    dialog = page.locator("#source-dialog")
    pages_seen = False
    for citation in citations:
        await answer.locator(f'.chip[data-n="{citation["n"]}"]').click()
        await expect(dialog).to_be_visible()
        mark = dialog.locator("#source-quote")
        await expect(mark).to_be_visible()
        assert await mark.text_content() == citation["quote"]
        await expect(mark).to_be_focused()
        where = dialog.locator("#source-where")
        if citation["page"] is not None:
            await expect(where).to_contain_text(f"Page {citation['page']}")
            pages_seen = True
        await expect(dialog.locator("#source-note")).to_be_hidden()  # the cited version is live
        if citation is citations[0]:
            await shots(page, "05-citation")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
    assert pages_seen, "the answer cites the PDF, so one citation shows its page"

    # A follow-up is a button that asks it, in the same chat; the chat is in the list.
    follow_ups = answer.locator(".follow-up")
    if await follow_ups.count():
        await follow_ups.first.click()
        await expect(page.locator("li.msg.assistant")).to_have_count(2)
        await expect(page.locator("li.msg.assistant").last).to_have_attribute("data-state", "done")
    sessions = page.locator("#session-list .session")
    await expect(sessions).to_have_count(1)
    await expect(sessions.first).to_have_attribute("aria-current", "true")
    await shots(page, "06-follow-up")
    assert page.errors == []


async def test_a_student_reads_and_asks_but_sees_no_upload(
    browser: Any, console: Console, shots: Any
) -> None:
    from playwright.async_api import expect

    await console.register("sam@school.edu", PASSWORD, "Sam", "student")
    await console.add_text(
        "Wings",
        "Lift on a wing comes from the pressure difference between its surfaces."
        " A stall happens when the angle of attack grows too large.",
    )
    page = await _page(browser, console)
    await _sign_in(page, console, "sam@school.edu")
    await expect(page.get_by_role("heading", name="Ask", exact=True)).to_be_attached()
    await expect(page.locator("#who-role")).to_have_text("student")
    await expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    await page.get_by_role("link", name="Documents").click()
    await expect(page.get_by_role("rowheader", name="Wings")).to_be_visible()
    await expect(page.locator("#upload-panel")).to_be_hidden()
    await expect(page.locator("#file-input")).to_be_hidden()
    await expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    await shots(page, "01-student-documents")

    await page.get_by_role("link", name="Ask").click()
    await page.get_by_label("Ask about your documents").fill("Where does lift on a wing come from?")
    await page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.locator("li.msg.assistant").last
    await expect(answer).to_have_attribute("data-state", "done")
    await expect(answer.locator(".chip")).not_to_have_count(0)
    await shots(page, "02-student-answer")
    # A reload keeps the tab's session, refreshing an access token near its end (the refresh
    # token is single-use: the page keeps the new pair); signing out forgets it.
    kept = "edgerag.console.session"
    before = await page.evaluate(f"JSON.parse(sessionStorage.getItem('{kept}'))")
    await page.evaluate(
        f"""() => {{
            const s = JSON.parse(sessionStorage.getItem('{kept}'));
            sessionStorage.setItem('{kept}', JSON.stringify({{...s, expiresAt: 0}}));
        }}"""
    )
    async with page.expect_response("**/v1/auth/refresh") as refreshed:
        await page.reload()
    assert (await refreshed.value).status == 200
    await expect(page.locator("#who-role")).to_have_text("student")
    after = await page.evaluate(f"JSON.parse(sessionStorage.getItem('{kept}'))")
    assert after["refreshToken"] != before["refreshToken"] and after["expiresAt"] > 0
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0
    assert page.errors == []


async def test_an_admin_signs_in_with_an_api_key_and_manages_the_tenant(
    browser: Any, console: Console, shots: Any
) -> None:
    from playwright.async_api import expect

    page = await _page(browser, console)
    key_field = page.locator("#key-login-form").get_by_label("API key")
    await key_field.fill(console.admin_key)
    await key_field.press("Enter")  # the keyboard submits the form
    await expect(page.locator("#who-role")).to_have_text("admin")
    await page.get_by_role("link", name="Admin").click()
    await expect(page.get_by_role("heading", name="Usage and limits")).to_be_visible()
    await expect(page.locator("#budget meter")).to_be_visible()
    await expect(page.locator("#limits-table tbody tr")).not_to_have_count(0)
    await expect(page.locator("#keys-table tbody tr")).to_have_count(1)  # the tenant's first key

    await page.get_by_text("Register a user").click()
    register = page.locator("#register-form")
    await register.get_by_label("Email").fill("ben@school.edu")
    await register.get_by_label("Name").fill("Ben")
    await register.get_by_label("Password").fill(PASSWORD)
    await register.get_by_label("Role").select_option("teacher")
    await register.get_by_role("button", name="Register").click()
    await expect(page.locator("#users-table tbody")).to_contain_text("ben@school.edu")

    await page.locator("#key-form").get_by_label("Name").fill("loader")
    await page.locator("#key-form").get_by_label("Role").select_option("teacher")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.locator("#new-key code")).to_have_text(re.compile(r"^erk_\S+$"))
    await expect(page.locator("#keys-table tbody tr")).to_have_count(2)
    await shots(page, "01-admin")
    key = await page.locator("#new-key code").text_content()
    me = await console.http.get("/v1/auth/me", headers={"authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json()["role"] == "teacher"
    await (
        page.locator("#keys-table tbody tr", has_text="loader")
        .get_by_role("button", name="Revoke")
        .click()
    )
    await expect(page.locator("#keys-table tbody tr", has_text="loader")).to_contain_text("revoked")
    me = await console.http.get("/v1/auth/me", headers={"authorization": f"Bearer {key}"})
    assert me.status_code == 401
    assert page.errors == []


async def test_on_a_phone_and_for_assistive_technology(
    browser: Any, console: Console, shots: Any
) -> None:
    """A 390 px wide screen scrolls only vertically; every control has a label or a name; the
    streamed answer is a live region."""
    from playwright.async_api import expect

    await console.register("ada@school.edu", PASSWORD, "Ada", "teacher")
    await console.add_text("Drag", "Drag is the resistance of the air, acting backwards.")
    page = await _page(browser, console, viewport={"width": 390, "height": 844}, is_mobile=True)
    unlabeled = """() => [...document.querySelectorAll("input, select, textarea")]
        .filter((e) => e.labels.length === 0 && !e.getAttribute("aria-label")).map((e) => e.id)"""
    nameless = """() => [...document.querySelectorAll("button, a[href]")]
        .filter((e) => e.offsetParent !== null)
        .filter((e) => !(e.getAttribute("aria-label") || e.textContent).trim())
        .map((e) => e.outerHTML)"""
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
    assert await page.evaluate(unlabeled) == []
    assert await page.evaluate(overflow) <= 0
    await _sign_in(page, console, "ada@school.edu")
    await expect(page.get_by_role("rowheader", name="Drag")).to_be_visible()
    assert await page.evaluate(overflow) <= 0
    assert await page.evaluate(nameless) == []
    await shots(page, "01-phone-documents", full_page=True)
    await page.get_by_role("link", name="Ask").click()
    await page.get_by_label("Ask about your documents").fill("What is drag?")
    await page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.locator("li.msg.assistant").last
    await expect(answer).to_have_attribute("data-state", "done")
    await expect(answer.locator(".answer")).to_have_attribute("aria-live", "polite")
    assert await page.evaluate(overflow) <= 0
    assert await page.evaluate(nameless) == []
    await shots(page, "02-phone-answer", full_page=True)
    assert page.errors == []
