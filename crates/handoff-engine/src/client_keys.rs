//! Public keys of agents and services for `private_key_jwt` client
//! authentication (RFC 7523 §2.2): register, list, revoke. Only public
//! JWKs are accepted; a key without `kid` is named by its RFC 7638
//! thumbprint.

use crate::{Admin, Engine, EngineError};
use handoff_core::client_key::{MAX_JWK_BYTES, check_kid};
use handoff_core::{ClientKey, IdentityId, Invalid, Kind};
use handoff_store::Write;
use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use serde_json::{Value, json};

/// JWK members that only a private key has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl Engine {
    /// Registers a public key on an agent or service.
    pub async fn add_client_key(
        &self,
        admin: &Admin,
        identity: &IdentityId,
        jwk: Value,
    ) -> Result<ClientKey, EngineError> {
        admin.require_write()?;
        let found = self.identity(identity).await?;
        if found.kind() == Kind::Human {
            return Err(Invalid::new("identity", "only agents and services are clients").into());
        }
        let (kid, text) = public_jwk(jwk)?;
        let key = ClientKey {
            identity: identity.clone(),
            kid: kid.clone(),
            jwk: text,
            created_at: self.clock.now(),
            revoked_at: None,
        };
        let details = json!({ "kid": kid });
        self.submit(
            admin,
            Write::AddClientKey(key.clone()),
            "client_key.add",
            identity.as_str(),
            details,
            &format!("identity \"{identity}\""),
        )
        .await?;
        Ok(key)
    }

    /// Revokes a client key: assertions signed with it stop authenticating.
    pub async fn revoke_client_key(
        &self,
        admin: &Admin,
        identity: &IdentityId,
        kid: &str,
    ) -> Result<(), EngineError> {
        admin.require_write()?;
        check_kid(kid)?;
        let write = Write::RevokeClientKey {
            identity: identity.clone(),
            kid: kid.to_owned(),
            at: self.clock.now(),
        };
        let details = json!({ "kid": kid });
        let what = format!("key \"{kid}\" of \"{identity}\"");
        self.submit(
            admin,
            write,
            "client_key.revoke",
            identity.as_str(),
            details,
            &what,
        )
        .await
        .map(|_| ())
    }

    /// Every key registered on an identity, revoked ones included.
    pub async fn list_client_keys(
        &self,
        identity: &IdentityId,
    ) -> Result<Vec<ClientKey>, EngineError> {
        self.identity(identity).await?;
        Ok(self.store.client_keys(identity).await?)
    }

    /// The unrevoked keys of a client, as a key set for assertion checks.
    pub(crate) async fn client_keys(&self, identity: &IdentityId) -> Result<JwkSet, EngineError> {
        let keys = self
            .store
            .client_keys(identity)
            .await?
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .filter_map(|k| serde_json::from_str::<Jwk>(&k.jwk).ok())
            .collect();
        Ok(JwkSet { keys })
    }
}

/// Checks a JWK is a public signing key and returns its key id and JSON.
fn public_jwk(jwk: Value) -> Result<(String, String), EngineError> {
    let bad = |m: &str| EngineError::from(Invalid::new("jwk", m.to_owned()));
    let Value::Object(map) = &jwk else {
        return Err(bad("the jwk must be a json object"));
    };
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| map.contains_key(**m)) {
        return Err(bad(&format!(
            "the jwk holds the private member \"{member}\"; register the public key only"
        )));
    }
    let text = jwk.to_string();
    if text.len() > MAX_JWK_BYTES {
        return Err(bad("the jwk is larger than 8 KiB"));
    }
    let mut parsed: Jwk =
        serde_json::from_value(jwk).map_err(|e| bad(&format!("not a usable jwk: {e}")))?;
    let kid = match &parsed.common.key_id {
        Some(kid) => kid.clone(),
        None => parsed
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| bad(&format!("cannot compute the key's thumbprint: {e}")))?,
    };
    check_kid(&kid)?;
    parsed.common.key_id = Some(kid.clone());
    crate::trusted::check_key_set(&JwkSet {
        keys: vec![parsed.clone()],
    })
    .map_err(|e| bad(&e.to_string()))?;
    let text = serde_json::to_string(&parsed).map_err(|e| bad(&e.to_string()))?;
    Ok((kid, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_signing_keys_are_accepted() {
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let (kid, text) = public_jwk(ed.clone()).unwrap();
        assert_eq!(kid.len(), 43, "{kid}");
        assert!(text.contains(&kid));
        let mut named = ed.clone();
        named["kid"] = json!("k1");
        assert_eq!(public_jwk(named).unwrap().0, "k1");
        let mut private = ed;
        private["d"] = json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
        assert!(
            public_jwk(private)
                .unwrap_err()
                .to_string()
                .contains("private member")
        );
        assert!(public_jwk(json!({"kty": "oct", "k": "AAAA"})).is_err());
        assert!(public_jwk(json!([1])).is_err());
        assert!(public_jwk(json!({"kty": "RSA"})).is_err());
    }
}
