//! A cluster of real `handoff serve` processes sharing one fresh
//! PostgreSQL database, and the HTTP calls the scenarios make.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_handoff");
/// Where the test PostgreSQL server is; each cluster gets its own database on it.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The issuer every node shares (the load balancer's URL in production).
pub(crate) const PUBLIC_URL: &str = "http://handoff.cluster.test";
/// How long a node may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The agents and services every world has, each with one credential.
pub(crate) const CLIENTS: [&str; 2] = ["agent:bot", "service:api"];

const SCHEMA: &str = "entity Doc;\n\
    action delegate appliesTo { principal: [Human, Agent, Service], resource: [Human, Agent, Service] };\n\
    action read, write appliesTo { principal: [Human, Agent, Service], resource: [Doc] };\n";

/// Every handoff and every use of a document allowed.
pub(crate) const ALLOW_ALL: &str = "@id(\"delegate\")\npermit(principal, action == Action::\"delegate\", resource);\n\
    @id(\"use\")\npermit(principal, action in [Action::\"read\", Action::\"write\"], resource);\n";

/// Handoffs allowed, reading forbidden.
pub(crate) const NO_READ: &str = "@id(\"delegate\")\npermit(principal, action == Action::\"delegate\", resource);\n\
    @id(\"use\")\npermit(principal, action in [Action::\"read\", Action::\"write\"], resource);\n\
    @id(\"no-read\")\nforbid(principal, action == Action::\"read\", resource);\n";

/// The PostgreSQL server URL for tests.
pub(crate) fn server_url() -> String {
    std::env::var("HANDOFF_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

fn unique(prefix: &str) -> String {
    use std::hash::BuildHasher as _;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = std::collections::hash_map::RandomState::new()
        .hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{prefix}_{}_{random:016x}", std::process::id())
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a database url ends in /NAME");
    format!("{base}/{name}")
}

async fn admin_connection() -> sqlx::PgConnection {
    use sqlx::Connection as _;
    let url = server_url();
    sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach the test PostgreSQL at {url}: {e}\n\
             the cluster tests need it; .ci/run starts it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        )
    })
}

/// A database created for one test and dropped after it.
pub(crate) struct Database {
    pub(crate) name: String,
    pub(crate) url: String,
}

impl Database {
    pub(crate) async fn create() -> Self {
        let name = unique("handoff_cluster");
        let mut conn = admin_connection().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the cluster database");
        Self {
            url: with_database(&server_url(), &name),
            name,
        }
    }

    /// A connection to this database, for checks the API cannot make.
    pub(crate) async fn connect(&self) -> sqlx::PgConnection {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect to the cluster database")
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = admin_connection().await;
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            });
        })
        .join();
    }
}

/// One `handoff serve` process.
pub(crate) struct Node {
    child: std::sync::Mutex<Child>,
    #[allow(dead_code, reason = "shown in failure messages")]
    pub(crate) port: u16,
    pub(crate) base: String,
    data_dir: PathBuf,
    log: PathBuf,
}

impl Node {
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process at once (SIGKILL): nothing is drained.
    pub(crate) fn kill(&self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn exited(&self) -> bool {
        self.child
            .lock()
            .map(|mut c| matches!(c.try_wait(), Ok(Some(_))))
            .unwrap_or(true)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// N nodes on one database, with the bootstrap admin token of the first.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Node>,
    pub(crate) token: String,
    pub(crate) http: reqwest::Client,
    pub(crate) master_key_file: PathBuf,
    /// Client id → secret.
    pub(crate) secrets: Vec<(String, String)>,
    // Dropped last: nodes stop before their database goes.
    pub(crate) db: Database,
    pub(crate) dir: TempDir,
}

impl Cluster {
    /// Starts `n` nodes one after the other (the first creates the keys and
    /// the bootstrap token), pushes the pack and creates the clients.
    pub(crate) async fn start(n: usize) -> Self {
        let db = Database::create().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let master_key_file = dir.path().join("master.key");
        let key = std::process::Command::new(BIN)
            .args(["keys", "master-key"])
            .output()
            .expect("run handoff keys master-key");
        assert!(key.status.success(), "keys master-key failed");
        fs::write(&master_key_file, &key.stdout).expect("write master key");
        fs::set_permissions(&master_key_file, fs::Permissions::from_mode(0o600))
            .expect("chmod master key");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client");
        let mut cluster = Self {
            nodes: Vec::new(),
            token: String::new(),
            http,
            master_key_file,
            secrets: Vec::new(),
            db,
            dir,
        };
        for i in 0..n {
            let node = cluster.spawn(i).await;
            if i == 0 {
                cluster.token = fs::read_to_string(node.data_dir.join("admin-token"))
                    .expect("the first node wrote the bootstrap token")
                    .trim()
                    .to_owned();
            } else {
                assert!(
                    !node.data_dir.join("admin-token").exists(),
                    "a node joining a cluster must not make another bootstrap token"
                );
            }
            cluster.nodes.push(node);
        }
        cluster.setup().await;
        cluster
    }

    /// Starts node `i` (a fresh data directory, a free port) and waits until
    /// it is ready.
    pub(crate) async fn spawn(&self, i: usize) -> Node {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let data_dir = self.dir.path().join(format!("node-{i}-{port}"));
            let log = self.dir.path().join(format!("node-{i}-{port}.log"));
            let file = File::create(&log).expect("create log");
            let mut cmd = Command::new(BIN);
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("HANDOFF_") {
                    cmd.env_remove(key);
                }
            }
            cmd.arg("serve")
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--database", &self.db.url])
                .arg("--master-key-file")
                .arg(&self.master_key_file)
                .args(["--public-url", PUBLIC_URL])
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(file.try_clone().expect("clone log"))
                .stderr(file);
            let child = cmd.spawn().expect("spawn handoff serve");
            let node = Node {
                child: std::sync::Mutex::new(child),
                port,
                base: format!("http://127.0.0.1:{port}"),
                data_dir,
                log,
            };
            if self.wait_ready(&node).await {
                return node;
            }
            last = node.log();
            if !last.contains("cannot listen") {
                panic!("node {i} did not start:\n{last}");
            }
        }
        panic!("node {i} did not start after 5 attempts:\n{last}");
    }

    async fn wait_ready(&self, node: &Node) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if node.exited() {
                return false;
            }
            if self.ready(node).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Whether `GET /readyz` answers 200.
    pub(crate) async fn ready(&self, node: &Node) -> bool {
        self.http
            .get(format!("{}/readyz", node.base))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    }

    async fn setup(&mut self) {
        self.push(0, ALLOW_ALL, 201).await;
        self.admin(
            0,
            "POST",
            "/v1/identities",
            Some(json!({"id": "human:alice"})),
        )
        .await
        .expect(201);
        for client in CLIENTS {
            self.admin(
                0,
                "POST",
                "/v1/identities",
                Some(json!({"id": client, "owner": "human:alice"})),
            )
            .await
            .expect(201);
            let issued = self
                .admin(
                    0,
                    "POST",
                    &format!("/v1/identities/{client}/credentials"),
                    Some(json!({"description": "cluster test"})),
                )
                .await;
            let secret = issued.expect(201)["secret"]
                .as_str()
                .expect("a secret")
                .to_owned();
            self.secrets.push((client.to_owned(), secret));
        }
    }

    /// Pushes a pack with `policies` on node `i`, expecting `status`.
    pub(crate) async fn push(&self, i: usize, policies: &str, status: u16) {
        let pack = json!({"files": {"schema.cedarschema": SCHEMA, "policies.cedar": policies}});
        self.admin(i, "PUT", "/v1/policies", Some(pack))
            .await
            .expect(status);
    }

    /// An admin API call on node `i`.
    pub(crate) async fn admin(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let url = format!("{}{path}", self.nodes[i].base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Reply::from(req.send().await).await
    }

    fn secret(&self, client: &str) -> &str {
        self.secrets
            .iter()
            .find(|(c, _)| c == client)
            .map(|(_, s)| s.as_str())
            .expect("a known client")
    }

    /// A `client_credentials` token for `client` from node `i`.
    pub(crate) async fn root(&self, i: usize, client: &str) -> Reply {
        let req = self
            .http
            .post(format!("{}/oauth2/token", self.nodes[i].base))
            .basic_auth(client, Some(self.secret(client)))
            .header("content-type", FORM)
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("scope", "read write"),
            ]));
        Reply::from(req.send().await).await
    }

    /// RFC 7009 revocation of `token` by `client` on node `i`.
    pub(crate) async fn revoke(&self, i: usize, client: &str, token: &str) -> Reply {
        let req = self
            .http
            .post(format!("{}/oauth2/revoke", self.nodes[i].base))
            .basic_auth(client, Some(self.secret(client)))
            .header("content-type", FORM)
            .body(form(&[("token", token)]));
        Reply::from(req.send().await).await
    }

    /// Introspection of `token` on node `i` with the admin token.
    pub(crate) async fn introspect(&self, i: usize, token: &str) -> Reply {
        let req = self
            .http
            .post(format!("{}/oauth2/introspect", self.nodes[i].base))
            .bearer_auth(&self.token)
            .header("content-type", FORM)
            .body(form(&[("token", token)]));
        Reply::from(req.send().await).await
    }

    /// A chain-aware decision on node `i`: `subject` acting with `token`
    /// does `action` on a document.
    pub(crate) async fn decide(&self, i: usize, subject: &str, token: &str, action: &str) -> Reply {
        let (kind, _) = subject.split_once(':').expect("a typed id");
        let kind = if kind == "agent" { "Agent" } else { "Service" };
        let body = json!({
            "subject": {"type": kind, "id": subject, "properties": {"token": token}},
            "action": {"name": action},
            "resource": {"type": "Doc", "id": "plan"},
        });
        let req = self
            .http
            .post(format!("{}/access/v1/evaluation", self.nodes[i].base))
            .bearer_auth(&self.token)
            .json(&body);
        Reply::from(req.send().await).await
    }

    /// Runs `handoff audit verify --database` against the cluster's database.
    pub(crate) fn verify_audit(&self) -> (i32, String) {
        let out = Command::new(BIN)
            .args(["audit", "verify", "--database", &self.db.url])
            .arg("--master-key-file")
            .arg(&self.master_key_file)
            .output()
            .expect("run handoff audit verify");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Every node's log, for failure messages.
    pub(crate) fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("--- node {i}\n{}", tail(&n.log(), 40)))
            .collect()
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

const FORM: &str = "application/x-www-form-urlencoded";

/// An `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// An HTTP answer: status (0 when no answer came) and JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Reply {
    async fn from(sent: reqwest::Result<reqwest::Response>) -> Self {
        match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                Self {
                    status,
                    body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                }
            }
            Err(e) => Self {
                status: 0,
                body: Value::String(e.to_string()),
            },
        }
    }

    /// The body, asserting the status.
    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        &self.body
    }

    /// The issued access token of a 200 token response.
    #[track_caller]
    pub(crate) fn access_token(&self) -> String {
        self.expect(200)["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }

    /// The decision of a 200 evaluation response.
    #[track_caller]
    pub(crate) fn decision(&self) -> bool {
        self.expect(200)["decision"].as_bool().expect("a decision")
    }
}

/// The `jti` (the delegation id) of a token, read without verification.
pub(crate) fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a compact JWS");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims");
    claims["jti"].as_str().expect("a jti").to_owned()
}

/// The PostgreSQL cluster on this machine, for the restart scenario.
pub(crate) fn pg_ctl(action: &str) {
    let version = fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("PostgreSQL is installed under /etc/postgresql");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .args(if action == "stop" {
            &["-m", "fast"][..]
        } else {
            &[][..]
        })
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action} failed");
}

/// Quantile `q` (0..=1) of sorted `values`.
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
