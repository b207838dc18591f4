//! Wire formats of the proxy-wasm ABI, as pure functions.
//!
//! The host hands maps (headers) to the module as "pairs": a little-endian `u32` count, then a
//! `u32` key length and a `u32` value length per pair, then each key and value followed by a NUL.
//! Property values come back as raw bytes whose meaning depends on the type: strings as UTF-8,
//! numbers as 8-byte little-endian `f64`, maps as pairs of (key, serialized value), lists as
//! pairs whose keys are the serialized items and whose values are empty. Envoy serializes a
//! whole metadata struct that way, so [`decode_claims`] reads every claim `jwt_authn` verified
//! from a single host call.
//!
//! Claims are found by path ([`value_at`]): each step takes the object key that spells the next
//! one or more segments joined by dots, so `kubernetes.io.namespace` finds `namespace` inside
//! the key `kubernetes.io`; when two keys fit one step (`kubernetes` and `kubernetes.io`), the
//! claim is ambiguous and taken as absent. The encoding carries no types: a nested map is told
//! from a string only because printable text has no NUL bytes, so a string claim holding NULs
//! could pass for a map (issuers sign their claims; none we know emits such strings).
//!
//! These decoders never panic on malformed input — the glue calls them on host data — and header
//! values that are not UTF-8 are kept, lossily decoded, rather than dropped or trusted. A value is
//! taken as a string only when it is printable UTF-8; pairs encodings always contain NUL bytes, so
//! the two never mix up.

use crate::core::identity::VerifiedClaims;
use crate::core::policy::IdentityPolicy;

/// The longest claim value read for bindings and job records, in bytes; a longer one is taken as
/// absent (no binding matches it).
pub const MAX_CLAIM_BYTES: usize = 1024;

/// Decodes a pairs-encoded map into borrowed byte slices. `None` when the bytes are not a
/// well-formed encoding.
pub fn decode_raw_pairs(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    let mut pairs = Vec::with_capacity(count.min(1024));
    for n in 0..count {
        let key_len = read_u32(bytes, 4 + n * 8)? as usize;
        let value_len = read_u32(bytes, 8 + n * 8)? as usize;
        let key = bytes.get(data..data.checked_add(key_len)?)?;
        data = data.checked_add(key_len)?.checked_add(1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len)?.checked_add(1)?;
        pairs.push((key, value));
    }
    Some(pairs)
}

/// Decodes a pairs-encoded map of strings (headers). `None` when the bytes are not a
/// well-formed encoding.
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let pairs = decode_raw_pairs(bytes)?;
    Some(
        pairs
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
            .collect(),
    )
}

/// Reads the claims of a verified token from `jwt_authn`'s serialized payload struct: the
/// registered claims, the groups (at the groups claim of the token issuer's provider; a list of
/// strings or one string) and every claim `identity.claims` names (strings only, at most
/// [`MAX_CLAIM_BYTES`]). Claims of an unexpected type are treated as absent (and the identity
/// checks then refuse, or no binding matches).
pub fn decode_claims(payload: &[u8], identity: &IdentityPolicy) -> VerifiedClaims {
    let top = decode_raw_pairs(payload).unwrap_or_default();
    let text = |name: &str| field(&top, name).and_then(decode_text);
    let number = |name: &str| field(&top, name).and_then(decode_number);
    // A claim that is one string or a list of strings.
    let strings = |value: Option<&[u8]>| match value {
        Some(value) => match decode_text(value) {
            Some(single) => vec![single],
            None => decode_raw_pairs(value)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(item, _)| decode_text(item))
                .collect(),
        },
        None => Vec::new(),
    };
    let issuer = text("iss");
    let groups_claim = identity.groups_claim_for(issuer.as_deref().unwrap_or(""));
    let groups = strings(value_at(&top, groups_claim));
    let claims: Vec<Option<String>> = identity
        .claims
        .iter()
        .map(|claim| value_at(&top, &claim.segments).filter(|v| v.len() <= MAX_CLAIM_BYTES).and_then(decode_text))
        .collect();
    let job = identity
        .job_claims
        .iter()
        .zip(&claims)
        .filter_map(|(name, value)| value.as_ref().map(|value| (name.clone(), value.clone())))
        .collect();
    VerifiedClaims {
        subject: text("sub"),
        issuer,
        audiences: strings(field(&top, "aud")),
        expires_at: number("exp"),
        issued_at: number("iat"),
        groups,
        job,
        claims,
        token_id: text("jti"),
    }
}

/// The value at `path` below the decoded map `top` (see the module header for keys with dots).
pub fn value_at<'a>(top: &[(&'a [u8], &'a [u8])], path: &[String]) -> Option<&'a [u8]> {
    let (mut value, mut rest) = step(top, path)?;
    while !rest.is_empty() {
        if is_text(value) {
            return None;
        }
        let map = decode_raw_pairs(value)?;
        (value, rest) = step(&map, rest)?;
    }
    Some(value)
}

/// The value of the one key of `map` that spells the first segments of `path`, and the segments
/// left; `None` when no key or more than one does.
fn step<'a, 'p>(map: &[(&'a [u8], &'a [u8])], path: &'p [String]) -> Option<(&'a [u8], &'p [String])> {
    let mut found: Option<(&'a [u8], usize)> = None;
    for (key, value) in map {
        if let Some(spelled) = segments_spelled(key, path) {
            if found.is_some() {
                return None;
            }
            found = Some((value, spelled));
        }
    }
    let (value, spelled) = found?;
    Some((value, path.get(spelled..)?))
}

/// Whether the bytes are printable text (what [`decode_text`] accepts), without copying them.
fn is_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| !text.is_empty() && !text.chars().any(char::is_control))
}

/// How many leading segments of `path` the object key spells, joined by dots; `None` when it
/// does not spell any.
fn segments_spelled(key: &[u8], path: &[String]) -> Option<usize> {
    let key = std::str::from_utf8(key).ok()?;
    let mut count = 0usize;
    for part in key.split('.') {
        if path.get(count)? != part {
            return None;
        }
        count = count.checked_add(1)?;
    }
    Some(count)
}

/// The value of key `name` in decoded pairs, borrowed from the encoded bytes.
fn field<'a>(map: &[(&'a [u8], &'a [u8])], name: &str) -> Option<&'a [u8]> {
    map.iter().find(|(key, _)| *key == name.as_bytes()).map(|(_, value)| *value)
}

/// Encodes a map as pairs (for local replies).
pub fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size: usize = 4 + pairs.iter().map(|(k, v)| 8 + k.len() + v.len() + 2).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

/// Encodes a property path (segments joined by NUL).
pub fn encode_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

/// A property holding a number (`f64`, 8 bytes little-endian).
pub fn decode_number(bytes: &[u8]) -> Option<f64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    let value = f64::from_le_bytes(array);
    value.is_finite().then_some(value)
}

/// A property holding a printable string (no control characters), e.g. a claim.
pub fn decode_text(bytes: &[u8]) -> Option<String> {
    is_text(bytes).then(|| String::from_utf8_lossy(bytes).into_owned())
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let array: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pairs_round_trip() {
        let pairs = [(":path", "/v1/messages"), ("x-api-key", ""), ("a", "b")];
        let decoded = decode_pairs(&encode_pairs(&pairs)).unwrap();
        let expected: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn non_utf8_header_values_are_kept_lossily() {
        let mut bytes = encode_pairs(&[("x", "ab")]);
        let last = bytes.len() - 2;
        bytes[last] = 0xff;
        assert_eq!(decode_pairs(&bytes).unwrap(), vec![("x".to_string(), "a\u{fffd}".to_string())]);
    }

    #[test]
    fn truncated_encodings_are_rejected() {
        let bytes = encode_pairs(&[("key", "value")]);
        for cut in 1..bytes.len() - 1 {
            assert_eq!(decode_pairs(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn numbers_and_text_decode_strictly() {
        assert_eq!(decode_number(&1_700_000_000f64.to_le_bytes()), Some(1_700_000_000.0));
        assert_eq!(decode_number(b"1700"), None);
        assert_eq!(decode_text(b"alice"), Some("alice".to_string()));
        assert_eq!(decode_text(&[0, 0, 0, 0]), None);
        assert_eq!(decode_text(&[0xff]), None);
    }

    /// `jwt_authn`'s payload struct as Envoy 1.40 serialized it for a token with claims
    /// {sub, exp, n: 7, iss, groups: [eng, ops], nested: {a: [x]}, aud, run_id: "42", iat}.
    const RECORDED_PAYLOAD: &[u8] = &[
        9, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 11, 0, 0, 0, 6,
        0, 0, 0, 30, 0, 0, 0, 6, 0, 0, 0, 30, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0, 6, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 8,
        0, 0, 0, 115, 117, 98, 0, 97, 108, 105, 99, 101, 0, 101, 120, 112, 0, 0, 0, 192, 125, 2, 195, 218, 65, 0, 110,
        0, 0, 0, 0, 0, 0, 0, 28, 64, 0, 105, 115, 115, 0, 119, 97, 114, 100, 101, 110, 45, 116, 101, 115, 116, 0, 103,
        114, 111, 117, 112, 115, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 101, 110, 103, 0, 0,
        111, 112, 115, 0, 0, 0, 110, 101, 115, 116, 101, 100, 0, 1, 0, 0, 0, 1, 0, 0, 0, 15, 0, 0, 0, 97, 0, 1, 0, 0,
        0, 1, 0, 0, 0, 0, 0, 0, 0, 120, 0, 0, 0, 0, 97, 117, 100, 0, 119, 97, 114, 100, 101, 110, 0, 114, 117, 110, 95,
        105, 100, 0, 52, 50, 0, 105, 97, 116, 0, 0, 0, 192, 156, 1, 195, 218, 65, 0,
    ];

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// The identity settings of a policy with this groups claim and these job claims.
    fn identity(groups_claim: &str, job_claims: &[&str]) -> IdentityPolicy {
        let text = format!(
            "version: 1\nidentity: {{ groups_claim: {groups_claim:?}, job_claims: {job_claims:?} }}\n\
             credentials: {{ k: {{ env: K }} }}\nroles: {{ r: {{ credential: k, models: [\"*\"] }} }}\n"
        );
        crate::core::policy::Policy::parse(&text).unwrap().identity
    }

    #[test]
    fn claims_decode_from_the_recorded_payload() {
        let claims = decode_claims(RECORDED_PAYLOAD, &identity("groups", &["run_id", "repository"]));
        assert_eq!(claims.subject.as_deref(), Some("alice"));
        assert_eq!(claims.issuer.as_deref(), Some("warden-test"));
        assert_eq!(claims.audiences, strings(&["warden"]));
        assert_eq!(claims.groups, strings(&["eng", "ops"]));
        assert_eq!(claims.job, vec![("run_id".to_string(), "42".to_string())]);
        let (iat, exp) = (claims.issued_at.unwrap(), claims.expires_at.unwrap());
        assert_eq!(exp - iat, 900.0);
        assert!(iat > 1.7e9, "{iat}");
    }

    #[test]
    fn nested_groups_claims_are_followed() {
        let claims = decode_claims(RECORDED_PAYLOAD, &identity("nested.a", &[]));
        assert_eq!(claims.groups, strings(&["x"]));
        let missing = decode_claims(RECORDED_PAYLOAD, &identity("nested.b", &[]));
        assert!(missing.groups.is_empty());
    }

    #[test]
    fn single_string_groups_claim_is_one_group_and_numbers_are_not_text() {
        let payload = encode_pairs(&[("groups", "eng"), ("sub", "bob")]);
        let claims = decode_claims(&payload, &identity("groups", &[]));
        assert_eq!(claims.groups, strings(&["eng"]));
        let numeric_groups = decode_claims(RECORDED_PAYLOAD, &identity("n", &[]));
        assert!(numeric_groups.groups.is_empty(), "{:?}", numeric_groups.groups);
    }

    #[test]
    fn garbage_payload_has_no_claims() {
        let claims = decode_claims(b"\xff\xff", &identity("groups", &[]));
        assert_eq!(claims, VerifiedClaims { claims: vec![None; 0], ..VerifiedClaims::default() });
    }

    /// A pairs-encoded map as a string (the encoding is valid UTF-8 when its parts are), so maps
    /// nest in `encode_pairs`.
    fn map(pairs: &[(&str, &str)]) -> String {
        String::from_utf8(encode_pairs(pairs)).unwrap()
    }

    #[test]
    fn claims_under_keys_with_dots_are_found_by_dotted_path() {
        let service_account = map(&[("name", "reviewer"), ("uid", "1")]);
        let k8s = map(&[("namespace", "agents"), ("serviceaccount", &service_account)]);
        let payload = encode_pairs(&[("sub", "system:serviceaccount:agents:reviewer"), ("kubernetes.io", &k8s)]);
        let identity =
            identity("groups", &["kubernetes.io.namespace", "kubernetes.io.serviceaccount.name", "kubernetes.io.pod"]);
        let claims = decode_claims(&payload, &identity);
        assert_eq!(claims.claims, vec![Some("agents".into()), Some("reviewer".into()), None]);
        assert_eq!(claims.job.len(), 2);
    }

    #[test]
    fn a_claim_two_keys_could_spell_is_absent() {
        let inner = map(&[("namespace", "agents")]);
        let decoy = map(&[("io", &inner)]);
        let payload = encode_pairs(&[("kubernetes.io", &inner), ("kubernetes", &decoy)]);
        let claims = decode_claims(&payload, &identity("groups", &["kubernetes.io.namespace"]));
        assert_eq!(claims.claims, vec![None]);
    }

    #[test]
    fn hostile_claim_values_are_absent() {
        let long = "a".repeat(MAX_CLAIM_BYTES + 1);
        let list = map(&[("org/app", ""), ("org/other", "")]);
        let payload = encode_pairs(&[("repository", &list), ("ref", &long), ("workflow", "ci\u{7}"), ("actor", "x")]);
        let claims =
            decode_claims(&payload, &identity("groups", &["repository", "ref", "workflow", "actor", "actor.x"]));
        // A list, an over-long value, a control character: absent. Descending into a string: absent.
        assert_eq!(claims.claims, vec![None, None, None, Some("x".into()), None]);
        let numbers = decode_claims(RECORDED_PAYLOAD, &identity("groups", &["n", "exp"]));
        assert_eq!(numbers.claims, vec![None, None]);
    }

    #[test]
    fn groups_come_from_the_claim_of_the_issuers_provider() {
        let text = "version: 1\nidentity:\n  providers:\n    - { name: a, issuer: warden-test, audiences: [w], jwks: { file: j }, groups_claim: nested.a }\n\
                    credentials: { k: { env: K } }\nroles: { r: { credential: k, models: [\"*\"] } }\n";
        let identity = crate::core::policy::Policy::parse(text).unwrap().identity;
        assert_eq!(decode_claims(RECORDED_PAYLOAD, &identity).groups, strings(&["x"]));
        let other_issuer = encode_pairs(&[("iss", "someone-else"), ("groups", "eng")]);
        assert_eq!(decode_claims(&other_issuer, &identity).groups, strings(&["eng"]));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_claims(&bytes, &identity("groups.x", &["a", "b.c"]));
            let _ = decode_pairs(&bytes);
            let _ = decode_number(&bytes);
            let _ = decode_text(&bytes);
        }
    }
}
