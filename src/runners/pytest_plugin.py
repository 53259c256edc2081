"""testrelay's pytest plugin: one JSON line per event, appended to $TESTRELAY_PYTEST_EVENTS.

testrelay writes this file into the job's own directory and loads it with
`-p testrelay_pytest`; nothing is installed into the project or its environment.
Every line is flushed as soon as it is written, so a run that is killed keeps every
test that finished. Output that the events carry is capped so a noisy test cannot
make the file huge.
"""

import json
import os

import pytest

_CAP = 8192
_out = None
_phases = {}
_last_file = None
_rootdir = ""


def _emit(obj):
    if _out is not None:
        _out.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
        _out.flush()


def _cap(text):
    if text is None:
        return None
    text = str(text)
    if len(text) > _CAP:
        return text[:_CAP] + "\n[truncated by testrelay]"
    return text


def pytest_configure(config):
    global _out
    path = os.environ.get("TESTRELAY_PYTEST_EVENTS")
    # pytest-xdist workers report through the controller; only the controller writes.
    if not path or hasattr(config, "workerinput"):
        return
    global _rootdir
    _rootdir = str(config.rootpath)
    _out = open(path, "a", encoding="utf-8")
    _emit(
        {
            "event": "start",
            "pytest_version": pytest.__version__,
            "rootdir": str(config.rootpath),
        }
    )


def pytest_collectreport(report):
    if report.failed:
        _emit(
            {
                "event": "collect_error",
                "nodeid": report.nodeid,
                "longrepr": _cap(report.longreprtext),
            }
        )


def pytest_collection_finish(session):
    _emit({"event": "collected", "count": len(session.items)})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    _emit({"event": "collected", "count": len(ids)})


def pytest_runtest_logstart(nodeid, location):
    # Progress needs the current file, not every test: one line per file keeps the
    # plugin's cost out of large runs.
    global _last_file
    if location[0] != _last_file:
        _last_file = location[0]
        _emit({"event": "test_start", "nodeid": nodeid, "file": location[0]})


def _subtest_label(context):
    """`[msg] (k='v')`, the way pytest prints a subtest."""
    parts = []
    if getattr(context, "msg", None) is not None:
        parts.append(f"[{context.msg}]")
    kwargs = getattr(context, "kwargs", None) or {}
    if kwargs:
        parts.append("(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")")
    return " ".join(parts) or "(subtest)"


def pytest_runtest_logreport(report):
    if type(report).__name__.lower().endswith("subtestreport"):
        # pytest >= 9 (and pytest-subtests) report each subtest in the call phase; a failed
        # one is a failure of its own (pytest counts it), rerun through its parent test.
        if report.failed:
            label = _subtest_label(getattr(report, "context", None))
            fspath, lineno, domain = report.location
            _emit(
                {
                    "event": "test",
                    "nodeid": f"{report.nodeid} {label}",
                    "selector": report.nodeid,
                    "file": fspath,
                    "line": None if lineno is None else lineno + 1,
                    "domain": f"{domain} {label}",
                    "status": "failed",
                    "raw_status": "subfailed",
                    "phase": "call",
                    "duration": report.duration,
                    "start": getattr(report, "start", 0),
                    "message": _cap(_crash_message(report)),
                    "trace": _cap(report.longreprtext),
                    "failed_at": _failed_at(report, fspath),
                    "stdout": _cap(report.capstdout) or None,
                    "stderr": _cap(report.capstderr) or None,
                }
            )
        return
    _phases.setdefault(report.nodeid, {})[report.when] = report


def _skip_reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr) if longrepr else None


def _crash_message(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    return None


def _relative(path):
    path = str(path)
    if _rootdir and path.startswith(_rootdir + os.sep):
        return path[len(_rootdir) + 1 :]
    return path


def _failed_at(report, fspath):
    """`path:line` of the deepest traceback entry in the test's own file, else the crash."""
    longrepr = report.longrepr
    best = None
    entries = getattr(getattr(longrepr, "reprtraceback", None), "reprentries", None) or []
    for entry in entries:
        loc = getattr(entry, "reprfileloc", None)
        if loc is not None and _relative(loc.path) == fspath:
            best = (fspath, loc.lineno)
    if best is None:
        crash = getattr(longrepr, "reprcrash", None)
        if crash is None:
            return None
        best = (_relative(crash.path), crash.lineno)
    return f"{best[0]}:{best[1]}"


def _verdict(phases):
    """(status, raw_status, the report that explains it) for one test's phases."""
    setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
    if setup is not None and setup.failed:
        return "errored", "error", setup
    if setup is not None and setup.skipped:
        raw = "xfailed" if hasattr(setup, "wasxfail") else "skipped"
        return "skipped", raw, setup
    status, raw, why = "passed", "passed", call
    if call is not None:
        if call.failed:
            raw = "xpassed_strict" if "XPASS(strict)" in str(call.longrepr) else "failed"
            status = "failed"
        elif call.skipped:
            status = "skipped"
            raw = "xfailed" if hasattr(call, "wasxfail") else "skipped"
        elif hasattr(call, "wasxfail"):
            raw = "xpassed"
    if teardown is not None and teardown.failed and status == "passed":
        return "errored", "error", teardown
    return status, raw, why


def pytest_runtest_logfinish(nodeid, location):
    phases = _phases.pop(nodeid, {})
    if not phases:
        return
    status, raw, why = _verdict(phases)
    message = trace = failed_at = None
    fspath, lineno, domain = location
    if why is not None:
        if status == "skipped":
            message = getattr(why, "wasxfail", None) or _skip_reason(why)
        elif status in ("failed", "errored"):
            message = _crash_message(why)
            trace = why.longreprtext
            failed_at = _failed_at(why, fspath)
    # Each phase's report carries the output captured so far, so the last one has it all.
    last = phases.get("teardown") or phases.get("call") or phases.get("setup")
    stdout, stderr = last.capstdout, last.capstderr
    _emit(
        {
            "event": "test",
            "nodeid": nodeid,
            "file": fspath,
            "line": None if lineno is None else lineno + 1,
            "domain": domain,
            "status": status,
            "raw_status": raw,
            "phase": why.when if why is not None else None,
            "duration": sum(r.duration for r in phases.values()),
            "start": min(getattr(r, "start", 0) for r in phases.values()),
            "message": _cap(message),
            "trace": _cap(trace),
            "failed_at": failed_at,
            "stdout": _cap(stdout) or None,
            "stderr": _cap(stderr) or None,
        }
    )


def pytest_sessionfinish(session, exitstatus):
    _emit({"event": "finish", "exitstatus": int(exitstatus)})
