//! The wire: protocol versions, `server/discover`, malformed input, and a stdout that
//! carries nothing but JSON-RPC even while a test floods its own output.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Project, RawServer};

fn is_jsonrpc(line: &str) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|v| v["jsonrpc"] == "2.0")
}

#[test]
fn every_supported_protocol_version_is_negotiated() {
    let state = tempfile::tempdir().unwrap();
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let mut raw = RawServer::start(state.path(), &[]);
        let init = raw.initialize(version);
        assert_eq!(init["result"]["protocolVersion"], version);
        assert_eq!(init["result"]["serverInfo"]["name"], "testrelay");
        assert_eq!(
            init["result"]["serverInfo"]["version"],
            env!("CARGO_PKG_VERSION")
        );
        raw.send(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
        let tools = raw.response(1);
        assert_eq!(
            tools["result"]["tools"].as_array().unwrap().len(),
            8,
            "{version}"
        );
        assert!(
            raw.close_and_wait(Duration::from_secs(5))
                .is_some_and(|s| s.success())
        );
    }
}

#[test]
fn server_discover_as_the_first_message_is_answered() {
    let state = tempfile::tempdir().unwrap();
    let mut raw = RawServer::start(state.path(), &[]);
    raw.send(
        json!({"jsonrpc":"2.0","id":7,"method":"server/discover","params":{"_meta":{
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}}}),
    );
    let reply = raw.response(7);
    let versions = reply["result"]["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply}"));
    assert!(versions.contains(&json!("2025-11-25")), "{reply}");
    // A client that falls back to the handshake still gets one.
    let init = raw.initialize("2025-11-25");
    assert_eq!(init["result"]["serverInfo"]["name"], "testrelay");
}

#[test]
fn malformed_input_gets_errors_and_the_server_keeps_serving() {
    let state = tempfile::tempdir().unwrap();
    let mut raw = RawServer::start(state.path(), &[]);
    raw.send_line("this is not json");
    raw.send_line("{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"initialize\"");
    raw.initialize("2025-06-18");
    raw.send_line("{\"hello\": 1}");
    raw.send_line("");
    raw.send(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}));
    let unknown = raw.response(2);
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let bad_args = raw.call(3, "run_tests", json!({"tests": "not-a-list"}));
    assert_eq!(bad_args["result"]["isError"], true, "{bad_args}");
    let bad_id = raw.call(4, "cancel_test_execution", json!({"job_id": 42}));
    assert_eq!(bad_id["result"]["isError"], true, "{bad_id}");
    raw.send(json!({"jsonrpc":"2.0","id":5,"method":"no/such/method"}));
    assert_eq!(raw.response(5)["error"]["code"], -32601);
    raw.send(json!({"jsonrpc":"2.0","id":6,"method":"tools/list"}));
    assert_eq!(
        raw.response(6)["result"]["tools"].as_array().unwrap().len(),
        8
    );
    for line in &raw.seen {
        assert!(is_jsonrpc(line), "non-JSON-RPC line on stdout: {line}");
    }
}

#[test]
fn stdout_is_only_json_rpc_while_a_test_floods_output() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let mut raw = RawServer::start(state.path(), &[]);
    raw.initialize("2025-11-25");
    // `-s` sends the test's prints straight to the runner's stdout pipe.
    let started = raw.call(
        1,
        "run_tests",
        json!({"path": project.path(), "tests": ["tests/test_procs.py::test_floods"], "extra_args": ["-s"], "env": {"FX_FLOOD": "200000"}}),
    );
    let job_id = started["result"]["structuredContent"]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, id) = raw.wait_final(&job_id, 2);
    assert_eq!(status["status"], "passed", "{status}");
    assert!(
        status["log_tail"]["stdout"]
            .as_str()
            .unwrap()
            .contains("flood xxxx")
    );
    let page = raw.call(
        id,
        "get_test_execution_output",
        json!({"job_id": job_id, "offset": 1_000_000, "limit_bytes": 1000}),
    );
    let page = &page["result"]["structuredContent"];
    assert!(page["total_bytes"].as_u64().unwrap() > 20_000_000, "{page}");
    assert!(page["text"].as_str().unwrap().contains("flood "));
    for line in &raw.seen {
        assert!(
            is_jsonrpc(line),
            "non-JSON-RPC line on stdout: {}",
            &line[..line.len().min(200)]
        );
    }
}
