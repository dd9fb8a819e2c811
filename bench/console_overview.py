#!/usr/bin/python3
"""The console's overview in headless chromium: logs in with the token, then loads /ui/ RUNS
times and takes, in the page, the time from navigation start (performance.timeOrigin) to
body[data-ready=overview] (a MutationObserver injected before the page's own scripts). Checks
that every card of the model is there with its VM count, then prints each run, the median and
the max. All runs share the session and the page's assets cached (ETag) since the login.
Usage: console_overview.py BASE_URL TOKEN_FILE MCIS VMS RUNS WORKDIR
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "tools"))
from cdp import Browser, CdpError, console_login  # noqa: E402

MARK = """
new MutationObserver(() => {
  if (!window.__dsfReadyMs && document.body && document.body.dataset.ready === 'overview')
    window.__dsfReadyMs = performance.now();
}).observe(document, {attributes: true, subtree: true, attributeFilter: ['data-ready']});
"""

# Cards and the VMs each counts (the sum of the numbers in .vm-states).
CARDS = """[...document.querySelectorAll('section#mcis article.mci[data-mci]')].map(a =>
  [a.dataset.mci, (a.querySelector('.vm-states').textContent.match(/\\d+/g) || [])
     .reduce((s, n) => s + Number(n), 0)])"""


def main(argv):
    if len(argv) != 7:
        sys.exit(__doc__)
    base, token_file, mcis, vms, runs, workdir = argv[1:]
    token = open(token_file).read().strip()
    times = []
    with Browser(workdir) as b:
        try:
            b.on_new_document(MARK)
            console_login(b, base, token, 60)
            for i in range(int(runs)):
                # A query of its own: a new document each run, not a hash change.
                b.navigate(base + "/ui/?run=%d#/overview" % (i + 1), 60)
                ms = b.wait_for("window.__dsfReadyMs", 60)
                cards = b.evaluate(CARDS)
                if len(cards) != int(mcis) or any(n != int(vms) for _, n in cards):
                    raise CdpError("run %d: %d cards, VM counts %s; want %s of %s VMs" % (
                        i + 1, len(cards), sorted({n for _, n in cards}), mcis, vms))
                print("run %d: %.0f ms to data-ready=overview, %d cards" % (i + 1, ms,
                                                                           len(cards)))
                times.append(ms)
            b.check_no_errors()
        except CdpError as e:
            sys.exit("FAIL: %s" % e)
    print("overview of %s MCIs x %s VMs: median %.0f ms, max %.0f ms over %d runs "
          "(target < 1000 ms)" % (mcis, vms, statistics.median(times), max(times), len(times)))


if __name__ == "__main__":
    main(sys.argv)
