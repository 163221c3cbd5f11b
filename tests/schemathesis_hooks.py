"""Schemathesis hooks for tests/schemathesis.sh.

`POST /sandbox/faults` makes a client's token requests fail on purpose (a
5xx in the dialect's shape, a body cut short). Schemathesis draws client ids
from the document's examples, so a fault one generated request sets would
fail the checks of the unrelated token requests that follow it. Each fault
the run sets is cleared as soon as its own response is in: every operation
is still called and every check still runs, and no fault outlives the
request that set it. (The run uses one worker, so no other request comes
between the two.)
"""

import urllib.request

import schemathesis


@schemathesis.hook
def after_call(context, case, response):
    if case.method.upper() != "POST" or case.path != "/sandbox/faults":
        return
    if response.status_code != 201:
        return
    clear = urllib.request.Request(response.request.url, method="DELETE")
    with urllib.request.urlopen(clear, timeout=10) as answer:
        answer.read()
