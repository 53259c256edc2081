// testrelay's Playwright reporter: one JSON line per event, appended to the file named by
// $TESTRELAY_PLAYWRIGHT_EVENTS.
//
// testrelay writes this file into the job's own directory and adds it to `--reporter`;
// nothing is installed into the project. Every line is written synchronously as soon as
// the event happens, so a run that is killed (even with SIGKILL) keeps every test that
// finished. Captured output is capped so a noisy test cannot make the file huge. Paths are
// made relative to the working directory (the project), the way a user types them.
'use strict';

const fs = require('fs');
const path = require('path');

const CAP = 8192;

function cap(text) {
  if (!text) return null;
  return text.length > CAP ? text.slice(0, CAP) + '\n[truncated by testrelay]' : text;
}

function rel(file) {
  if (!file) return null;
  return path.relative(process.cwd(), file).split(path.sep).join('/');
}

function location(loc) {
  return loc ? { file: rel(loc.file), line: loc.line, column: loc.column } : null;
}

function joinOutput(chunks) {
  return cap(chunks.map((c) => (typeof c === 'string' ? c : c.toString('utf8'))).join(''));
}

function error(e) {
  return {
    message: cap(e.message || e.value || null),
    stack: cap(e.stack || null),
    snippet: cap(e.snippet || null),
    location: location(e.location),
  };
}

class TestrelayReporter {
  constructor() {
    const file = process.env.TESTRELAY_PLAYWRIGHT_EVENTS;
    this.fd = file ? fs.openSync(file, 'a') : null;
    this.lastFile = null;
  }

  emit(obj) {
    if (this.fd !== null) fs.writeSync(this.fd, JSON.stringify(obj) + '\n');
  }

  printsToStdio() {
    return false;
  }

  onBegin(config, suite) {
    this.emit({
      event: 'begin',
      version: config.version,
      cwd: process.cwd(),
      projects: config.projects.map((p) => p.name),
      total: suite.allTests().length,
    });
  }

  onTestBegin(test) {
    // Progress needs the current file, not every test: one line per change of file.
    const file = rel(test.location.file);
    if (file !== this.lastFile) {
      this.lastFile = file;
      this.emit({ event: 'test_begin', file });
    }
  }

  onTestEnd(test, result) {
    // The describe titles between the file suite and the test itself.
    const describes = [];
    for (let s = test.parent; s && s.type === 'describe'; s = s.parent) {
      if (s.title) describes.unshift(s.title);
    }
    const project = test.parent.project();
    const retrying =
      result.status !== 'skipped' &&
      result.status !== 'interrupted' &&
      result.status !== test.expectedStatus &&
      result.retry < test.retries;
    this.emit({
      event: 'test_end',
      id: test.id,
      title: test.title,
      describes,
      project: project ? project.name : '',
      file: rel(test.location.file),
      line: test.location.line,
      expected_status: test.expectedStatus,
      outcome: test.outcome(),
      annotations: test.annotations.map((a) => ({ type: a.type, description: a.description || null })),
      final: !retrying,
      result: {
        retry: result.retry,
        status: result.status,
        duration: result.duration,
        start_ms: result.startTime ? result.startTime.getTime() : null,
        errors: result.errors.map(error),
        attachments: result.attachments
          .filter((a) => a.path)
          .map((a) => ({ name: a.name, content_type: a.contentType, path: a.path })),
        stdout: joinOutput(result.stdout),
        stderr: joinOutput(result.stderr),
      },
    });
  }

  onError(e) {
    this.emit({ event: 'error', error: error(e) });
  }

  onEnd(result) {
    this.emit({ event: 'end', status: result.status });
  }
}

module.exports = TestrelayReporter;
