//! Shell command lines as the rules see them: a small parser for the commands Claude proposes to
//! Bash-like tools (quotes, escapes, `;`, `&&`, `||`, pipes, subshells, environment prefixes,
//! redirections).
