//! JSON Schemas of the values the core parsers accept (identity, credential
//! and admin token ids, environment labels, the kind, status and role words,
//! list cursors, lifetimes, attributes) and of the two requests whose rules
//! span fields: the body that creates an identity and the audit query.
//!
//! Each schema is built from the core's (or the engine's) own constants and
//! word lists, so the OpenAPI document states what the server enforces and
//! cannot drift from it; the tests hold the patterns against the parsers.
//! Nothing here parses a request: the wire types and the core parsers do.

use crate::wire::{AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT, CreateIdentity, ListAudit};
use handoff_core::identity::{
    MAX_ATTRIBUTES_BYTES, MAX_ATTRIBUTES_DEPTH, MAX_ENVIRONMENT_LEN, MAX_NAME_LEN,
};
use handoff_core::page::MAX_CURSOR_LEN;
use handoff_core::secret::LOOKUP_LEN;
use handoff_core::{Kind, Role, Status};
use handoff_engine::credentials::{MAX_TTL_SECONDS, MIN_TTL_SECONDS};
use serde_json::json;
use std::borrow::Cow;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{Ref, RefOr, Required};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// Free text without control characters (`char::is_control`: Unicode Cc).
/// The wire types repeat it in their `#[schema(pattern = …)]` attributes,
/// which take only a literal; the openapi tests compare them with this.
pub const NO_CONTROL_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// The name part of an identity id, unanchored.
fn name_pattern() -> String {
    format!("[A-Za-z0-9][A-Za-z0-9._@+-]{{0,{}}}", MAX_NAME_LEN - 1)
}

/// The pattern of an identity id whose kind is one of `kinds`.
pub fn id_pattern(kinds: &[Kind]) -> String {
    let words: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    match words.as_slice() {
        [one] => format!("^{one}:{}$", name_pattern()),
        _ => format!("^({}):{}$", words.join("|"), name_pattern()),
    }
}

/// The pattern of a record id: `prefix` and the secret's lookup part.
pub fn record_id_pattern(prefix: &str) -> String {
    format!("^{prefix}[0-9a-f]{{{LOOKUP_LEN}}}$")
}

/// The pattern of an environment label.
pub fn environment_pattern() -> String {
    format!("^[a-z0-9_-]{{1,{MAX_ENVIRONMENT_LEN}}}$")
}

/// The pattern of a list cursor: lowercase hex spelling UTF-8 (RFC 3629 §4),
/// byte sequence by byte sequence.
pub fn cursor_pattern() -> String {
    const TAIL: &str = "[89ab][0-9a-f]";
    let sequences = [
        "[0-7][0-9a-f]".to_owned(),
        format!("(?:c[2-9a-f]|d[0-9a-f]){TAIL}"),
        format!("e0[ab][0-9a-f]{TAIL}"),
        format!("e[1-9a-cef]{TAIL}{TAIL}"),
        format!("ed[89][0-9a-f]{TAIL}"),
        format!("f0[9ab][0-9a-f]{TAIL}{TAIL}"),
        format!("f[1-3]{TAIL}{TAIL}{TAIL}"),
        format!("f48[0-9a-f]{TAIL}{TAIL}"),
    ];
    format!("^(?:{})*$", sequences.join("|"))
}

fn string(pattern: String, description: &str, example: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([example])
        .build()
        .into()
}

fn words<const N: usize>(all: [&'static str; N], description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(all))
        .description(Some(description))
        .build()
        .into()
}

/// Declares a unit type standing for a named component schema.
macro_rules! component {
    ($(#[$doc:meta])* $ty:ident, $build:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                RefOr::T($build)
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    };
}

component!(
    /// An identity id of any kind.
    IdentityId,
    string(
        id_pattern(&Kind::ALL),
        &format!(
            "`<kind>:<name>`: kind human, agent or service; the name is 1 to {MAX_NAME_LEN} \
             ASCII letters, digits and `. _ - @ +`, starting with a letter or digit"
        ),
        "agent:support-bot",
    )
);

component!(
    /// The id of a human: the only kind that owns.
    HumanId,
    string(
        id_pattern(&[Kind::Human]),
        "the id of a human identity",
        "human:alice@example.com",
    )
);

component!(
    /// The id of an agent or service: the kinds that hold credentials.
    NonHumanId,
    string(
        id_pattern(&[Kind::Agent, Kind::Service]),
        "the id of an agent or service identity",
        "agent:support-bot",
    )
);

component!(
    /// A credential id.
    CredentialId,
    string(
        record_id_pattern("cred_"),
        "`cred_` and 16 lowercase hex digits",
        "cred_0123456789abcdef",
    )
);

component!(
    /// A delegation id (the `jti` of its token; a root's id is the lineage's `txn`).
    DelegationId,
    string(
        format!("^dlg_[0-9a-f]{{{}}}$", handoff_core::delegation::DELEGATION_ID_HEX),
        "`dlg_` and 32 lowercase hex digits",
        "dlg_0123456789abcdef0123456789abcdef",
    )
);

component!(
    /// A client key id (a JWK's `kid`).
    KeyId,
    string(
        format!("^[!-~]{{1,{}}}$", handoff_core::client_key::MAX_KID_LEN),
        "1 to 128 printable ASCII characters without spaces",
        "search-2026-11",
    )
);

component!(
    /// An admin token id.
    AdminTokenId,
    string(
        record_id_pattern("tok_"),
        "`tok_` and 16 lowercase hex digits",
        "tok_0123456789abcdef",
    )
);

component!(
    /// The values of the `X-Handoff-Explain` header.
    Explain,
    words(
        ["true", "false"],
        "`true` adds the determining policies and evaluation errors to decisions"
    )
);

component!(
    /// A policy version number in a path.
    PolicyVersion,
    string(
        "^[1-9][0-9]{0,18}$".to_owned(),
        "a stored policy version: 1, 2, 3, … without leading zeros",
        "1",
    )
);

component!(
    /// An environment label.
    Environment,
    string(
        environment_pattern(),
        &format!("1 to {MAX_ENVIRONMENT_LEN} lowercase letters, digits, `-` or `_`"),
        "prod",
    )
);

component!(
    /// A list cursor.
    Cursor,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(cursor_pattern()))
        .max_length(Some(MAX_CURSOR_LEN))
        .description(Some(
            "opaque: pass back a `next_cursor` as it was given (lowercase hex spelling UTF-8)",
        ))
        .examples(["6167656e743a626f74"])
        .build()
        .into()
);

component!(
    /// The kind of an identity.
    IdentityKind,
    words(Kind::ALL.map(Kind::as_str), "the kind of an identity")
);

component!(
    /// The lifecycle status of an identity.
    IdentityStatus,
    words(
        Status::ALL.map(Status::as_str),
        "the lifecycle status of an identity"
    )
);

component!(
    /// What an admin token may do.
    AdminRole,
    words(
        Role::ALL.map(Role::as_str),
        "what the token may do (docs/api.md, Admin tokens)"
    )
);

component!(
    /// A lifetime in seconds.
    Lifetime,
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(MIN_TTL_SECONDS))
        .maximum(Some(MAX_TTL_SECONDS))
        .description(Some(format!(
            "seconds until expiry, {MIN_TTL_SECONDS} (a minute) to {MAX_TTL_SECONDS} (ten years of 366 days)"
        )))
        .build()
        .into()
);

component!(
    /// Free-form attributes.
    Attributes,
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(format!(
            "a free-form JSON object of at most {MAX_ATTRIBUTES_BYTES} bytes as compact JSON, \
             no value nested deeper than {MAX_ATTRIBUTES_DEPTH} levels"
        )))
        .build()
        .into()
);

fn reference<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

fn nullable<T: ToSchema>() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(reference::<T>())
        .into()
}

/// One shape of the create body: `id` of some kinds, and `owner` as given.
fn create_branch(title: &str, id: RefOr<Schema>, owner: RefOr<Schema>, owned: bool) -> Schema {
    let body = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some(title))
        .property("id", id)
        .property("owner", owner)
        .property("environment", nullable::<Environment>())
        .property("attributes", nullable::<Attributes>())
        .required("id")
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    let body = if owned { body.required("owner") } else { body };
    body.into()
}

/// Two shapes: a human without an owner, or an agent or service with a
/// human owner. Breaking the ownership rule is a 422; an owner that does
/// not exist or is not active is a 422 the schema cannot foresee.
impl PartialSchema for CreateIdentity {
    fn schema() -> RefOr<Schema> {
        let human = create_branch(
            "human",
            string(
                id_pattern(&[Kind::Human]),
                "`human:<name>`",
                "human:alice@example.com",
            )
            .into(),
            ObjectBuilder::new()
                .schema_type(Type::Null)
                .description(Some("humans have no owner"))
                .into(),
            false,
        );
        let non_human = create_branch(
            "agent or service",
            reference::<NonHumanId>(),
            reference::<HumanId>(),
            true,
        );
        OneOfBuilder::new()
            .description(Some(
                "Body of `POST /v1/identities`: a human, or an agent or service with the active \
                 human who owns it.",
            ))
            .item(human)
            .item(non_human)
            .examples([json!({
                "id": "agent:support-bot",
                "owner": "human:alice@example.com",
                "environment": "prod",
                "attributes": {"team": "support"}
            })])
            .into()
    }
}

impl ToSchema for CreateIdentity {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for (name, schema) in [
            (NonHumanId::name(), NonHumanId::schema()),
            (HumanId::name(), HumanId::schema()),
            (Environment::name(), Environment::schema()),
            (Attributes::name(), Attributes::schema()),
        ] {
            schemas.push((name.into_owned(), schema));
        }
    }
}

fn count(description: &str, minimum: u64, maximum: u64) -> RefOr<Schema> {
    // INVARIANT: usize is 64 bits on every target the server is built for.
    let maximum = usize::try_from(maximum).unwrap_or(usize::MAX);
    let minimum = usize::try_from(minimum).unwrap_or(usize::MAX);
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(minimum))
        .maximum(Some(maximum))
        .description(Some(description))
        .into()
}

/// `GET /v1/audit` takes `after` and `limit` to page forward, or `tail`
/// alone. OpenAPI parameters cannot exclude each other, so the query is one
/// exploded form object (each property is its own query parameter) whose
/// schema says so.
impl IntoParams for ListAudit {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let max = u64::from(AUDIT_MAX_LIMIT);
        let page = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("page"))
            .property(
                "after",
                count(
                    "return records with a sequence number above this (default 0)",
                    0,
                    u64::MAX,
                ),
            )
            .property(
                "limit",
                count(
                    &format!("page size (default {AUDIT_DEFAULT_LIMIT})"),
                    1,
                    max,
                ),
            )
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
        let tail = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("tail"))
            .property("tail", count("the last N records", 1, max))
            .required("tail")
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
        let schema = OneOfBuilder::new()
            .schema_type(Type::Object)
            .item(page)
            .item(tail);
        vec![
            ParameterBuilder::new()
                .name("range")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .style(Some(ParameterStyle::Form))
                .explode(Some(true))
                .description(Some(
                    "`after` and/or `limit` to page forward, or `tail` alone for the last N \
                     records; each is its own query parameter (`?after=10&limit=50`, `?tail=5`)",
                ))
                .schema(Some(schema))
                .build(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use handoff_core::page::MAX_CURSOR_LEN;
    use proptest::prelude::*;
    use regex::Regex;

    /// The pattern as JSON Schema reads it (ECMA-262: `$` is the end of the
    /// text; Rust's regex agrees for every construct used here).
    fn matches(pattern: &str, s: &str) -> bool {
        Regex::new(pattern).unwrap().is_match(s)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn word_lists_name_every_variant() {
        // A new variant breaks these matches: list it in the core's `ALL` too.
        let kind = |k: Kind| match k {
            Kind::Human => 0,
            Kind::Agent => 1,
            Kind::Service => 2,
        };
        assert_eq!(Kind::ALL.map(kind), [0, 1, 2]);
        let status = |s: Status| match s {
            Status::Active => 0,
            Status::Suspended => 1,
            Status::Disabled => 2,
            Status::Decommissioned => 3,
        };
        assert_eq!(Status::ALL.map(status), [0, 1, 2, 3]);
        let role = |r: Role| match r {
            Role::Admin => 0,
            Role::Auditor => 1,
            Role::Pdp => 2,
        };
        assert_eq!(Role::ALL.map(role), [0, 1, 2]);
    }

    #[test]
    fn patterns_are_spelled_from_the_constants() {
        assert_eq!(
            id_pattern(&Kind::ALL),
            "^(human|agent|service):[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"
        );
        assert_eq!(
            id_pattern(&[Kind::Human]),
            "^human:[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"
        );
        assert_eq!(record_id_pattern("cred_"), "^cred_[0-9a-f]{16}$");
        assert_eq!(record_id_pattern("tok_"), "^tok_[0-9a-f]{16}$");
        assert_eq!(environment_pattern(), "^[a-z0-9_-]{1,32}$");
    }

    #[test]
    fn boundary_ids_agree_with_the_parser() {
        let longest = format!("agent:{}", "a".repeat(MAX_NAME_LEN));
        let too_long = format!("agent:{}", "a".repeat(MAX_NAME_LEN + 1));
        let pattern = id_pattern(&Kind::ALL);
        for s in [
            "human:alice@example.com",
            "service:a.b_c-d+e",
            longest.as_str(),
            too_long.as_str(),
            "human:",
            "human:.a",
            "human:a\n",
            "Human:a",
            "robot:a",
            "human:a:b",
            "human:é",
        ] {
            assert_eq!(
                matches(&pattern, s),
                handoff_core::IdentityId::parse(s).is_ok(),
                "{s:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn identity_patterns_accept_exactly_what_the_parser_accepts(
            s in "((human|agent|service|robot|Human)?:)?[A-Za-z0-9._@+/:é \n-]{0,130}",
        ) {
            let parsed = handoff_core::IdentityId::parse(&s).ok();
            prop_assert_eq!(matches(&id_pattern(&Kind::ALL), &s), parsed.is_some());
            let human = parsed.as_ref().is_some_and(|id| id.kind() == Kind::Human);
            prop_assert_eq!(matches(&id_pattern(&[Kind::Human]), &s), human);
            let non_human = parsed.as_ref().is_some_and(|id| id.kind() != Kind::Human);
            prop_assert_eq!(
                matches(&id_pattern(&[Kind::Agent, Kind::Service]), &s),
                non_human
            );
        }

        #[test]
        fn record_id_patterns_accept_exactly_what_the_parsers_accept(
            s in "(cred_|tok_|CRED_)?[0-9a-fA-Fg+]{0,18}\n?",
        ) {
            prop_assert_eq!(
                matches(&record_id_pattern("cred_"), &s),
                handoff_core::CredentialId::parse(&s).is_ok()
            );
            prop_assert_eq!(
                matches(&record_id_pattern("tok_"), &s),
                handoff_core::AdminTokenId::parse(&s).is_ok()
            );
        }

        #[test]
        fn environment_pattern_accepts_exactly_what_the_parser_accepts(
            s in "[a-z0-9_A-Z .é-]{0,34}\n?",
        ) {
            prop_assert_eq!(
                matches(&environment_pattern(), &s),
                handoff_core::Environment::parse(&s).is_ok()
            );
        }

        #[test]
        fn cursor_pattern_accepts_exactly_what_the_decoder_accepts(
            bytes in proptest::collection::vec(any::<u8>(), 0..12),
            noise in "[0-9a-fA-F+ g]{0,8}",
        ) {
            for s in [hex(&bytes), noise.clone(), format!("{}{noise}", hex(&bytes))] {
                let accepted = matches(&cursor_pattern(), &s) && s.len() <= MAX_CURSOR_LEN;
                prop_assert_eq!(accepted, handoff_core::Cursor::decode(&s).is_ok(), "{:?}", s);
            }
        }

        #[test]
        fn no_control_pattern_refuses_exactly_the_control_characters(
            s in "[\\x00-\\x{a1}\\x{2028}\\x{fffd}\\x{10ffff}]{0,8}",
        ) {
            prop_assert_eq!(
                matches(NO_CONTROL_PATTERN, &s),
                !s.chars().any(char::is_control)
            );
        }
    }

    #[test]
    fn the_longest_cursor_is_accepted_and_one_more_byte_is_not() {
        let longest = "61".repeat(MAX_CURSOR_LEN / 2);
        assert!(matches(&cursor_pattern(), &longest));
        assert!(handoff_core::Cursor::decode(&longest).is_ok());
        assert!(handoff_core::Cursor::decode(&format!("{longest}61")).is_err());
    }
}
