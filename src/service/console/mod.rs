//! The console's shared layout: every page of `warden serve` (reviews, sessions, usage, sign-in,
//! errors) is rendered by [`page`] (or [`render`], which also shows a flash message), so they share
//! one header, one navigation and one style sheet.
//!
//! The header reads "Warden console", the section's name and who is signed in; the navigation
//! (`<nav id="console-nav">`) links Reviews · Sessions · Usage · Revocations with stable ids
//! `nav-reviews`, `nav-sessions`, `nav-usage`, `nav-revocations`, the current section marked `aria-current="page"`. The document
//! title is `<page title> · <section> · Warden console`.
//!
//! Scripts: pages work without JavaScript. One small static script, [`SCRIPT`] at
//! `GET /console.js` (the Content-Security-Policy allows scripts from this origin only, never
//! inline), improves them: it shows `<time datetime="…">` values in the viewer's time zone, and it
//! turns the date filters (`<input type="datetime-local" data-instant>`, read by the browser in the
//! viewer's zone) into an ISO 8601 instant with offset before a form is sent. Without it the
//! times read as UTC and a filter's local value is taken as UTC (the page says so).
//!
//! Limits: the layout escapes the title and the signed-in identity; `body` is HTML the caller
//! built and must have escaped itself ([`escape`]).

pub mod cards;
pub mod sessions;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::Approver;
use super::approvals::page::{Flash, Source};
use super::approvals::service::join_or_dash;

/// A section of the console (an entry of the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Approval reviews (`/reviews`).
    Reviews,
    /// The audit trail's sessions (`/sessions`).
    Sessions,
    /// Spend (`/usage`).
    Usage,
    /// The kill switch (`/revocations`).
    Revocations,
}

impl Section {
    /// Every section, in navigation order.
    pub const ALL: [Section; 4] = [Section::Reviews, Section::Sessions, Section::Usage, Section::Revocations];

    /// Its name in the navigation and the title.
    pub fn label(self) -> &'static str {
        match self {
            Self::Reviews => "Reviews",
            Self::Sessions => "Sessions",
            Self::Usage => "Usage",
            Self::Revocations => "Revocations",
        }
    }

    /// Its page.
    pub fn path(self) -> &'static str {
        match self {
            Self::Reviews => "/reviews",
            Self::Sessions => "/sessions",
            Self::Usage => "/usage",
            Self::Revocations => "/revocations",
        }
    }

    /// The id of its navigation link (`nav-reviews`, …).
    fn nav_id(self) -> &'static str {
        match self {
            Self::Reviews => "nav-reviews",
            Self::Sessions => "nav-sessions",
            Self::Usage => "nav-usage",
            Self::Revocations => "nav-revocations",
        }
    }
}

/// The console's style sheet (inline: the Content-Security-Policy allows inline styles only).
pub const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}\
body>header{display:flex;flex-wrap:wrap;gap:.4em 1.4em;justify-content:space-between;align-items:center;padding:.6em 1.2em;background:#1d2433;color:#fff}\
body>header a{color:#fff;text-decoration:none}body>header h1{font-size:1.15em;margin:0}body>header h1 .section{font-weight:normal;opacity:.75}body>header form{display:inline}\
body>header button{background:transparent;color:#fff;border-color:#8a93a5;margin:0 0 0 .6em}\
nav#console-nav{display:flex;gap:.3em;flex:1}nav#console-nav a{padding:.25em .8em;border-radius:4px;color:#cfd6e4}\
nav#console-nav a:hover{background:#2d3750;color:#fff}nav#console-nav a[aria-current=page]{background:#3b4a6b;color:#fff;font-weight:600}\
main{max-width:1040px;margin:1em auto;padding:0 1em;overflow-wrap:anywhere}\
.review,.card{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:.8em 1.1em;margin:0 0 1em}\
.review h3{margin:.1em 0 .5em;font-size:1.05em}\
dl{display:grid;grid-template-columns:10em 1fr;gap:.15em .8em;margin:.4em 0}dt{color:#5a6375}dd{margin:0}\
pre{white-space:pre-wrap;word-break:break-word;overflow-wrap:anywhere;margin:.3em 0}\
pre.excerpt{background:#f2f4f7;border-left:3px solid #9aa4b5;padding:.5em .7em;max-height:18em;overflow:auto}\
textarea{width:100%;box-sizing:border-box;font:inherit}\
button,.button{font:inherit;padding:.35em 1.1em;margin:.4em .4em 0 0;border-radius:4px;border:1px solid #888;cursor:pointer;background:#fff;color:inherit;text-decoration:none;display:inline-block}\
button[name=approve]{background:#1f7a3a;color:#fff;border-color:#1f7a3a}button[name=deny]{background:#b42318;color:#fff;border-color:#b42318}\
.flash{padding:.6em 1em;border-radius:4px}.flash-ok{background:#e3f4e8;border:1px solid #1f7a3a}.flash-error{background:#fde8e7;border:1px solid #b42318}\
.status{font-size:.8em;padding:.1em .5em;border-radius:3px;background:#e7eaf0}.status-approved{background:#e3f4e8}.status-denied,.status-refused{background:#fde8e7}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.35em .5em;border-bottom:1px solid #e3e6eb;vertical-align:top}\
form.filters{display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:end;margin:0 0 1em}form.filters label{display:flex;flex-direction:column;font-size:.85em;color:#5a6375}\
form.filters input,form.filters select{font:inherit;padding:.2em .3em}\
.pager{display:flex;gap:1em;align-items:center;margin:1em 0}\
.turn header{padding:0 0 .4em;border-bottom:1px solid #e3e6eb;margin-bottom:.5em;font-size:.9em}.turn .ordinal{font-weight:600;margin-right:.4em}\
.turn .meta{color:#5a6375}.turn .usage{color:#5a6375;font-size:.85em;margin-top:.5em}\
.msg{margin:.4em 0;padding:.4em .7em;border-radius:4px}.msg-user{background:#eef3fb}.msg-assistant{background:#f3f6f1}\
.msg .who{font-size:.8em;font-weight:600;color:#5a6375;text-transform:uppercase;letter-spacing:.03em}\
details{margin:.3em 0;border:1px solid #e3e6eb;border-radius:4px;padding:.2em .6em;background:#fafbfc}details>summary{cursor:pointer;color:#3b4a6b}\
details.reminder>summary{color:#8a93a5;font-size:.85em}\
.refusal{background:#fde8e7;border-left:4px solid #b42318;padding:.4em .7em;margin:.4em 0}\
.approval{background:#fff6e0;border-left:4px solid #b7791f;padding:.4em .7em;margin:.4em 0}\
.masked{background:#fff1c2;border-left:4px solid #b7791f;padding:.2em .7em;margin:.4em 0}\
.note{color:#5a6375}code{background:#eef0f4;padding:0 .25em;border-radius:3px}";

/// The console's script, served at `GET /console.js` (see the module comment).
pub const SCRIPT: &str = r#"// Warden console: times in the viewer's time zone; date filters sent as ISO 8601 instants.
(function () {
  "use strict";
  function pad(n) { return String(n).padStart(2, "0"); }
  function localValue(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d.getTime())) { t.title = t.getAttribute("datetime"); t.textContent = d.toLocaleString(); }
  });
  document.querySelectorAll("input[data-instant]").forEach(function (input) {
    var ms = Number(input.getAttribute("data-instant"));
    if (input.getAttribute("data-instant") !== "" && !isNaN(ms)) { input.value = localValue(new Date(ms)); }
    if (input.form) {
      input.form.addEventListener("submit", function () {
        var hidden = input.form.querySelector('input[type=hidden][name="' + input.name + '"]');
        if (!hidden) {
          hidden = document.createElement("input");
          hidden.type = "hidden";
          hidden.name = input.name;
          input.form.appendChild(hidden);
        }
        var d = input.value ? new Date(input.value) : null;
        hidden.value = d && !isNaN(d.getTime()) ? d.toISOString() : "";
        input.removeAttribute("name");
      });
    }
  });
  // The usage page drawn without the viewer's offset: send it, once.
  var usage = document.getElementById("usage-window");
  if (usage && usage.elements.tz && usage.elements.tz.value === "") {
    usage.elements.tz.value = String(-new Date().getTimezoneOffset());
    usage.submit();
  }
  var zone = document.getElementById("time-zone");
  if (zone) {
    try { zone.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "your time zone"; } catch (e) { zone.textContent = "your time zone"; }
  }
})();
"#;

/// The Content-Security-Policy of every page: nothing but inline styles, this origin's script and
/// forms posting here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole console page: `title` (escaped here), the navigation with `section` current (none for
/// sign-in and error pages), the signed-in identity, and `body` (HTML, escaped by its builder).
pub(super) fn page(title: &str, section: Option<Section>, who: Option<(&Approver, Source)>, body: &str) -> String {
    render(title, section, who, None, body)
}

/// [`page`] with a flash message above the body.
pub(super) fn render(
    title: &str,
    section: Option<Section>,
    who: Option<(&Approver, Source)>,
    flash: Option<&Flash>,
    body: &str,
) -> String {
    let whoami = match who {
        Some((approver, source)) => {
            let sign_out = if source == Source::Cookie {
                r#" <form method="post" action="/logout"><button type="submit" id="logout" name="logout">Sign out</button></form>"#
            } else {
                ""
            };
            format!(
                r#"<div id="whoami">Signed in as <b>{}</b> <span class="note">({})</span>{sign_out}</div>"#,
                escape(&approver.subject),
                escape(&join_or_dash(&approver.groups))
            )
        }
        None => String::new(),
    };
    let nav = navigation(section);
    let flash = flash.map(Flash::html).unwrap_or_default();
    let (heading, full_title) = match section {
        Some(section) => (
            format!(r#"Warden console <span class="section">· {}</span>"#, section.label()),
            format!("{} · {} · Warden console", escape(title), section.label()),
        ),
        None => ("Warden console".to_string(), format!("{} · Warden console", escape(title))),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{full_title}</title><style>{STYLE}</style><script src=\"/console.js\" defer></script></head>\
         <body><header><h1><a href=\"/reviews\">{heading}</a></h1>{nav}{whoami}</header>\
         <main>{flash}{body}</main></body></html>\n"
    )
}

/// The navigation bar, `current` marked.
fn navigation(current: Option<Section>) -> String {
    let links: Vec<String> = Section::ALL
        .iter()
        .map(|&section| {
            let current = if Some(section) == current { r#" aria-current="page""# } else { "" };
            format!(r#"<a href="{}" id="{}"{current}>{}</a>"#, section.path(), section.nav_id(), section.label())
        })
        .collect();
    format!(r#"<nav id="console-nav" aria-label="Console">{}</nav>"#, links.join(""))
}

/// `<time>` of `seconds` since the epoch, written in UTC (`2027-01-15T08:00:00Z`); the console's
/// script shows it in the viewer's time zone.
pub(super) fn time_element(seconds: i64) -> String {
    let iso = super::util::format_utc(seconds);
    format!(r#"<time datetime="{iso}">{iso}</time>"#)
}

/// A page response: `html` with the console's security headers.
pub(super) fn respond(status: StatusCode, html: String) -> Response {
    super::approvals::page::Page { status, html, cookies: Vec::new() }.into_response()
}

/// `GET /console.js`.
pub async fn script() -> Response {
    let mut response = (StatusCode::OK, SCRIPT).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approver(subject: &str) -> Approver {
        Approver {
            issuer: "https://idp".into(),
            subject: subject.into(),
            groups: vec!["<b>g</b>".into()],
            expires_at: 0,
        }
    }

    #[test]
    fn every_page_has_the_navigation_with_its_section_current() {
        let html = page("Sessions", Some(Section::Sessions), None, "<p>x</p>");
        assert!(html.contains(r#"<a href="/sessions" id="nav-sessions" aria-current="page">Sessions</a>"#), "{html}");
        assert!(html.contains(r#"<a href="/reviews" id="nav-reviews">Reviews</a>"#), "{html}");
        assert!(html.contains(r#"<a href="/usage" id="nav-usage">Usage</a>"#), "{html}");
        assert!(html.contains("<title>Sessions · Sessions · Warden console</title>"), "{html}");
        assert!(!html.contains("approvals</title>"));
    }

    #[test]
    fn the_title_and_the_signed_in_identity_are_escaped() {
        let who = approver("<script>alert(1)</script>");
        let html = page("<img src=x onerror=alert(2)>", None, Some((&who, Source::Cookie)), "");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<b>g</b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains(r#"id="logout""#), "a cookie session can sign out");
        let by_header = page("t", None, Some((&who, Source::Header)), "");
        assert!(!by_header.contains(r#"id="logout""#), "a header-authenticated viewer has no cookie to forget");
    }

    #[test]
    fn times_are_machine_readable_for_the_viewers_zone() {
        assert_eq!(time_element(1_800_000_000), r#"<time datetime="2027-01-15T08:00:00Z">2027-01-15T08:00:00Z</time>"#);
    }

    #[test]
    fn everything_shown_is_html_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
    }

    #[test]
    fn scripts_run_only_from_this_origin_never_inline() {
        let scripts = CONTENT_SECURITY_POLICY.split(';').map(str::trim).find(|d| d.starts_with("script-src"));
        assert_eq!(scripts, Some("script-src 'self'"));
        let html = page("t", Some(Section::Reviews), None, "");
        assert_eq!(html.matches("<script").count(), 1);
        assert!(html.contains(r#"<script src="/console.js" defer></script>"#));
    }
}
