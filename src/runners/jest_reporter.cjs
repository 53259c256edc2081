// testrelay's Jest reporter: one JSON line per event, appended to $TESTRELAY_JEST_EVENTS.
//
// testrelay writes this file into the job's own directory and passes it with
// `--reporters=default --reporters=<job dir>/testrelay-jest-reporter.cjs`; nothing is
// installed into the project. Every line is written synchronously, so a run that is killed
// (Jest writes no --json file on SIGINT or SIGTERM) keeps every test that finished.
//
// Events: run_start (files to run), file_start, test (each finished test as it finishes),
// file_done (the file's final list of tests, its load error, its console output) and
// run_done. Jest reports tests that `-t` filtered out as `pending`, exactly like real
// skips; this reporter applies Jest's own name pattern (same regex, same `i` flag, same
// space-joined full name) and marks those `selected: false`, so testrelay can leave them
// out instead of counting them as skipped.
'use strict';

const fs = require('fs');
const path = require('path');

const CAP = 8192;
const CONSOLE_ENTRIES = 200;

function cap(text) {
  if (text == null) return null;
  text = String(text);
  return text.length > CAP ? `${text.slice(0, CAP)}\n[truncated by testrelay]` : text;
}

class TestrelayReporter {
  constructor(globalConfig) {
    this.cwd = process.cwd();
    this.outputFile = globalConfig.outputFile || null;
    this.namePattern = null;
    if (globalConfig.testNamePattern) {
      try {
        // jest-circus compiles the pattern exactly like this.
        this.namePattern = new RegExp(globalConfig.testNamePattern, 'i');
      } catch (_) {
        this.namePattern = null;
      }
    }
    const target =
      process.env.TESTRELAY_JEST_EVENTS || path.join(__dirname, 'jest-events.jsonl');
    try {
      this.fd = fs.openSync(target, 'a');
    } catch (_) {
      this.fd = null;
    }
  }

  emit(obj) {
    if (this.fd === null) return;
    try {
      fs.writeSync(this.fd, `${JSON.stringify(obj)}\n`);
    } catch (_) {
      // A full disk must not break the user's test run.
    }
  }

  rel(file) {
    if (!file) return file;
    const r = path.relative(this.cwd, file);
    return r.startsWith('..') ? file : r.split(path.sep).join('/');
  }

  selected(result) {
    // Only a pending test can have been filtered out: a test that ran matched.
    return !(
      result.status === 'pending' &&
      this.namePattern !== null &&
      !this.namePattern.test(result.fullName)
    );
  }

  testLine(file, r) {
    return {
      file,
      title: r.title,
      ancestors: r.ancestorTitles || [],
      full_name: r.fullName,
      status: r.status,
      selected: this.selected(r),
      duration: r.duration == null ? null : r.duration,
      start: r.startAt == null ? null : r.startAt,
      line: r.location ? r.location.line : null,
      failure: r.failureMessages && r.failureMessages.length
        ? cap(r.failureMessages.join('\n\n'))
        : null,
    };
  }

  jestVersion() {
    try {
      const manifest = require.resolve('jest/package.json', { paths: [this.cwd] });
      return JSON.parse(fs.readFileSync(manifest, 'utf8')).version || null;
    } catch (_) {
      return null;
    }
  }

  onRunStart(results) {
    this.emit({
      event: 'run_start',
      jest_version: this.jestVersion(),
      root: this.cwd,
      files: results.numTotalTestSuites,
      report_file: this.outputFile,
      name_pattern: this.namePattern ? this.namePattern.source : null,
    });
  }

  onTestFileStart(test) {
    this.emit({ event: 'file_start', file: this.rel(test.path) });
  }

  onTestCaseResult(test, result) {
    this.emit({ event: 'test', ...this.testLine(this.rel(test.path), result) });
  }

  onTestFileResult(test, result) {
    const file = this.rel(test.path);
    const consoleEntries = (result.console || []).slice(0, CONSOLE_ENTRIES).map((e) => ({
      type: e.type,
      message: cap(e.message),
    }));
    this.emit({
      event: 'file_done',
      file,
      error: result.testExecError
        ? cap(result.failureMessage || result.testExecError.message)
        : null,
      tests: (result.testResults || []).map((r) => this.testLine(file, r)),
      console: consoleEntries,
    });
  }

  onRunComplete(_contexts, results) {
    this.emit({
      event: 'run_done',
      tests: results.numTotalTests,
      success: results.success,
      interrupted: results.wasInterrupted,
    });
  }

  getLastError() {
    return undefined;
  }
}

module.exports = TestrelayReporter;
