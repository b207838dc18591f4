//! MCP URL patterns (`roles.<name>.mcp_servers`), matched part by part.
//!
//! A pattern is written like a URL with the glob wildcards users know — `https://*.corp.example/**`,
//! `https://mcp.example.com/sse`, `https://**` — but it is compiled into one matcher per part and
//! matched against the URL as [`super::url`] parsed it, never against the URL's text. A wildcard
//! in the host can therefore only ever match a host: `https://*.corp.example/**` matches
//! `https://a.b.corp.example/x` and never `https://evil.com?.corp.example/x` (whose host is
//! `evil.com`).
//!
//! The parts:
//! - **scheme**: `http` or `https`, exact.
//! - **host**: a glob over the URL's normal host (lower case; wildcards may span dots, a host has
//!   no `/`), or an exact host: a DNS name, a canonical IPv4 address or a bracketed IPv6 address,
//!   all in the normal form URLs are brought to (the pattern's host is lower-cased).
//! - **port**: written as `:N` (that port), `:*` (any port) or not at all (the scheme's default
//!   port only).
//! - **path**: a glob over the URL's request target — its normal path and, when it has one, `?`
//!   and its query. Without a path the pattern means `/` only. So `…/sse` matches exactly the path
//!   `/sse` without a query, `…/sse*` also `/sse?session=1`, and `…/**` every path and query.
//!
//! `scheme://**` alone allows every URL of that scheme: any host, any port, any path.
//!
//! A pattern that is not such a URL is a policy error naming the field: userinfo, a fragment,
//! whitespace, a bad port, a dot segment, a malformed escape — the same rules URLs are held to.

use super::glob::Glob;
use super::url::{self, Scheme, Url};
use std::fmt;

/// Which hosts a pattern allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this normal host.
    Exact(String),
    /// Hosts this glob matches.
    Glob(Glob),
}

/// Which ports a pattern allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    /// The scheme's default port.
    Default,
    /// This port.
    Exact(u16),
    /// Any port.
    Any,
}

/// One compiled MCP URL pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlGlob {
    source: String,
    scheme: Scheme,
    host: HostPattern,
    port: PortPattern,
    target: Glob,
}

impl fmt::Debug for UrlGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UrlGlob({:?})", self.source)
    }
}

impl UrlGlob {
    /// Compiles a pattern, or says why it is not one.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let invalid = |why: &dyn fmt::Display| format!("invalid MCP URL pattern {pattern:?}: {why}");
        let (scheme, authority, rest) = url::split_checked(pattern, false).map_err(|e| invalid(&e))?;
        if authority == "**" && rest.is_empty() {
            return Ok(Self {
                source: pattern.to_string(),
                scheme,
                host: HostPattern::Glob(Glob::parse("**").map_err(|e| invalid(&e.to_string()))?),
                port: PortPattern::Any,
                target: Glob::parse("**").map_err(|e| invalid(&e.to_string()))?,
            });
        }
        let (host, port) = url::authority_parts(authority).map_err(|e| invalid(&e))?;
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(port) => PortPattern::Exact(url::parse_port(port).map_err(|e| invalid(&e))?),
        };
        let host = if host.contains(['*', '?']) {
            let host = host.to_ascii_lowercase();
            let plain =
                host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*' | b'?'));
            if !plain || host.ends_with('.') || host.contains("..") || host.starts_with('.') {
                return Err(invalid(
                    &"a host pattern has letters, digits, '-', '_', '.', '*' and '?' in non-empty labels",
                ));
            }
            HostPattern::Glob(Glob::parse(&host).map_err(|e| invalid(&e.to_string()))?)
        } else {
            HostPattern::Exact(url::normal_host(host).map_err(|e| invalid(&e))?)
        };
        let target = url::normal_target(rest, true).map_err(|e| invalid(&e))?;
        let target = Glob::parse(&target).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self { source: pattern.to_string(), scheme, host, port, target })
    }

    /// The pattern as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the parsed URL matches every part of the pattern.
    pub fn matches(&self, url: &Url) -> bool {
        let port = match self.port {
            PortPattern::Default => url.port == url.scheme.default_port(),
            PortPattern::Exact(port) => url.port == port,
            PortPattern::Any => true,
        };
        let host = match &self.host {
            HostPattern::Exact(host) => url.host == *host,
            HostPattern::Glob(glob) => glob.matches(&url.host),
        };
        self.scheme == url.scheme && port && host && self.target.matches(&url.target)
    }
}

/// An ordered list of URL patterns; matches when any member does. Empty matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlGlobSet {
    patterns: Vec<UrlGlob>,
}

impl UrlGlobSet {
    /// A set from compiled patterns.
    pub fn new(patterns: Vec<UrlGlob>) -> Self {
        Self { patterns }
    }

    /// Whether any pattern matches the parsed URL.
    pub fn matches(&self, url: &Url) -> bool {
        self.patterns.iter().any(|p| p.matches(url))
    }

    /// Whether the set is empty (and so allows nothing).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(pattern: &str, url: &str) -> bool {
        let pattern = UrlGlob::parse(pattern).unwrap_or_else(|e| panic!("{e}"));
        url::parse(url).is_ok_and(|url| pattern.matches(&url))
    }

    #[test]
    fn a_subdomain_pattern_matches_only_hosts_under_that_domain() {
        let p = "https://*.corp.example/**";
        for url in [
            "https://mcp.corp.example/sse",
            "https://a.b.corp.example/x/y?z=1",
            "HTTPS://MCP.CORP.EXAMPLE/",
            "https://mcp.corp.example:443/x",
        ] {
            assert!(allows(p, url), "{url}");
        }
        for url in [
            "https://evil.com?.corp.example/x",
            "https://evil.com/.corp.example/x",
            "https://evil.com#.corp.example/x",
            "https://evil.com\\.corp.example/x",
            "https://evil.com@mcp.corp.example/x",
            "https://mcp.corp.example@evil.com/x",
            "https://mcp.corp.example.evil.com/x",
            "https://corp.example/x",
            "https://mcp.corp.example.:443/x",
            "https://mcp.corp.example:8443/x",
            "http://mcp.corp.example/x",
            "https://mcp.corp.example%2f@evil.com/x",
            "https://evil.com%3f.corp.example/x",
            "https://evil\t.corp.example/x",
            "https://xn--evil.com.corp.example.evil/x",
        ] {
            assert!(!allows(p, url), "{url}");
        }
    }

    #[test]
    fn paths_are_matched_after_normalisation() {
        let p = "https://mcp.example.com/public/*";
        assert!(allows(p, "https://mcp.example.com/public/tools"));
        assert!(allows(p, "https://mcp.example.com/%70ublic/tools"));
        assert!(!allows(p, "https://mcp.example.com/public/..%2fadmin"));
        assert!(!allows(p, "https://mcp.example.com/public/%2e%2e/admin"));
        assert!(!allows(p, "https://mcp.example.com/public/../admin"));
        assert!(!allows(p, "https://mcp.example.com/public/a/b"));
        assert!(!allows(p, "https://mcp.example.com/PUBLIC/tools"), "paths are case-sensitive");
        assert!(allows("https://mcp.example.com/a%2Ab", "https://mcp.example.com/a%2ab"));
    }

    #[test]
    fn a_pattern_without_a_path_allows_the_root_only_and_queries_need_a_wildcard() {
        assert!(allows("https://mcp.example.com", "https://mcp.example.com"));
        assert!(allows("https://mcp.example.com", "https://mcp.example.com/"));
        assert!(!allows("https://mcp.example.com", "https://mcp.example.com/x"));
        assert!(allows("https://mcp.example.com/sse", "https://mcp.example.com/sse"));
        assert!(!allows("https://mcp.example.com/sse", "https://mcp.example.com/sse?session=1"));
        assert!(allows("https://mcp.example.com/sse*", "https://mcp.example.com/sse?session=1"));
        assert!(allows("https://mcp.example.com/**", "https://mcp.example.com/a/b?c=/d"));
    }

    #[test]
    fn ports_must_match_the_pattern() {
        assert!(allows("https://mcp.example.com:8443/**", "https://mcp.example.com:8443/x"));
        assert!(!allows("https://mcp.example.com:8443/**", "https://mcp.example.com/x"));
        assert!(allows("https://mcp.example.com:*/**", "https://mcp.example.com:9/x"));
        assert!(allows("https://mcp.example.com:443/**", "https://mcp.example.com/x"));
    }

    #[test]
    fn scheme_wide_patterns_allow_every_url_of_the_scheme_only() {
        assert!(allows("https://**", "https://anything.example:8443/x/y?z"));
        assert!(allows("https://**", "https://[2001:db8::1]/"));
        assert!(!allows("https://**", "http://anything.example/"));
        // Still only URLs the parser accepts.
        assert!(!allows("https://**", "https://user@anything.example/"));
    }

    #[test]
    fn ip_hosts_match_exactly_in_their_normal_form() {
        assert!(allows("http://10.0.0.5:8080/**", "http://10.0.0.5:8080/mcp"));
        assert!(!allows("http://10.0.0.5:8080/**", "http://0x0a.0.0.5:8080/mcp"));
        assert!(!allows("http://10.0.0.5:8080/**", "http://167772165:8080/mcp"));
        assert!(!allows("http://10.0.0.5:8080/**", "http://[::ffff:10.0.0.5]:8080/mcp"));
        assert!(allows("http://[2001:DB8::0001]/**", "http://[2001:db8:0:0:0:0:0:1]/x"));
    }

    #[test]
    fn host_patterns_are_case_insensitive() {
        assert!(allows("https://MCP.Example.com/**", "https://mcp.example.COM/x"));
        assert!(allows("https://*.Corp.Example/**", "https://a.corp.example/x"));
    }

    #[test]
    fn malformed_patterns_are_refused_with_the_reason() {
        for bad in [
            "mcp.example.com/**",
            "ftp://mcp.example.com/**",
            "https://user@mcp.example.com/**",
            "https://mcp.example.com/#x",
            "https://mcp.example.com:0/**",
            "https://mcp.example.com:8x/**",
            "https://mcp.example.com./**",
            "https://*.corp.example./**",
            "https://*..corp.example/**",
            "https://*.corp!.example/**",
            "https://mcp.example.com/a/../b",
            "https://mcp.example.com/a%2fb",
            "https://mcp.example.com/a b",
            "https://0177.0.0.1/**",
            "https:///**",
            "https://mcp.example.com\\x",
            "https://[::ffff:1.2.3.4]/**",
        ] {
            let error = UrlGlob::parse(bad).expect_err(bad);
            assert!(error.starts_with("invalid MCP URL pattern"), "{error}");
        }
    }
}
