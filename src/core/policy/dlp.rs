//! Compiles the policy's `dlp` section: the detector set and the profiles roles pick.
//!
//! The detector set is the built-in catalog plus the policy's own detectors (same engine, same
//! rules; ids must be unique). A profile is two action tables, one per direction, indexed like
//! the detectors: for each detector the first rule whose selector matches decides, and a
//! detector no rule selects is off. Two profiles always exist: `default` (unless the policy
//! defines its own) and `off`.
//!
//! The built-in `default` masks credentials in both directions and personal data in responses;
//! personal data in requests is only counted (`audit-only`): users legitimately send their own
//! contact details and customer records to Claude, while Claude should not hand personal data
//! to agents that did not ask for it.

use super::config::{
    ActionConfig, CategoryConfig, CustomDetectorConfig, DlpConfig, ProfileConfig, RuleConfig, ValidatorConfig,
};
use super::glob::Glob;
use super::Checker;
use crate::core::dlp::catalog;
use crate::core::dlp::detector::{Category, DetectorSpec, Trigger, Validator};
use crate::core::dlp::engine::{Action, Engine};

/// Name of the profile roles use unless they name another.
pub const DEFAULT_PROFILE: &str = "default";
/// Name of the profile that scans nothing.
pub const OFF_PROFILE: &str = "off";

/// One profile: what each detector does in each direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Profile name.
    pub name: String,
    /// Actions for request content, by detector index.
    pub request: Vec<Action>,
    /// Actions for response content, by detector index.
    pub response: Vec<Action>,
}

impl Profile {
    /// Whether any detector masks, in either direction (masking needs a key).
    pub fn masks(&self) -> bool {
        self.request.iter().chain(&self.response).any(|a| *a == Action::Mask)
    }
}

/// The compiled `dlp` section.
#[derive(Debug)]
pub struct DlpPolicy {
    /// Every detector, built-in first.
    pub engine: Engine,
    /// Profiles; roles refer to them by index.
    pub profiles: Vec<Profile>,
    /// Credential name keying the masks, when the policy names one.
    pub mask_key_credential: Option<String>,
}

impl DlpPolicy {
    /// The index of the profile named `name`.
    pub fn profile_index(&self, name: &str) -> Option<usize> {
        self.profiles.iter().position(|p| p.name == name)
    }
}

pub(super) fn compile(check: &mut Checker, config: &DlpConfig) -> Option<DlpPolicy> {
    let mut specs = catalog::builtin();
    let builtin_count = specs.len();
    for (i, detector) in config.detectors.iter().enumerate() {
        let path = format!("dlp.detectors[{i}]");
        if let Some(spec) = custom_spec(check, &path, detector) {
            if specs.iter().any(|s| s.id == spec.id) {
                check.error(format!("{path}.id"), format!("detector id {:?} is already taken", spec.id));
            }
            specs.push(spec);
        }
    }
    let engine = match Engine::new(specs) {
        Ok(engine) => engine,
        Err(errors) => {
            for error in errors {
                let index = config.detectors.iter().position(|d| d.id == error.id);
                let path = index.map(|i| format!("dlp.detectors[{i}].regex")).unwrap_or_else(|| "dlp".to_string());
                check.error(path, error.to_string());
            }
            return None;
        }
    };
    let mut profiles = Vec::new();
    if !config.profiles.contains_key(DEFAULT_PROFILE) {
        profiles.push(builtin_default(&engine));
    }
    profiles.push(Profile {
        name: OFF_PROFILE.to_string(),
        request: vec![Action::Off; engine.specs().len()],
        response: vec![Action::Off; engine.specs().len()],
    });
    for (name, profile) in &config.profiles {
        let path = format!("dlp.profiles.{name}");
        if name == OFF_PROFILE {
            check.error(path, "the profile name `off` is reserved (it scans nothing)");
            continue;
        }
        profiles.push(compile_profile(check, &path, name, profile, &engine, builtin_count));
    }
    Some(DlpPolicy { engine, profiles, mask_key_credential: config.mask_key.clone() })
}

fn custom_spec(check: &mut Checker, path: &str, config: &CustomDetectorConfig) -> Option<DetectorSpec> {
    let mut ok = true;
    let id_ok = !config.id.is_empty()
        && config.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !config.id.starts_with('-');
    if !id_ok {
        check.error(format!("{path}.id"), "must be kebab-case: lower-case letters, digits and '-'");
        ok = false;
    }
    if config.keywords.is_empty() || config.keywords.iter().any(|k| k.is_empty()) {
        check.error(format!("{path}.keywords"), "at least one non-empty keyword is required (matches start at one)");
        ok = false;
    }
    if config.max_len == 0 || config.max_len > 65_536 {
        check.error(format!("{path}.max_len"), "must be between 1 and 65536");
        ok = false;
    }
    let validator = match (config.validator, config.min_entropy) {
        (Some(_), Some(_)) => {
            check.error(path.to_string(), "set either `validator` or `min_entropy`, not both");
            ok = false;
            Validator::None
        }
        (Some(ValidatorConfig::Luhn), None) => Validator::Luhn,
        (Some(ValidatorConfig::Iban), None) => Validator::Iban,
        (Some(ValidatorConfig::UsSsn), None) => Validator::UsSsn,
        (None, Some(bits)) if (0.0..=8.0).contains(&bits) => Validator::MinEntropy(bits),
        (None, Some(_)) => {
            check.error(format!("{path}.min_entropy"), "must be between 0 and 8 bits per character");
            ok = false;
            Validator::None
        }
        (None, None) => Validator::None,
    };
    ok.then(|| DetectorSpec {
        id: config.id.clone(),
        category: match config.category {
            CategoryConfig::Credential => Category::Credential,
            CategoryConfig::Pii => Category::Pii,
        },
        description: "defined in the policy".to_string(),
        trigger: Trigger::Prefix(config.keywords.clone()),
        pattern: config.regex.clone(),
        validator,
        max_len: config.max_len,
        priority: 40,
        reveal_trigger: false,
    })
}

fn builtin_default(engine: &Engine) -> Profile {
    let by_category = |credential: Action, pii: Action| -> Vec<Action> {
        engine
            .specs()
            .iter()
            .map(|s| match s.category {
                Category::Credential => credential,
                Category::Pii => pii,
            })
            .collect()
    };
    Profile {
        name: DEFAULT_PROFILE.to_string(),
        request: by_category(Action::Mask, Action::Audit),
        response: by_category(Action::Mask, Action::Mask),
    }
}

fn compile_profile(
    check: &mut Checker,
    path: &str,
    name: &str,
    config: &ProfileConfig,
    engine: &Engine,
    builtin_count: usize,
) -> Profile {
    Profile {
        name: name.to_string(),
        request: compile_rules(check, &format!("{path}.request"), &config.request, engine, builtin_count),
        response: compile_rules(check, &format!("{path}.response"), &config.response, engine, builtin_count),
    }
}

fn compile_rules(
    check: &mut Checker,
    path: &str,
    rules: &[RuleConfig],
    engine: &Engine,
    builtin_count: usize,
) -> Vec<Action> {
    let mut actions: Vec<Option<Action>> = vec![None; engine.specs().len()];
    for (r, rule) in rules.iter().enumerate() {
        let action = match rule.action {
            ActionConfig::Mask => Action::Mask,
            ActionConfig::Block => Action::Block,
            ActionConfig::AuditOnly => Action::Audit,
            ActionConfig::Off => Action::Off,
        };
        if rule.detectors.is_empty() {
            check.error(format!("{path}[{r}].detectors"), "select at least one detector or group");
        }
        for (s, selector) in rule.detectors.iter().enumerate() {
            let selected = select(selector, engine, builtin_count);
            match selected {
                Ok(indices) if indices.is_empty() => {
                    check.error(format!("{path}[{r}].detectors[{s}]"), format!("{selector:?} selects no detector"))
                }
                Ok(indices) => {
                    for index in indices {
                        if let Some(slot @ None) = actions.get_mut(index) {
                            *slot = Some(action);
                        }
                    }
                }
                Err(message) => check.error(format!("{path}[{r}].detectors[{s}]"), message),
            }
        }
    }
    actions.into_iter().map(|a| a.unwrap_or(Action::Off)).collect()
}

/// Detector indices a selector names: a group or an id glob.
fn select(selector: &str, engine: &Engine, builtin_count: usize) -> Result<Vec<usize>, String> {
    let specs = engine.specs().iter().enumerate();
    Ok(match selector {
        "*" => specs.map(|(i, _)| i).collect(),
        "credentials" => specs.filter(|(_, s)| s.category == Category::Credential).map(|(i, _)| i).collect(),
        "pii" => specs.filter(|(_, s)| s.category == Category::Pii).map(|(i, _)| i).collect(),
        "custom" => specs.filter(|(i, _)| *i >= builtin_count).map(|(i, _)| i).collect(),
        glob => {
            let glob = Glob::parse(glob).map_err(|e| e.to_string())?;
            specs.filter(|(_, s)| glob.matches(&s.id)).map(|(i, _)| i).collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::core::policy::Policy;

    fn policy(dlp: &str, role_extra: &str) -> Result<Policy, Vec<String>> {
        let text = format!(
            "version: 1\nidentity: {{}}\ncredentials:\n  main: {{ env: K }}\nroles:\n  dev:\n    credential: main\n    models: ['*']\n{role_extra}\n{dlp}\n"
        );
        Policy::parse(&text).map_err(|e| e.0.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn roles_get_the_builtin_default_profile() {
        let p = policy("", "").unwrap();
        let profile = &p.dlp.profiles[p.roles[0].dlp_profile];
        assert_eq!(profile.name, "default");
        let aws = p.dlp.engine.index_of("aws-access-key").unwrap();
        let email = p.dlp.engine.index_of("email").unwrap();
        use crate::core::dlp::engine::Action;
        assert_eq!((profile.request[aws], profile.response[aws]), (Action::Mask, Action::Mask));
        assert_eq!((profile.request[email], profile.response[email]), (Action::Audit, Action::Mask));
    }

    #[test]
    fn first_rule_wins_and_custom_detectors_join_the_catalog() {
        let dlp = r#"dlp:
  detectors:
    - id: acme-token
      keywords: [acme_]
      regex: 'acme_[a-z0-9]{8}'
  profiles:
    strict:
      request:
        - { detectors: [acme-token, "github-*"], action: block }
        - { detectors: ["*"], action: mask }
      response:
        - { detectors: [custom], action: audit-only }"#;
        let p = policy(dlp, "    dlp: strict").unwrap();
        let profile = &p.dlp.profiles[p.roles[0].dlp_profile];
        use crate::core::dlp::engine::Action;
        let acme = p.dlp.engine.index_of("acme-token").unwrap();
        let github = p.dlp.engine.index_of("github-pat").unwrap();
        let email = p.dlp.engine.index_of("email").unwrap();
        assert_eq!(profile.request[acme], Action::Block);
        assert_eq!(profile.request[github], Action::Block);
        assert_eq!(profile.request[email], Action::Mask);
        assert_eq!(profile.response[acme], Action::Audit);
        assert_eq!(profile.response[email], Action::Off);
    }

    #[test]
    fn dlp_errors_name_their_field() {
        let dlp = r#"dlp:
  mask_key: nope
  detectors:
    - { id: Bad_Id, keywords: [], regex: '(' }
  profiles:
    p:
      request:
        - { detectors: [no-such-detector], action: mask }"#;
        let errors = policy(dlp, "    dlp: missing").unwrap_err();
        let joined = errors.join("\n");
        for expected in [
            "dlp.detectors[0].id: must be kebab-case",
            "dlp.detectors[0].keywords: at least one",
            "dlp.profiles.p.request[0].detectors[0]: \"no-such-detector\" selects no detector",
            "roles.dev.dlp: unknown DLP profile \"missing\"",
            "dlp.mask_key: unknown credential \"nope\"",
        ] {
            assert!(joined.contains(expected), "missing {expected:?} in:\n{joined}");
        }
        let bad_regex = "dlp:\n  detectors:\n    - { id: x, keywords: [x], regex: '(' }";
        let errors = policy(bad_regex, "").unwrap_err().join("\n");
        assert!(errors.contains("dlp.detectors[0].regex: detector x: invalid pattern"), "{errors}");
    }
}
