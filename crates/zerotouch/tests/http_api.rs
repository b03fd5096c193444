//! The daemon's HTTP API over real sockets: the real `zerotouch` daemon with `--http`,
//! tokens made by the real CLI, requests over TCP (and HTTPS with curl), and `/metrics`
//! scraped while real enrollees are provisioned on the UDP link, parsed with a Prometheus
//! text-format parser.

mod e2e_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use e2e_support::{Daemon, Env, UdpFleet, dpp_uri};
use serde_json::{Value, json};
use zerotouch_proto::SuiteId;

/// A response: status, headers (lower-case names) and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .expect("a complete response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .expect("status line")
        .split(' ')
        .nth(1)
        .expect("code")
        .parse()
        .expect("number");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        text = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A TCP port free now.
fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts the daemon with the API on a free port and waits until `/healthz` answers.
fn start_with_api(env: &Env, name: &str, extra: &[&str]) -> (Daemon, SocketAddr) {
    let port = free_tcp_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let log = std::fs::File::create(env.path(&format!("{name}.log"))).expect("log");
    let child = env
        .cmd()
        .args([
            "configurator",
            "run",
            "--link",
            &env.link,
            "--http",
            &port.to_string(),
        ])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the daemon");
    let daemon = Daemon::from_child(child, env.path(&format!("{name}.log")));
    if extra.contains(&"--tls-cert") {
        wait_for_log(&daemon, "HTTP API listening");
    } else {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err()
            || request(addr, "GET", "/healthz", &[], b"").status != 200
        {
            assert!(
                Instant::now() < deadline,
                "the API did not come up: {}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (daemon, addr)
}

fn wait_for_log(daemon: &Daemon, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !daemon.log_text().contains(text) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in the log: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn token(env: &Env, name: &str, role: &str) -> String {
    env.ok(&["token", "create", name, "--role", role])
        .trim()
        .to_string()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn tokens_roles_devices_import_and_revoke_over_http() {
    let env = Env::new();
    env.init_fleet();
    let admin = token(&env, "alice", "admin");
    let operator = token(&env, "ops-bot", "operator");
    let viewer = token(&env, "grafana", "viewer");
    let (_daemon, addr) = start_with_api(&env, "daemon", &[]);
    let auth = |t: &str| bearer(t);

    // 401 without, with a wrong and with a revoked token; 403 for a viewer writing.
    assert_eq!(request(addr, "GET", "/api/devices", &[], b"").status, 401);
    let wrong = request(
        addr,
        "GET",
        "/api/devices",
        &[("Authorization", "Bearer zt_wrong")],
        b"",
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"]["code"], "unauthorized");
    let identities = UdpFleet::identities(4, 7, SuiteId::Ed25519);
    let uris: Vec<String> = identities
        .iter()
        .map(|i| dpp_uri(i, UdpFleet::addr_of(i)))
        .collect();
    let add_body = json!({ "uri": uris[0], "label": "door-1" }).to_string();
    let forbidden = request(
        addr,
        "POST",
        "/api/devices",
        &[("Authorization", &auth(&viewer))],
        add_body.as_bytes(),
    );
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert!(
        forbidden.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("operator")
    );

    // An operator adds one device; bad input names the field.
    let added = request(
        addr,
        "POST",
        "/api/devices",
        &[("Authorization", &auth(&operator))],
        add_body.as_bytes(),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.json()["label"], "door-1");
    let bad = request(
        addr,
        "POST",
        "/api/devices",
        &[("Authorization", &auth(&operator))],
        br#"{"uri": "DPP:nonsense;;"}"#,
    );
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json()["error"]["field"], "uri");
    let malformed = request(
        addr,
        "POST",
        "/api/devices",
        &[("Authorization", &auth(&operator))],
        br#"{"label": "x"}"#,
    );
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing field `uri`"),
        "{}",
        malformed.body
    );
    let huge = vec![b'a'; 5 << 20];
    let too_big = request(
        addr,
        "POST",
        "/api/devices/import",
        &[("Authorization", &auth(&operator))],
        &huge,
    );
    assert_eq!(too_big.status, 413, "{}", too_big.body);
    assert_eq!(too_big.json()["error"]["code"], "body_too_large");

    // An import with bad lines imports nothing and lists every bad line.
    let bad_import = format!("{}\nnot-a-uri\n{}\nDPP:K:zz;;\n", uris[1], uris[2]);
    let rejected = request(
        addr,
        "POST",
        "/api/devices/import",
        &[("Authorization", &auth(&operator))],
        bad_import.as_bytes(),
    );
    assert_eq!(rejected.status, 422, "{}", rejected.body);
    let problems = rejected.json()["error"]["problems"].clone();
    let positions: Vec<&str> = problems
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["position"].as_str().unwrap())
        .collect();
    assert_eq!(positions, ["line 2", "line 4"]);
    let listed = request(
        addr,
        "GET",
        "/api/devices",
        &[("Authorization", &auth(&viewer))],
        b"",
    );
    assert_eq!(
        listed.json()["total"],
        1,
        "nothing of the rejected import was added"
    );
    let good_import = format!("{}\n{}\n{}\n", uris[1], uris[2], uris[3]);
    let imported = request(
        addr,
        "POST",
        "/api/devices/import",
        &[("Authorization", &auth(&operator))],
        good_import.as_bytes(),
    );
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(imported.json()["imported"], 3);

    // Pagination, filter and sort.
    let page = request(
        addr,
        "GET",
        "/api/devices?limit=2&offset=1&sort=-created_at",
        &[("Authorization", &auth(&viewer))],
        b"",
    );
    assert_eq!(page.status, 200);
    assert_eq!(page.json()["total"], 4);
    assert_eq!(page.json()["items"].as_array().unwrap().len(), 2);
    let by_label = request(
        addr,
        "GET",
        "/api/devices?q=door",
        &[("Authorization", &auth(&viewer))],
        b"",
    );
    assert_eq!(by_label.json()["total"], 1);
    let bad_sort = request(
        addr,
        "GET",
        "/api/devices?sort=colour",
        &[("Authorization", &auth(&viewer))],
        b"",
    );
    assert_eq!(bad_sort.status, 422);
    assert_eq!(bad_sort.json()["error"]["field"], "sort");

    // Revoke; the detail shows the audit trail with the token's name.
    let revoked = request(
        addr,
        "POST",
        "/api/devices/door-1/revoke",
        &[("Authorization", &auth(&operator))],
        b"",
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let detail = request(
        addr,
        "GET",
        "/api/devices/door-1",
        &[("Authorization", &auth(&viewer))],
        b"",
    )
    .json();
    assert_eq!(detail["device"]["state"], "revoked");
    let trail: Vec<(String, String)> = detail["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            ("allowed".to_string(), "api:ops-bot".to_string()),
            ("revoked".to_string(), "api:ops-bot".to_string())
        ]
    );

    // Refused requests are audited; a revoked token stops working.
    env.ok(&["token", "revoke", "grafana"]);
    let after_revoke = request(
        addr,
        "GET",
        "/api/status",
        &[("Authorization", &auth(&viewer))],
        b"",
    );
    assert_eq!(after_revoke.status, 401);
    assert!(
        after_revoke.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let audit = request(
        addr,
        "GET",
        "/api/audit?limit=1000",
        &[("Authorization", &auth(&admin))],
        b"",
    )
    .json();
    let denied: Vec<(u64, Option<String>)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "api-denied")
        .map(|e| {
            (
                e["detail"]["status"].as_u64().unwrap(),
                e["detail"]["token"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        denied,
        [
            (401, None),
            (401, None),
            (403, Some("grafana".into())),
            (401, Some("grafana".into()))
        ]
    );
}

#[test]
fn profile_secrets_are_write_only_and_a_stale_write_is_refused() {
    let env = Env::new();
    env.init_fleet();
    let admin = token(&env, "alice", "admin");
    let operator = token(&env, "ops-bot", "operator");
    let (_daemon, addr) = start_with_api(&env, "daemon", &[]);
    let auth = bearer(&admin);
    let body = json!({
        "networks": [{ "ssid": "office", "security": "wpa2-psk", "credential": { "kind": "passphrase", "value": "correct horse battery" } }],
        "settings": { "site": "hall-3" }
    })
    .to_string();
    let created = request(
        addr,
        "PUT",
        "/api/profiles/office",
        &[("Authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(
        !created.body.contains("correct horse"),
        "the passphrase is never returned"
    );
    let first = created.header("etag").expect("an ETag").to_string();
    let read = request(
        addr,
        "GET",
        "/api/profiles/office",
        &[("Authorization", &auth)],
        b"",
    );
    assert!(!read.body.contains("correct horse"));
    assert_eq!(
        read.json()["networks"][0]["credential"],
        json!({ "kind": "passphrase" })
    );
    assert_eq!(read.header("etag"), Some(first.as_str()));
    let listed = request(
        addr,
        "GET",
        "/api/profiles",
        &[("Authorization", &auth)],
        b"",
    );
    assert!(!listed.body.contains("correct horse"));

    // An operator may not write profiles; a write without If-Match is refused.
    let as_operator = request(
        addr,
        "PUT",
        "/api/profiles/office",
        &[("Authorization", &bearer(&operator)), ("If-Match", &first)],
        body.as_bytes(),
    );
    assert_eq!(as_operator.status, 403);
    let blind = request(
        addr,
        "PUT",
        "/api/profiles/office",
        &[("Authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(blind.status, 428);

    // Two editors read the same version; the first write wins, the second gets 412.
    let edit = |site: &str| {
        json!({
            "networks": [{ "ssid": "office", "security": "wpa2-psk", "credential": { "kind": "unchanged" } }],
            "settings": { "site": site }
        })
        .to_string()
    };
    let one = request(
        addr,
        "PUT",
        "/api/profiles/office",
        &[("Authorization", &auth), ("If-Match", &first)],
        edit("hall-4").as_bytes(),
    );
    assert_eq!(one.status, 200, "{}", one.body);
    let two = request(
        addr,
        "PUT",
        "/api/profiles/office",
        &[("Authorization", &auth), ("If-Match", &first)],
        edit("hall-5").as_bytes(),
    );
    assert_eq!(two.status, 412, "{}", two.body);
    assert_eq!(two.json()["error"]["code"], "version_mismatch");
    let now = request(
        addr,
        "GET",
        "/api/profiles/office",
        &[("Authorization", &auth)],
        b"",
    )
    .json();
    assert_eq!(
        now["settings"]["site"], "hall-4",
        "the second write changed nothing"
    );
    // `unchanged` kept the passphrase (the CLI shows it to the operator who owns the registry).
    let shown = env.ok(&["--json", "profile", "show", "office"]);
    assert!(
        shown.contains("correct horse battery") || !shown.contains("\"value\""),
        "{shown}"
    );
}

#[test]
fn metrics_are_scraped_and_parsed_during_a_fleet_run() {
    let env = Env::new();
    env.init_fleet();
    let viewer = token(&env, "prometheus", "viewer");
    let identities = UdpFleet::identities(24, 11, SuiteId::Ed25519);
    let manifest: String = identities
        .iter()
        .map(|i| dpp_uri(i, UdpFleet::addr_of(i)) + "\n")
        .collect();
    std::fs::write(env.path("manifest.txt"), manifest).expect("manifest");
    env.ok(&[
        "allow",
        "import",
        env.path("manifest.txt").to_str().unwrap(),
    ]);
    let (_daemon, addr) = start_with_api(&env, "daemon", &[]);
    let fleet = UdpFleet::start(env.group, identities, 11);

    let scrape = || {
        let reply = request(addr, "GET", "/metrics", &[], b"");
        assert_eq!(reply.status, 200);
        let lines = reply.body.lines().map(|l| Ok(l.to_string()));
        prometheus_parse::Scrape::parse(lines).expect("a valid Prometheus exposition")
    };
    let value =
        |scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>| -> f64 {
            scrape
                .samples
                .iter()
                .filter(|s| s.metric == name)
                .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
                .map(|s| match s.value {
                    prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    _ => 0.0,
                })
                .sum()
        };
    fleet.wait_for("a first device", Duration::from_secs(60), |n| n >= 1);
    let during = scrape();
    assert!(
        value(
            &during,
            "zerotouch_frames_total",
            Some(("message_type", "announce"))
        ) >= 1.0
    );
    fleet.wait_for("the whole fleet", Duration::from_secs(90), |n| n == 24);
    // The last join is counted once the worker committed it; the device commits after that.
    let after = scrape();
    assert_eq!(value(&after, "zerotouch_provisioned_total", None), 24.0);
    for kind in ["announce", "response", "data", "ack"] {
        assert!(
            value(
                &after,
                "zerotouch_frames_total",
                Some(("direction", "received"))
            ) > 0.0
        );
        assert!(
            value(
                &after,
                "zerotouch_frame_bytes_total",
                Some(("message_type", kind))
            ) > 0.0,
            "no {kind} bytes"
        );
    }
    let histogram = after
        .samples
        .iter()
        .find(|s| s.metric == "zerotouch_time_to_provision_seconds")
        .expect("the time-to-provision histogram");
    match &histogram.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let count = buckets.iter().map(|b| b.count).fold(0.0, f64::max);
            assert_eq!(count, 24.0, "every provisioning timed once");
        }
        other => panic!("time_to_provision is not a histogram: {other:?}"),
    }
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric == "zerotouch_registry_commit_seconds")
    );
    assert_eq!(value(&after, "zerotouch_refused_total", None), 0.0);

    // Status and readiness while running.
    assert_eq!(request(addr, "GET", "/readyz", &[], b"").status, 200);
    let status = request(
        addr,
        "GET",
        "/api/status",
        &[("Authorization", &bearer(&viewer))],
        b"",
    )
    .json();
    assert_eq!(status["devices"]["provisioned"], 24);
    let doc = request(addr, "GET", "/api/openapi.json", &[], b"").json();
    assert_eq!(doc["openapi"], "3.1.0");
}

#[test]
fn https_with_a_certificate() {
    let env = Env::new();
    env.init_fleet();
    let viewer = token(&env, "grafana", "viewer");
    let cert = env.path("cert.pem");
    let key = env.path("key.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_daemon, addr) = start_with_api(
        &env,
        "daemon",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let curl = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&cert)
        .args(["-H", &format!("Authorization: Bearer {viewer}")])
        .arg(format!("https://127.0.0.1:{}/api/status", addr.port()))
        .output()
        .expect("run curl (apt-get install curl)");
    assert!(
        curl.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    let status: Value = serde_json::from_slice(&curl.stdout).expect("JSON over HTTPS");
    assert!(status["devices"].is_object(), "{status}");
    // Plain HTTP on the TLS port gets no API answer.
    let plain = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{}/healthz", addr.port()))
        .output()
        .expect("run curl");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("\"ok\""));
}
