#!/usr/bin/python3
"""The web console as an operator meets it, in headless chromium (stack_console_browser.sh
runs it against a stack of `damselfly up`):
  login page (401), a wrong token refused with #login-error, the right one typed in;
  the overview's card of default/demo with its status; kill -9 of demo-1's agent, then, with
  no reload, the agent_down row in #alarms-firing and the healing action healed in
  #last-actions; the action's page with its chain; Tab to the MCI card and Enter opens it.
A screenshot per step goes to ARTIFACTS. Any page exception or console.error fails the run.
Usage: console_browser.py BASE_URL TOKEN_FILE AGENT_PID ARTIFACTS WORKDIR
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
from cdp import Browser, CdpError  # noqa: E402

POLL_MS = 250  # the page's poll interval (?poll=): the agent_down alarm may last ~1 s
MCI = "default/demo"
VM = "default/demo/demo-1"
SUCCESS = ("healed",)  # an action's state when its verification passed, as the API says


ALARM_ROW = 'table#alarms-firing tbody tr[data-rule="agent_down"][data-vm="%s"]' % VM
WATCH = """(() => {
  window.dsfSeen = {};
  const look = () => {
    const s = window.dsfSeen;
    if (!s.alarm && document.querySelector(%s)) s.alarm = performance.now();
    const ok = [...document.querySelectorAll('table#last-actions tbody tr[data-action]')]
      .filter(tr => %s.includes(tr.dataset.state) && tr.textContent.includes(%s))
      .map(tr => tr.dataset.action);
    if (!s.healed && ok.length) s.healed = ok;
  };
  new MutationObserver(look).observe(document.body, {childList: true, subtree: true,
                                                     attributes: true});
})()"""


def q(selector):
    return "document.querySelector(%s)" % json.dumps(selector)


class Run:
    def __init__(self, b, base, artifacts):
        self.b, self.base, self.artifacts, self.n = b, base, artifacts, 0

    def step(self, name):
        print("[%s] %s" % (time.strftime("%H:%M:%S"), name), flush=True)

    def shot(self, name):
        self.n += 1
        self.b.screenshot(os.path.join(self.artifacts, "%02d-%s.png" % (self.n, name)))

    def ready(self, route, timeout=15):
        self.b.wait_for("document.body && document.body.dataset.ready === %s" % json.dumps(route),
                        timeout)


def login(r, token):
    b = r.b
    r.step("the console without a session: the login page, status 401")
    b.navigate(r.base + "/ui/")
    status = b.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")
    if status != 401:
        raise CdpError("GET /ui/ without a session answered %s, not 401" % status)
    b.wait_for(q("form#login[method=post][action='/ui/login'] input#token[type=password]"))
    r.shot("login")

    r.step("a wrong token stays on the login page with #login-error")
    b.click("#token")
    b.type_text("not-the-token")
    b.press("Enter")
    b.wait_for("%s && %s.textContent.trim() !== ''" % (q("#login-error"), q("#login-error")))
    if not b.evaluate("!!%s && !document.body.dataset.ready" % q("form#login")):
        raise CdpError("a wrong token left the login page")
    r.shot("login-refused")

    r.step("the controller's token typed in")
    b.click("#token")
    b.evaluate("%s.value = ''" % q("#token"))
    b.type_text(token)
    b.press("Enter")
    r.ready("overview")
    where = b.evaluate("location.href")
    if token in where or not where.startswith(r.base + "/ui/"):
        raise CdpError("after login the page is at %s" % where)
    if "dsf_session" in b.evaluate("document.cookie"):
        raise CdpError("the session cookie is readable by scripts (not HttpOnly)")


def card_text(b):
    return b.evaluate("(() => { const c = %s; return c && c.querySelector('.mci-status')"
                      " ? c.querySelector('.mci-status').textContent.trim() : null; })()"
                      % q('article.mci[data-mci="%s"]' % MCI))


def overview(r, agent_pid):
    b = r.b
    r.step("the overview with the MCI card of %s" % MCI)
    b.navigate(r.base + "/ui/?poll=%d#/overview" % POLL_MS)
    r.ready("overview")
    b.wait_for("(%s || {textContent: ''}).textContent.startsWith('Running')"
               % q('article.mci[data-mci="%s"] .mci-status' % MCI), 30)
    print("  card:", card_text(b), "| breaker:", b.evaluate(q("#breaker") + ".dataset.state"))
    r.shot("overview")
    loaded = b.evaluate("window.dsfLoadedAt")
    polls = int(b.evaluate("document.body.dataset.polls") or 0)

    # The alarm may last less than a second (the reboot is quick): an observer notes every
    # render of the page, so a row shown by one poll only is seen too; one that lasted less
    # than a poll is looked for on the Alarms page below.
    b.evaluate(WATCH % (json.dumps(ALARM_ROW), json.dumps(list(SUCCESS)), json.dumps(VM)))
    r.step("kill -9 of demo-1's agent (pid %d)" % agent_pid)
    os.kill(agent_pid, signal.SIGKILL)
    ids = b.wait_for("window.dsfSeen.healed", 300)
    r.shot("action-healed")
    if b.evaluate("window.dsfLoadedAt") != loaded:
        raise CdpError("the page reloaded (window.dsfLoadedAt changed)")
    now = int(b.evaluate("document.body.dataset.polls") or 0)
    if now <= polls:
        raise CdpError("data-polls did not grow (%d, then %d)" % (polls, now))
    print("  healed action(s): %s, %d polls, no reload" % (ids, now - polls))
    if b.evaluate("window.dsfSeen.alarm"):
        print("  the agent_down row was on the overview while it fired")
    else:
        alarm_on_alarms_page(r)
    return ids[0]


def alarm_on_alarms_page(r):
    """The alarm fired and resolved between two polls: the Alarms page, which lists every
    alarm series the controller heard of, must show it."""
    b = r.b
    r.step("the alarm lasted less than a poll: the Alarms page lists it")
    b.evaluate("location.hash = '#/alarms'")
    r.ready("alarms")
    row = 'table#alarms tbody tr[data-rule="agent_down"][data-vm="%s"]' % VM
    try:
        b.wait_for(q(row) + " !== null", 15)
    except CdpError:
        r.shot("alarms-page")
        raise CdpError("the overview never showed agent_down for %s and the Alarms page does "
                       "not list it" % VM)
    print("  agent_down for %s on the Alarms page: %s" % (VM, b.evaluate(q(row) + ".dataset.state")))
    r.shot("alarms-page")


def action_page(r, action_id):
    b = r.b
    r.step("the page of action %s" % action_id)
    b.evaluate("location.hash = '#/actions/' + %s" % json.dumps(action_id))
    r.ready("action")
    b.wait_for("(%s || {textContent: ''}).textContent.includes('reboot')" % q("#action-chain"))
    text = b.evaluate(q("#action-chain") + ".textContent").lower()
    for part in ("decision", "guard", "step", "verif"):
        if part not in text:
            raise CdpError("#action-chain does not show its %s: %s" % (part, text[:400]))
    # Its audit records: at least the end record the controller wrote when it healed.
    try:
        b.wait_for("[...document.querySelectorAll('main tbody tr')]"
                   ".some(tr => /\\bend\\b/.test(tr.textContent))", 10)
    except CdpError:
        r.shot("action-no-audit")
        raise CdpError("the page of action %s lists no audit record (no row of its end)"
                       % action_id)
    r.shot("action-chain")


def keyboard(r):
    b = r.b
    r.step("keyboard: Tab to the MCI card, Enter opens the MCI page")
    b.evaluate("location.hash = '#/overview'")
    r.ready("overview")
    b.evaluate("document.activeElement && document.activeElement.blur()")
    card = ("document.activeElement && document.activeElement.closest"
            "('[data-mci=\"%s\"]') !== null" % MCI)
    for _ in range(60):
        b.press("Tab")
        if b.evaluate(card):
            break
    else:
        raise CdpError("60 presses of Tab never reached the card of %s" % MCI)
    r.shot("card-focused")
    b.press("Enter")
    b.wait_for("location.hash === '#/mci/%s'" % MCI)
    r.ready("mci")
    # The VMs with every cell: demo-1 to demo-3 at least (a cpu_hot scale out on a busy
    # machine may have added one).
    rows = ("[...document.querySelectorAll('table#vms tbody tr[data-vm]')].filter(tr =>"
            " ['.state', '.region', '.csp', '.age', 'svg.sparkline']"
            ".every(s => tr.querySelector(s))).map(tr => tr.dataset.vm)")
    try:
        b.wait_for("['demo-1', 'demo-2', 'demo-3'].every(v => %s.includes(v))" % rows, 15)
    except CdpError:
        r.shot("mci-incomplete")
        raise CdpError("the MCI page's VM rows with state, region, CSP, age and sparkline: "
                       "%s, not demo-1 to demo-3" % b.evaluate(rows))
    r.shot("mci")


def main(argv):
    if len(argv) != 6:
        sys.exit(__doc__)
    base, token_file, agent_pid, artifacts, workdir = argv[1:]
    os.makedirs(artifacts, exist_ok=True)
    token = open(token_file).read().strip()
    with Browser(workdir) as b:
        r = Run(b, base, artifacts)
        try:
            login(r, token)
            action_page(r, overview(r, int(agent_pid)))
            keyboard(r)
            b.check_no_errors()
        except CdpError as e:
            try:
                r.shot("failed")
            except CdpError:
                pass
            print("console messages:\n  " + "\n  ".join(b.console[-20:]), file=sys.stderr)
            try:  # what the page showed when it failed
                print("page: %s" % b.evaluate(
                    "JSON.stringify({hash: location.hash, ready: document.body.dataset.ready,"
                    " polls: document.body.dataset.polls, error: (document.querySelector('#error')"
                    " || {}).textContent, alarms: (document.querySelector('#alarms-firing')"
                    " || {}).innerText, actions: (document.querySelector('#last-actions')"
                    " || {}).innerText})"), file=sys.stderr)
            except CdpError:
                pass
            sys.exit("FAIL: %s" % e)
    print("ok: %d screenshots in %s" % (r.n, artifacts))


if __name__ == "__main__":
    main(sys.argv)
