#!/usr/bin/python3
"""A small Chrome DevTools protocol driver for the console's browser tests: headless Debian
chromium, one page, driven over its WebSocket with Debian's python3-websocket. Run it with
/usr/bin/python3 (the interpreter that package installs into).

As a module:
    with Browser(workdir) as b:
        b.navigate("http://127.0.0.1:8080/ui/")
        b.wait_for("document.body.dataset.ready === 'overview'", 10)
        b.click("#login-submit"); b.type_text("secret"); b.press("Tab")
        b.screenshot("overview.png")
        b.check_no_errors()  # raises on any page exception or console.error

As a CLI (one step per argument, run in order, stops at the first failure):
    cdp.py --workdir DIR "nav URL" "wait JS" "wait:SECONDS JS" "eval JS" "click SELECTOR"
           "type TEXT" "press KEY" "shot PATH"
Exits 1 naming the step that failed, or when the page threw.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import websocket

# Key name -> (key, code, windowsVirtualKeyCode, text) for Input.dispatchKeyEvent.
KEYS = {
    "Tab": ("Tab", "Tab", 9, ""),
    "Enter": ("Enter", "Enter", 13, "\r"),
    "Escape": ("Escape", "Escape", 27, ""),
    "Space": (" ", "Space", 32, " "),
    "ArrowDown": ("ArrowDown", "ArrowDown", 40, ""),
    "ArrowUp": ("ArrowUp", "ArrowUp", 38, ""),
    "ArrowLeft": ("ArrowLeft", "ArrowLeft", 37, ""),
    "ArrowRight": ("ArrowRight", "ArrowRight", 39, ""),
}


class CdpError(Exception):
    pass


class Browser:
    def __init__(self, workdir, width=1280, height=900):
        self.workdir = workdir
        self.size = (width, height)
        self.proc = None
        self.ws = None
        self.seq = 0
        self.errors = []  # page exceptions and console.error calls, as text
        self.console = []  # every console message, as text

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        # Not WORKDIR/*.log: the test scripts print those on failure, and chromium's is noise.
        profile = os.path.join(self.workdir, "chromium", "profile")
        os.makedirs(profile, exist_ok=True)
        port_file = os.path.join(profile, "DevToolsActivePort")
        if os.path.exists(port_file):
            os.remove(port_file)
        args = [shutil.which("chromium") or "/usr/bin/chromium", "--headless", "--disable-gpu",
                "--remote-debugging-port=0", "--user-data-dir=" + profile,
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=%d,%d" % self.size, "about:blank"]
        if os.geteuid() == 0:  # chromium refuses to run as root with its sandbox
            args.insert(1, "--no-sandbox")
        log = open(os.path.join(self.workdir, "chromium", "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        port = self._active_port(port_file, 30)
        self.ws = websocket.create_connection(self._page_ws(port), timeout=30,
                                              suppress_origin=True)
        for domain in ("Page", "Runtime"):
            self.call(domain + ".enable")
        self.call("Emulation.setDeviceMetricsOverride", width=self.size[0],
                  height=self.size[1], deviceScaleFactor=1, mobile=False)

    def _active_port(self, port_file, secs):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CdpError("chromium exited %d at start (see chromium.log)" %
                               self.proc.returncode)
            try:
                with open(port_file) as f:
                    line = f.readline().strip()
                if line:
                    return int(line)
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise CdpError("chromium wrote no DevToolsActivePort in %d s" % secs)

    def _page_ws(self, port):
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10) as r:
            targets = json.load(r)
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise CdpError("chromium has no page target: %s" % targets)
        return pages[0]["webSocketDebuggerUrl"]

    def close(self):
        if self.ws:
            try:
                self.ws.close()
            except Exception:
                pass
            self.ws = None
        if self.proc and self.proc.poll() is None:
            # Its own session: the renderer and GPU helpers go with it.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    # The protocol: one call at a time; events that arrive meanwhile are noted.
    def call(self, method, timeout=30, **params):
        self.seq += 1
        self.ws.send(json.dumps({"id": self.seq, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("%s: no answer in %d s" % (method, timeout))
            self.ws.settimeout(left)
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.seq:
                if "error" in msg:
                    raise CdpError("%s: %s" % (method, msg["error"].get("message")))
                return msg.get("result", {})
            self._event(msg)

    def _event(self, msg):
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text")
            self.errors.append("exception: %s (%s:%s)" % (text, d.get("url", ""),
                                                         d.get("lineNumber")))
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", "")))
                            for a in p.get("args", []))
            self.console.append("%s: %s" % (p.get("type"), text))
            if p.get("type") == "error":
                self.errors.append("console.error: " + text)

    def evaluate(self, expr, timeout=30):
        """The value of a JS expression (a promise is awaited), as JSON can carry it."""
        r = self.call("Runtime.evaluate", timeout=timeout, expression=expr, returnByValue=True,
                      awaitPromise=True, userGesture=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CdpError("evaluate %r: %s" % (
                expr[:80], d.get("exception", {}).get("description") or d.get("text")))
        return r.get("result", {}).get("value")

    def wait_for(self, expr, timeout=10, interval=0.1):
        """Polls a JS expression until it is truthy (in JS: an element counts, though it
        serialises to {}); returns its value (true for an element)."""
        probe = "(v => [!!v, v instanceof Node ? true : v])(%s)" % expr
        deadline = time.monotonic() + timeout
        while True:
            try:
                ok, v = self.evaluate(probe)
            except CdpError:
                ok = False  # e.g. during a navigation the context is being replaced
            if ok:
                return v
            if time.monotonic() >= deadline:
                raise CdpError("waited %g s for: %s" % (timeout, expr))
            time.sleep(interval)

    def navigate(self, url, timeout=30):
        r = self.call("Page.navigate", url=url)
        if r.get("errorText"):
            raise CdpError("navigate %s: %s" % (url, r["errorText"]))
        self.wait_for("document.readyState === 'complete'", timeout)

    def on_new_document(self, js):
        """Runs JS in every document this page loads from now on, before its own scripts (the
        page's CSP does not apply to it)."""
        self.call("Page.addScriptToEvaluateOnNewDocument", source=js)

    def click(self, selector):
        """A real mouse click at the middle of the element (scrolled into view)."""
        box = self.evaluate("(() => { const e = document.querySelector(%s); if (!e) return null;"
                            " e.scrollIntoView({block: 'center'});"
                            " const r = e.getBoundingClientRect();"
                            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
                            % json.dumps(selector))
        if not box:
            raise CdpError("click: no element matches %s" % selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1],
                      button="left", clickCount=1)

    def type_text(self, text):
        """Types into the focused element, one key event per character."""
        for ch in text:
            self.call("Input.dispatchKeyEvent", type="keyDown", text=ch, key=ch,
                      unmodifiedText=ch)
            self.call("Input.dispatchKeyEvent", type="keyUp", key=ch)

    def press(self, name, shift=False):
        key, code, vk, text = KEYS[name]
        common = dict(key=key, code=code, windowsVirtualKeyCode=vk, nativeVirtualKeyCode=vk,
                      modifiers=8 if shift else 0)
        self.call("Input.dispatchKeyEvent", type="keyDown" if text else "rawKeyDown",
                  text=text, **common)
        self.call("Input.dispatchKeyEvent", type="keyUp", **common)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def check_no_errors(self):
        self.call("Runtime.evaluate", expression="0")  # drains events already sent
        if self.errors:
            raise CdpError("the page reported errors:\n  " + "\n  ".join(self.errors))


def console_login(b, base, token, timeout=15):
    """Logs in to the console at BASE (http://host:port) as a person would: the login page,
    the token typed into #token, Enter. Returns once the overview has rendered."""
    b.navigate(base + "/ui/")
    b.wait_for("document.querySelector('form#login input#token')", timeout)
    b.click("#token")
    b.type_text(token)
    b.press("Enter")
    b.wait_for("document.body && document.body.dataset.ready === 'overview'", timeout)


def run_steps(b, steps):
    for step in steps:
        verb, _, arg = step.partition(" ")
        if verb == "nav":
            b.navigate(arg)
        elif verb == "wait" or verb.startswith("wait:"):
            b.wait_for(arg, float(verb[5:] or 10))
        elif verb == "eval":
            print(json.dumps(b.evaluate(arg)))
        elif verb == "click":
            b.click(arg)
        elif verb == "type":
            b.type_text(arg)
        elif verb == "press":
            b.press(arg)
        elif verb == "shot":
            b.screenshot(arg)
        else:
            raise CdpError("unknown step %r" % step)


def main(argv):
    if len(argv) < 3 or argv[1] != "--workdir":
        sys.exit(__doc__)
    with Browser(argv[2]) as b:
        try:
            run_steps(b, argv[3:])
            b.check_no_errors()
        except CdpError as e:
            sys.exit("cdp: %s" % e)


if __name__ == "__main__":
    main(sys.argv)
