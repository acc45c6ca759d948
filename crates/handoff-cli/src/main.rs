//! The `handoff` binary: runs the server (`handoff serve`), administers a
//! running server over its HTTP API (identities, credentials, admin tokens,
//! policy packs, the audit log), validates and tests a policy pack offline,
//! and verifies an audit log offline, straight from a data directory.
//!
//! This file holds the command-line grammar and the dispatch; the HTTP
//! plumbing lives in [`client`], rendering in [`output`] and each command
//! group in [`commands`]. It holds no business rules: the server decides,
//! the CLI only asks and shows the answer.

mod client;
mod commands;
mod output;

use clap::{ArgGroup, Args, CommandFactory, Parser, Subcommand, ValueEnum};
use output::Format;
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status of a command that failed (HTTP error, unreachable server,
/// unreadable file).
const EXIT_FAILURE: u8 = 1;
/// Exit status of `audit verify` when the log is broken, and of `delegate`
/// when the handoff was refused: the command worked, the answer is no.
const EXIT_BROKEN: u8 = 3;

/// Help heading of the options every command takes.
const GLOBAL: &str = "Global options";

const TOP_HELP: &str = "\
Examples:
  handoff serve
  handoff identity create human:alice@example.com
  handoff identity create agent:support-bot --owner human:alice@example.com --env prod
  handoff identity list --kind agent --output json
  handoff policy push ./policies
  handoff audit verify --data-dir ./handoff-data

Exit status:
  0  success
  1  failure: the server refused the request, could not be reached, a file could not be read,
     a policy pack is invalid or a policy test failed
  2  usage error: unknown command, missing or invalid argument
  3  audit verify: the audit log is broken; delegate: the handoff was refused

The admin token is taken from --token, else HANDOFF_TOKEN, else the file
./handoff-data/admin-token when it exists (written by `handoff serve` on first start).";

/// Command line of the `handoff` binary.
#[derive(Parser)]
#[command(
    name = "handoff",
    version,
    about = "Handoff identity governance: run the server, manage identities and credentials, verify the audit log",
    after_help = TOP_HELP,
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command.
#[derive(Args)]
struct Global {
    /// Address of the Handoff server
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "HANDOFF_ADDR",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    addr: String,

    /// Admin token (or credential, for whoami); prefer HANDOFF_TOKEN, which
    /// other users cannot see in the process list [default: contents of
    /// ./handoff-data/admin-token when present]
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "HANDOFF_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,

    /// How to print results
    #[arg(
        long,
        short = 'o',
        global = true,
        help_heading = GLOBAL,
        env = "HANDOFF_OUTPUT",
        value_enum,
        default_value_t = Format::Table
    )]
    output: Format,

    /// Format of log lines (handoff serve) [default: text, or the configuration file's]
    #[arg(long, global = true,
        help_heading = GLOBAL, env = "HANDOFF_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,

    /// Extra root certificate (PEM) to trust when the server address is https
    #[arg(long, global = true,
        help_heading = GLOBAL, env = "HANDOFF_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

/// Log line format of `handoff serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per line
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Handoff server
    #[command(
        long_about = "Run the Handoff server.\n\n\
            With no arguments it keeps its data in ./handoff-data and listens on \
            127.0.0.1:8080. On first start it creates a bootstrap admin token and writes \
            it to <data-dir>/admin-token (mode 0600); the token itself is never logged. \
            The tokens it issues name --public-url as their issuer (default: \
            http://<listen>); set it whenever clients reach the server at another address. \
            With --database postgres://… several nodes share one PostgreSQL database \
            (and its keys, sealed under the master key of --master-key-file); see \
            docs/deployment.md. \
            Flags override HANDOFF_* variables, which override the configuration file.",
        after_help = "Examples:\n  \
            handoff serve\n  \
            HANDOFF_MASTER_KEY_FILE=/etc/handoff/master.key handoff serve \\\n      \
            --database postgres://handoff@db.internal/handoff --public-url https://handoff.example\n  \
            handoff serve --data-dir /var/lib/handoff --listen 0.0.0.0:8443 \\\n      \
            --tls-cert cert.pem --tls-key key.pem --public-url https://handoff.example\n  \
            handoff serve --config handoff.toml --log-format json\n  \
            handoff serve --policy-pack ./policies"
    )]
    Serve(ServeArgs),

    /// Manage identities: humans, agents and services
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            handoff identity create human:alice@example.com\n  \
            handoff identity create agent:support-bot --owner human:alice@example.com --env prod\n  \
            handoff identity list --orphaned"
    )]
    Identity(IdentityCommand),

    /// Issue, list and revoke credentials (secrets and public keys) of agents and services
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            handoff credential issue agent:support-bot --description ci --expires-in 30d\n  \
            handoff credential list agent:support-bot\n  \
            handoff credential revoke cred_0123456789abcdef"
    )]
    Credential(CredentialCommand),

    /// Create, list and revoke admin API tokens; mint development human tokens
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            handoff token create ci-reader --role auditor --expires-in 7d\n  \
            handoff token list\n  \
            handoff token revoke tok_0123456789abcdef"
    )]
    Token(TokenCommand),

    /// Show who the token authenticates as
    #[command(
        long_about = "Show who the token authenticates as: an admin token (with its role) or \
            a credential (with its identity). Fails when the token does not authenticate, \
            e.g. a credential whose identity is suspended.",
        after_help = "Examples:\n  \
            handoff whoami\n  \
            HANDOFF_TOKEN=hfc_... handoff whoami --output json"
    )]
    Whoami,

    /// Push, list, show and roll back policy packs; validate and test them offline
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            handoff policy validate ./policies\n  \
            handoff policy test ./policies\n  \
            handoff policy push ./policies\n  \
            handoff policy list\n  \
            handoff policy rollback 3"
    )]
    Policy(PolicyCommand),

    /// Read, export and verify the audit log
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            handoff audit tail -n 50\n  \
            handoff audit export --format jsonl --out audit.jsonl\n  \
            handoff audit verify --data-dir ./handoff-data"
    )]
    Audit(AuditCommand),

    /// Exchange a token for a narrower one held by an agent or service
    #[command(
        long_about = "Exchange a token for a narrower one held by an agent or service \
            (OAuth 2.0 Token Exchange, RFC 8693), or get a token of the client's own \
            (--client-credentials).\n\n\
            The client is the agent or service that receives the token; it authenticates \
            with its credential (prefer HANDOFF_CLIENT_SECRET, which other users cannot see \
            in the process list). The subject token is the token being handed over: a \
            human's token or a token an agent received earlier. The new token never holds \
            more than the subject token: its scope, audience and lifetime can only narrow, \
            and the server's policy must permit the handoff.\n\n\
            The access token is printed alone on standard output, so \
            TOKEN=$(handoff delegate ...) captures it; --output json prints the whole \
            answer. The admin token is not used.",
        after_help = "Examples:\n  \
            HUMAN=$(handoff token mint-human human:alice@example.com --scope \"read write\")\n  \
            export HANDOFF_CLIENT_SECRET=hfc_...\n  \
            BOT=$(handoff delegate --client-id agent:bot --subject-token \"$HUMAN\" --scope read)\n  \
            echo \"$BOT\" | handoff delegate --client-id service:search --subject-token - \\\n      \
            --audience https://search.example --lifetime 5m\n  \
            handoff delegate --client-id agent:bot --client-credentials --output json\n\n\
            Exit status:\n  \
            0  the token was issued\n  \
            1  failure: invalid_client, a server error, or the server could not be reached\n  \
            3  the handoff was denied: invalid_scope, invalid_target, invalid_request,\n     \
            invalid_grant, unauthorized_client or access_denied",
        group(ArgGroup::new("grant").required(true)
            .args(["subject_token", "client_credentials"]))
    )]
    Delegate(DelegateArgs),

    /// Show the lineage of a token or delegation as a tree
    #[command(
        long_about = "Show the whole lineage (delegation tree) that a token, a delegation or \
            a lineage belongs to, one line per delegation: who handed it to whom, its scope, \
            audience, depth, state and expiry. The traced delegation is marked with *.\n\n\
            A token (a JWT) is only decoded to read its jti, the id of its delegation; it is \
            not verified, and the server's answer is what counts. Any other argument is \
            looked up as a delegation id, then as a lineage id (txn).",
        after_help = "Examples:\n  \
            handoff trace \"$TOKEN\"\n  \
            handoff trace dlg_0123456789abcdef0123456789abcdef\n  \
            handoff trace dlg_0123456789abcdef0123456789abcdef --output json"
    )]
    Trace {
        /// A token (JWT), a delegation id (dlg_...) or a lineage id
        #[arg(value_name = "TOKEN|DELEGATION|LINEAGE")]
        target: String,
    },

    /// Revoke a delegation and everything delegated from it
    #[command(
        long_about = "Revoke a delegation and, with it, every delegation below it in its \
            lineage: their tokens stop working at once. Prints the blast radius: every \
            delegation that loses access and the identities that held them. With --dry-run \
            nothing is revoked; the same blast radius is printed.",
        after_help = "Examples:\n  \
            handoff revoke dlg_0123456789abcdef0123456789abcdef --dry-run\n  \
            handoff revoke dlg_0123456789abcdef0123456789abcdef\n  \
            handoff revoke dlg_0123456789abcdef0123456789abcdef --output json"
    )]
    Revoke {
        /// Delegation id (dlg_...)
        #[arg(value_name = "DELEGATION")]
        delegation: String,

        /// Only show what would lose access; revoke nothing
        #[arg(long)]
        dry_run: bool,
    },

    /// Rotate and list the keys that sign delegation tokens
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            handoff keys list\n  \
            handoff keys rotate"
    )]
    Keys(KeysCommand),

    /// Bring the database schema up to this version of Handoff
    #[command(
        long_about = "Bring the database schema up to this version of Handoff, then exit.\n\n\
            `handoff serve` migrates on start too; run this first to upgrade a shared \
            PostgreSQL database before rolling out new nodes (migrations only add, so \
            nodes of the previous version keep working until they are replaced). \
            Concurrent runs are safe: they take turns on a database lock.",
        after_help = "Examples:\n  \
            handoff migrate --database postgres://handoff@db.internal/handoff\n  \
            handoff migrate --data-dir ./handoff-data\n\n\
            Exit status:\n  \
            0  the schema is current\n  \
            1  the database could not be reached or is newer than this binary"
    )]
    Migrate {
        /// The embedded database in this data directory, when no --database is
        /// given [default: ./handoff-data]
        #[arg(long, env = "HANDOFF_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,

        /// A shared PostgreSQL database (wins over --data-dir, as in `serve`)
        #[arg(long, env = "HANDOFF_DATABASE_URL", value_name = "URL")]
        database: Option<String>,
    },

    /// Print a shell completion script
    #[command(after_help = "Examples:\n  \
            handoff completions bash > ~/.local/share/bash-completion/completions/handoff\n  \
            handoff completions zsh > ~/.zfunc/_handoff\n  \
            handoff completions fish > ~/.config/fish/completions/handoff.fish")]
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Flags of `handoff serve`; each overrides the configuration file.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Directory for the database, keys and bootstrap admin token [default: ./handoff-data]
    #[arg(long, env = "HANDOFF_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// A PostgreSQL database shared by several nodes (postgres://…) instead of the
    /// embedded SQLite database in --data-dir; needs a master key
    #[arg(long, env = "HANDOFF_DATABASE_URL", value_name = "URL")]
    database: Option<String>,

    /// File holding the master key that seals the keys kept in a shared database
    /// (or set HANDOFF_MASTER_KEY to the key itself)
    #[arg(long, env = "HANDOFF_MASTER_KEY_FILE", value_name = "FILE")]
    master_key_file: Option<PathBuf>,

    /// Address to listen on, an IP address and port [default: 127.0.0.1:8080]
    #[arg(long, env = "HANDOFF_LISTEN", value_name = "IP:PORT")]
    listen: Option<SocketAddr>,

    /// Configuration file (TOML, `version = 1`)
    #[arg(long, env = "HANDOFF_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// TLS certificate chain (PEM); needs --tls-key
    #[arg(
        long,
        env = "HANDOFF_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,

    /// TLS private key (PEM); needs --tls-cert
    #[arg(
        long,
        env = "HANDOFF_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Allow plain HTTP on a non-loopback address (dangerous: tokens travel in clear text)
    #[arg(long, env = "HANDOFF_INSECURE_HTTP")]
    insecure_http: bool,

    /// Seconds after which a request is answered 503
    #[arg(long, env = "HANDOFF_REQUEST_TIMEOUT", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout: Option<u64>,

    /// Seconds in-flight requests may take to finish after SIGTERM or Ctrl-C
    #[arg(long, env = "HANDOFF_SHUTDOWN_GRACE", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    shutdown_grace: Option<u64>,

    /// Sign an audit checkpoint after this many records [default: 1000]
    #[arg(long, env = "HANDOFF_CHECKPOINT_EVERY", value_name = "RECORDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: Option<u64>,

    /// Sign an audit checkpoint at least this often while records arrive, in seconds [default: 60]
    #[arg(long, env = "HANDOFF_CHECKPOINT_INTERVAL", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_interval: Option<u64>,

    /// Most changes committed in one audit transaction (group commit) [default: 1024]
    #[arg(long, env = "HANDOFF_AUDIT_MAX_BATCH", value_name = "CHANGES",
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    audit_max_batch: Option<u64>,

    /// Policy pack directory pushed as `system` at start (no new version when it
    /// equals the active one; an invalid pack stops the server)
    #[arg(long, env = "HANDOFF_POLICY_PACK", value_name = "DIR")]
    policy_pack: Option<PathBuf>,

    /// Answer AuthZEN requests (/access/v1/*) without a token (dangerous: anyone
    /// who reaches the server can ask for decisions)
    #[arg(long, env = "HANDOFF_PDP_ALLOW_UNAUTHENTICATED")]
    pdp_allow_unauthenticated: bool,

    /// URL clients reach the server at: the issuer of every token and the base of
    /// advertised endpoints; required when listening on 0.0.0.0 or ::
    /// [default: http://<listen>, https:// with TLS]
    #[arg(long, env = "HANDOFF_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,

    /// Development mode: allows `handoff token mint-human` (never in production)
    #[arg(long, env = "HANDOFF_DEV")]
    dev: bool,

    /// Deepest a delegation chain may go below its root [default: 5]
    #[arg(long, env = "HANDOFF_MAX_DEPTH", value_name = "HOPS")]
    max_depth: Option<u32>,

    /// Longest lifetime of a delegation, in seconds (at most 604800) [default: 3600]
    #[arg(long, env = "HANDOFF_MAX_LIFETIME", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    max_lifetime: Option<u64>,

    /// Most direct delegations below one delegation [default: 100]
    #[arg(long, env = "HANDOFF_MAX_FAN_OUT", value_name = "COUNT")]
    max_fan_out: Option<u32>,

    /// Algorithm of the token signing key, EdDSA or ES256; a change rotates the
    /// key at start [default: EdDSA]
    #[arg(long, env = "HANDOFF_SIGNING_ALGORITHM", value_name = "ALGORITHM",
          value_parser = clap::value_parser!(handoff_engine::jwt::Algorithm))]
    signing_algorithm: Option<handoff_engine::jwt::Algorithm>,
}

/// Kind of an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// A person
    Human,
    /// An AI agent
    Agent,
    /// A service account, workload or bot
    Service,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Agent => "agent",
            Self::Service => "service",
        }
    }
}

/// Status of an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Status {
    /// In use
    Active,
    /// Temporarily blocked
    Suspended,
    /// Blocked for good
    Disabled,
    /// Retired
    Decommissioned,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Disabled => "disabled",
            Self::Decommissioned => "decommissioned",
        }
    }
}

#[derive(Debug, Subcommand)]
enum IdentityCommand {
    /// Create an identity
    #[command(
        long_about = "Create an identity. Ids are <kind>:<name> with kind human, agent or \
            service. Agents and services need an --owner, an existing active human; humans \
            take none.",
        after_help = "Examples:\n  \
            handoff identity create human:alice@example.com\n  \
            handoff identity create agent:support-bot --owner human:alice@example.com --env prod\n  \
            handoff identity create service:billing-api --owner human:alice@example.com \\\n      \
            --attr team=billing --attributes-json '{\"tier\": 1}'"
    )]
    Create(CreateArgs),

    /// List identities, filtered
    #[command(after_help = "Examples:\n  \
            handoff identity list\n  \
            handoff identity list --kind agent --status active --env prod\n  \
            handoff identity list --owner human:alice@example.com --all --output json\n  \
            handoff identity list --orphaned")]
    List(ListArgs),

    /// Show one identity
    #[command(after_help = "Examples:\n  \
            handoff identity show agent:support-bot\n  \
            handoff identity show human:alice@example.com --output json")]
    Show {
        /// Identity id, e.g. agent:support-bot
        id: String,
    },

    /// Change an identity's environment or attributes
    #[command(
        long_about = "Change an identity's environment or attributes. Attributes given here \
            replace the whole attribute object.",
        after_help = "Examples:\n  \
            handoff identity update agent:support-bot --env staging\n  \
            handoff identity update agent:support-bot --clear-env\n  \
            handoff identity update agent:support-bot --attributes-json '{\"team\": \"support\"}'",
        group(ArgGroup::new("change").required(true).multiple(true)
            .args(["env", "clear_env", "attributes_json", "attr"]))
    )]
    Update(UpdateArgs),

    /// Suspend an active identity (resume undoes it)
    #[command(after_help = "Examples:\n  \
            handoff identity suspend agent:support-bot --reason \"leaked key under investigation\"")]
    Suspend(StatusArgs),

    /// Make a suspended identity active again
    #[command(after_help = "Examples:\n  \
            handoff identity resume agent:support-bot --reason \"key rotated\"")]
    Resume(StatusArgs),

    /// Disable an active or suspended identity for good
    #[command(
        long_about = "Disable an active or suspended identity for good. Disabling a human flags \
            every agent and service it owns as orphaned.",
        after_help = "Examples:\n  \
            handoff identity disable human:bob@example.com --reason \"left the company\"\n  \
            handoff identity list --orphaned"
    )]
    Disable(StatusArgs),

    /// Decommission a disabled identity
    #[command(after_help = "Examples:\n  \
            handoff identity decommission agent:old-bot --reason \"replaced by agent:support-bot\"")]
    Decommission(StatusArgs),
}

/// Arguments of `identity create`.
#[derive(Debug, Args)]
struct CreateArgs {
    /// Identity id: human:<name>, agent:<name> or service:<name>
    id: String,

    /// Owning human (required for agents and services)
    #[arg(long, value_name = "ID")]
    owner: Option<String>,

    /// Environment label, e.g. prod or staging
    #[arg(long = "env", value_name = "ENV")]
    environment: Option<String>,

    /// Attribute as key=value (string value); repeatable
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_attr)]
    attr: Vec<(String, String)>,

    /// Attributes as a JSON object; --attr entries are added to it
    #[arg(long, value_name = "JSON", value_parser = parse_object)]
    attributes_json: Option<Map<String, Value>>,
}

/// Arguments of `identity list`.
#[derive(Debug, Args)]
struct ListArgs {
    /// Only this kind
    #[arg(long, value_enum)]
    kind: Option<Kind>,

    /// Only this status
    #[arg(long, value_enum)]
    status: Option<Status>,

    /// Only identities owned by this identity
    #[arg(long, value_name = "ID")]
    owner: Option<String>,

    /// Only this environment
    #[arg(long = "env", value_name = "ENV")]
    environment: Option<String>,

    /// Only orphan candidates: identities whose owner was disabled or decommissioned
    #[arg(long)]
    orphaned: bool,

    /// Identities per page (1-500) [server default: 50]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: Option<u32>,

    /// Start after this cursor (the next_cursor of a previous page)
    #[arg(long, value_name = "CURSOR")]
    cursor: Option<String>,

    /// Fetch every page, following next_cursor
    #[arg(long)]
    all: bool,
}

/// Arguments of `identity update`.
#[derive(Debug, Args)]
struct UpdateArgs {
    /// Identity id
    id: String,

    /// New environment label
    #[arg(long = "env", value_name = "ENV", conflicts_with = "clear_env")]
    env: Option<String>,

    /// Remove the environment label
    #[arg(long)]
    clear_env: bool,

    /// New attributes as a JSON object (replaces all attributes)
    #[arg(long, value_name = "JSON", value_parser = parse_object)]
    attributes_json: Option<Map<String, Value>>,

    /// New attribute as key=value; repeatable, added to --attributes-json
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_attr)]
    attr: Vec<(String, String)>,
}

/// Arguments of a status change.
#[derive(Debug, Args)]
struct StatusArgs {
    /// Identity id
    id: String,

    /// Why, recorded in the audit log
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

#[derive(Debug, Subcommand)]
enum CredentialCommand {
    /// Issue a credential (API key) to an agent or service
    #[command(
        long_about = "Issue a credential (API key) to an active agent or service. The secret is \
            printed once, on standard output, and cannot be shown again: only its keyed hash \
            is stored. With --output json the whole answer (credential and secret) is printed.",
        after_help = "Examples:\n  \
            handoff credential issue agent:support-bot\n  \
            handoff credential issue agent:support-bot --description ci --expires-in 30d\n  \
            SECRET=$(handoff credential issue agent:support-bot)"
    )]
    Issue {
        /// Identity that holds the credential
        identity: String,

        /// What the credential is for
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,

        /// Lifetime: seconds, or a number with s, m, h, d or w (60s to 10 years)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires_in: Option<u64>,
    },

    /// List the credentials of an identity
    #[command(after_help = "Examples:\n  \
            handoff credential list agent:support-bot\n  \
            handoff credential list agent:support-bot --output json")]
    List {
        /// Identity id
        identity: String,
    },

    /// Show one credential
    #[command(after_help = "Examples:\n  \
            handoff credential show cred_0123456789abcdef")]
    Show {
        /// Credential id (cred_...)
        credential: String,
    },

    /// Revoke a credential
    #[command(after_help = "Examples:\n  \
            handoff credential revoke cred_0123456789abcdef")]
    Revoke {
        /// Credential id (cred_...)
        credential: String,
    },

    /// Register a public key for private_key_jwt client authentication
    #[command(
        long_about = "Register a public key (a JWK) on an agent or service, so it can \
            authenticate at the token endpoint with a signed client assertion \
            (private_key_jwt, RFC 7523) instead of a secret. Only public keys are accepted \
            (OKP Ed25519, EC P-256/P-384, RSA); the key id is the JWK's kid or, without one, \
            its RFC 7638 thumbprint.",
        after_help = "Examples:\n  \
            handoff credential add-key service:search --jwk search-public.jwk.json\n  \
            handoff credential keys service:search\n  \
            handoff credential revoke-key service:search search-2026-11"
    )]
    AddKey {
        /// Agent or service id
        identity: String,

        /// File holding the public JWK (JSON); `-` reads standard input
        #[arg(long, value_name = "FILE")]
        jwk: std::path::PathBuf,
    },

    /// List the public keys of an identity
    #[command(after_help = "Examples:\n  \
            handoff credential keys service:search --output json")]
    Keys {
        /// Identity id
        identity: String,
    },

    /// Revoke a public key: assertions signed with it stop authenticating
    #[command(after_help = "Examples:\n  \
            handoff credential revoke-key service:search search-2026-11")]
    RevokeKey {
        /// Identity id
        identity: String,

        /// Key id
        kid: String,
    },
}

/// Role of an admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Role {
    /// Everything
    Admin,
    /// Read-only: every GET
    Auditor,
    /// Decision point client: AuthZEN requests (/access/v1/*) only, no admin API
    Pdp,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Auditor => "auditor",
            Self::Pdp => "pdp",
        }
    }
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an admin token
    #[command(
        long_about = "Create an admin token. The secret is printed once, on standard output, \
            and cannot be shown again.",
        after_help = "Examples:\n  \
            handoff token create ops --role admin\n  \
            handoff token create ci-reader --role auditor --expires-in 7d\n  \
            handoff token create api-gateway --role pdp"
    )]
    Create {
        /// Name of the token, e.g. who or what uses it
        name: String,

        /// What the token may do
        #[arg(long, value_enum)]
        role: Role,

        /// Lifetime: seconds, or a number with s, m, h, d or w
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires_in: Option<u64>,
    },

    /// List admin tokens
    #[command(after_help = "Examples:\n  \
            handoff token list\n  \
            handoff token list --output json")]
    List,

    /// Revoke an admin token
    #[command(
        long_about = "Revoke an admin token. The last active admin-role token cannot be revoked.",
        after_help = "Examples:\n  \
            handoff token revoke tok_0123456789abcdef"
    )]
    Revoke {
        /// Token id (tok_...)
        token: String,
    },

    /// Mint a human's token for development (refused unless the server runs with --dev)
    #[command(
        name = "mint-human",
        long_about = "Mint a token for a human, signed by the server's development issuer, to \
            use as the subject token of `handoff delegate` without a real identity \
            provider. The server refuses (403) unless it runs with --dev: never in \
            production. The human must be an active inventory identity.\n\n\
            The token is printed alone on standard output; --output json prints the whole \
            answer.",
        after_help = "Examples:\n  \
            handoff serve --dev\n  \
            handoff token mint-human human:alice@example.com --scope \"read write\"\n  \
            HUMAN=$(handoff token mint-human human:alice@example.com --scope read --lifetime 15m)"
    )]
    MintHuman {
        /// The human, e.g. human:alice@example.com
        #[arg(value_name = "HUMAN")]
        human: String,

        /// Space-separated scope the human's token carries
        #[arg(long, value_name = "SCOPE")]
        scope: Option<String>,

        /// Lifetime: seconds, or a number with s, m, h, d or w [default: the server's]
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        lifetime: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Push a policy pack directory; it becomes the active version
    #[command(
        long_about = "Push a policy pack directory (schema.cedarschema, *.cedar, entities.json, \
            pack.toml; other files such as tests.json are not sent). The server validates it \
            and stores it as the next version, which becomes active. Pushing the pack that is \
            already active changes nothing. A refused pack changes nothing either: every \
            problem is printed as file:line:column: message and the exit status is 1.",
        after_help = "Examples:\n  \
            handoff policy push ./policies\n  \
            handoff policy push examples/authzen-certification --output json"
    )]
    Push {
        /// The pack directory
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },

    /// Check a policy pack offline, without a server
    #[command(
        long_about = "Check a policy pack offline, without a server, with the same compiler \
            the server runs: syntax, schema validation, entities and pack.toml. Every problem \
            is printed as file:line:column: message on standard error.",
        after_help = "Examples:\n  \
            handoff policy validate ./policies\n\n\
            Exit status:\n  \
            0  the pack is valid\n  \
            1  the pack has problems, or the directory cannot be read"
    )]
    Validate {
        /// The pack directory
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },

    /// Run a policy pack's tests (DIR/tests.json) offline
    #[command(
        long_about = "Compile a policy pack and run the cases of DIR/tests.json against it, \
            offline. Each case is a request and the expected decision; every case that gets \
            another decision is printed, then a summary.",
        after_help = "Examples:\n  \
            handoff policy test ./policies\n  \
            handoff policy test examples/authzen-todo --output json\n\n\
            Exit status:\n  \
            0  every case got its expected decision\n  \
            1  a case did not, the pack has problems, or a file cannot be read"
    )]
    Test {
        /// The pack directory (with tests.json)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },

    /// List the stored policy versions
    #[command(after_help = "Examples:\n  \
            handoff policy list\n  \
            handoff policy list --output json")]
    List,

    /// Show one policy version
    #[command(after_help = "Examples:\n  \
            handoff policy show 2\n  \
            handoff policy show 2 --files")]
    Show {
        /// Version number
        #[arg(value_name = "VERSION")]
        number: u64,

        /// Print the pack's files too
        #[arg(long)]
        files: bool,
    },

    /// Make an earlier policy version active again
    #[command(
        long_about = "Make a stored policy version active again (POST \
            /v1/policies/VERSION/activate). Decisions use it from the next request on.",
        after_help = "Examples:\n  \
            handoff policy list\n  \
            handoff policy rollback 2"
    )]
    Rollback {
        /// Version number
        #[arg(value_name = "VERSION")]
        number: u64,
    },
}

/// Export formats of the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    /// One record as JSON per line
    Jsonl,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Show the most recent audit records
    #[command(after_help = "Examples:\n  \
            handoff audit tail\n  \
            handoff audit tail -n 100 --output json")]
    Tail {
        /// How many records
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 20,
              value_parser = clap::value_parser!(u32).range(1..=1000))]
        lines: u32,
    },

    /// Export the audit log, oldest first
    #[command(after_help = "Examples:\n  \
            handoff audit export --format jsonl > audit.jsonl\n  \
            handoff audit export --format jsonl --after 1000 --out audit-new.jsonl")]
    Export {
        /// Output format
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,

        /// Only records after this sequence number
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        after: u64,

        /// Write to this file instead of standard output
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },

    /// Verify the audit log's hash chain and signed checkpoints
    #[command(
        long_about = "Verify the audit log's hash chain and signed checkpoints.\n\n\
            By default the server verifies its own log (GET /v1/audit/verify). With \
            --data-dir the log is read straight from a data directory and checked against \
            the checkpoint public key there: no server is needed, and a running server is \
            not disturbed (the database is opened read-only). With --database the log is \
            read from a shared PostgreSQL database (read-only) and checked against \
            --public-key, or against the signing key stored in the database, opened with \
            the master key.\n\n\
            Detects an edited, deleted, inserted or reordered record and a tail truncated \
            behind the last signed checkpoint, and names the first bad sequence number.",
        after_help = "Examples:\n  \
            handoff audit verify\n  \
            handoff audit verify --data-dir ./handoff-data\n  \
            handoff audit verify --data-dir /backup/handoff-data --output json\n  \
            HANDOFF_MASTER_KEY_FILE=/etc/handoff/master.key handoff audit verify --database postgres://handoff@db/handoff\n\n\
            Exit status:\n  \
            0  the log is intact: prints `ok: N records, M checkpoints, last seq S`\n  \
            3  the log is broken: prints `audit log is broken at sequence N: <reason>`\n  \
            1  no verdict: the server or the data directory could not be read"
    )]
    Verify {
        /// Verify offline, from this data directory, without a server
        #[arg(long, value_name = "DIR", conflicts_with = "database")]
        data_dir: Option<PathBuf>,

        /// Verify offline, from this shared PostgreSQL database, without a server
        #[arg(long, value_name = "URL")]
        database: Option<String>,

        /// With --database: the checkpoint public key (64 hex digits) to check against;
        /// without it the master key opens the signing key stored in the database
        #[arg(long, value_name = "HEX", requires = "database")]
        public_key: Option<String>,

        /// With --database: the master key file (when no --public-key is given)
        #[arg(long, env = "HANDOFF_MASTER_KEY_FILE", value_name = "FILE")]
        master_key_file: Option<PathBuf>,
    },
}

/// Type of the token handed over (RFC 8693 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TokenType {
    /// An OAuth access token, e.g. one `handoff delegate` printed
    AccessToken,
    /// A JWT, e.g. a human's token from a trusted issuer
    Jwt,
    /// An OpenID Connect ID token
    IdToken,
}

use handoff_engine::delegation::token_type;

impl TokenType {
    fn as_urn(self) -> &'static str {
        match self {
            Self::AccessToken => token_type::ACCESS_TOKEN,
            Self::Jwt => token_type::JWT,
            Self::IdToken => token_type::ID_TOKEN,
        }
    }
}

/// Arguments of `handoff delegate`.
#[derive(Debug, Args)]
struct DelegateArgs {
    /// The agent or service that receives the token, e.g. agent:bot
    #[arg(long, env = "HANDOFF_CLIENT_ID", value_name = "ID")]
    client_id: String,

    /// The client's credential (hfc_...); prefer HANDOFF_CLIENT_SECRET
    #[arg(
        long,
        env = "HANDOFF_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    client_secret: String,

    /// The token handed over; `-` reads it from standard input
    #[arg(long, value_name = "TOKEN")]
    subject_token: Option<String>,

    /// Type of the subject token
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = TokenType::AccessToken,
          requires = "subject_token")]
    subject_token_type: TokenType,

    /// Get a token of the client's own instead of exchanging one (client_credentials grant)
    #[arg(long)]
    client_credentials: bool,

    /// A token held by the client, proving it acts (RFC 8693 actor_token)
    #[arg(long, value_name = "TOKEN", requires = "subject_token")]
    actor_token: Option<String>,

    /// Space-separated scope to ask for [default: the subject token's]
    #[arg(long, value_name = "SCOPE")]
    scope: Option<String>,

    /// Audience the token is for (a logical name); repeatable
    #[arg(long, value_name = "AUDIENCE")]
    audience: Vec<String>,

    /// Resource server URI the token is for; repeatable
    #[arg(long, value_name = "URI")]
    resource: Vec<String>,

    /// Lifetime: seconds, or a number with s, m, h, d or w [default: the server's]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    lifetime: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List the token-signing keys
    #[command(after_help = "Examples:\n  \
            handoff keys list\n  \
            handoff keys list --output json")]
    List,

    /// Make a new signing key; tokens are signed with it from now on
    #[command(
        long_about = "Make a new token-signing key; new tokens are signed with it from now \
            on. The previous key is retired, not deleted: it stays published so the tokens \
            it signed still verify until they expire. On a shared database every node \
            signs with the new key within a second.",
        after_help = "Examples:\n  \
            handoff keys rotate\n  \
            handoff keys rotate --output json"
    )]
    Rotate,

    /// Print a new random master key (for a shared PostgreSQL database)
    #[command(
        long_about = "Print a new random master key (32 bytes, base64) on standard output; \
            no server is needed. Nodes on a shared PostgreSQL database seal the signing keys \
            they keep in it under this key: give every node the same key, in a file named by \
            HANDOFF_MASTER_KEY_FILE (mode 0600). Losing it makes the stored keys unusable; \
            keep a copy apart from database backups.",
        after_help = "Examples:\n  \
            (umask 077; handoff keys master-key > /etc/handoff/master.key)"
    )]
    MasterKey,
}

/// Parses `key=value`.
fn parse_attr(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected key=value, got \"{s}\"")),
    }
}

/// Parses a JSON object.
fn parse_object(s: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("expected a JSON object, e.g. '{\"team\": \"support\"}'".to_owned()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

/// Parses a lifetime: seconds, or a number with a unit (`s`, `m`, `h`, `d`, `w`).
fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "expected seconds or a number with s, m, h, d or w, got \"{s}\""
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("expected seconds or a number with s, m, h, d or w, got \"{s}\""))
}

fn main() -> ExitCode {
    // Parse errors and --help exit here, with clap's own codes (2 and 0).
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Runs one parsed command.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli { global, command } = cli;
    let format = global.output;
    match command {
        Command::Serve(args) => commands::serve::run(args, global.log_format).await,
        Command::Identity(cmd) => {
            commands::identity::run(&client::Client::new(&global)?, format, cmd).await
        }
        Command::Credential(cmd) => {
            commands::credential::run(&client::Client::new(&global)?, format, cmd).await
        }
        Command::Token(cmd) => {
            commands::token::run(&client::Client::new(&global)?, format, cmd).await
        }
        Command::Whoami => commands::token::whoami(&client::Client::new(&global)?, format).await,
        Command::Policy(PolicyCommand::Validate { dir }) => {
            commands::policy::validate(format, &dir)
        }
        Command::Policy(PolicyCommand::Test { dir }) => commands::policy::test(format, &dir),
        Command::Policy(cmd) => {
            commands::policy::run(&client::Client::new(&global)?, format, cmd).await
        }
        Command::Audit(AuditCommand::Verify {
            data_dir: Some(dir),
            ..
        }) => commands::audit::verify_offline(&dir, format).await,
        Command::Audit(AuditCommand::Verify {
            database: Some(url),
            public_key,
            master_key_file,
            ..
        }) => commands::audit::verify_database(&url, public_key, master_key_file, format).await,
        Command::Migrate { data_dir, database } => {
            commands::migrate::run(data_dir, database, format).await
        }
        Command::Keys(KeysCommand::MasterKey) => commands::keys::master_key(),
        Command::Audit(cmd) => {
            commands::audit::run(&client::Client::new(&global)?, format, cmd).await
        }
        Command::Delegate(args) => {
            commands::delegate::run(&client::Client::new(&global)?, format, args).await
        }
        Command::Trace { target } => {
            commands::trace::run(&client::Client::new(&global)?, format, &target).await
        }
        Command::Revoke {
            delegation,
            dry_run,
        } => {
            commands::revoke::run(&client::Client::new(&global)?, format, &delegation, dry_run)
                .await
        }
        Command::Keys(cmd) => {
            commands::keys::run(&client::Client::new(&global)?, format, cmd).await
        }
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "handoff", &mut out);
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("30d"), Ok(2_592_000));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("99999999999999999999w").is_err());
    }

    #[test]
    fn attributes_parse_as_pairs_and_objects() {
        assert_eq!(parse_attr("team=a=b"), Ok(("team".into(), "a=b".into())));
        assert_eq!(parse_attr("team="), Ok(("team".into(), String::new())));
        assert!(parse_attr("=x").is_err());
        assert!(parse_attr("team").is_err());
        assert!(parse_object("{\"a\": 1}").is_ok());
        assert!(parse_object("[1]").is_err());
        assert!(parse_object("{").is_err());
    }
}
