//! Shell command lines as the rules see them: a small parser for the commands Claude proposes to
//! Bash-like tools.
//!
//! [`parse`] reads a command line the way a POSIX shell (bash) would split it into commands, and
//! returns every simple command it contains — wherever it sits: in lists (`;`, `&&`, `||`, `&`,
//! newlines), pipelines (`|`, `|&`), subshells `( … )`, groups `{ …; }`, command substitutions
//! `$( … )` and backticks, process substitutions `<( … )`, scripts run by `bash -c` / `sh -c` /
//! `eval`, and commands run by `find -exec`. Words are quote-removed (`'…'`, `"…"`, `$'…'` with
//! its escapes, backslashes), so `r''m`, `"rm"`, `\rm` and `$'\x72m'` all name `rm`.
//!
//! Each simple command is reduced to what it runs: environment prefixes (`A=b cmd`) are dropped,
//! wrappers are seen through (`sudo`, `doas`, `env`, `nice`, `ionice`, `timeout`, `xargs`,
//! `command`, `builtin`, `exec`, `nohup`, `time`, `stdbuf`, `setsid`, `chrt`, `unbuffer`, `busybox`,
//! `watch`, `flock`, with their options; `su -c` scripts are parsed like `sh -c`), and the
//! program is its base name (`/usr/bin/rm` → `rm`). A program word computed at run time (`$CMD`,
//! `$(…)`, globs, brace expansion) has no name ([`SimpleCommand::program`] is `None`): rules
//! cannot know what runs.
//!
//! The parser also notes whether the line runs some command's output as code
//! ([`CommandLine::pipes_to_shell`]): an interpreter (`sh`, `bash`, `zsh`, `python`, `perl`, `node`,
//! …) fed by a pipe (`curl … | sudo bash`), a process substitution (`bash <(curl …)`, `source
//! <(…)`, `sh < <(…)`), or a script built by a substitution (`sh -c "$(curl …)"`, `eval "$(…)"`,
//! `bash <<< "$(…)"`).
//!
//! Limits, by design: no variable, glob or alias expansion (the rules see words as written,
//! `$HOME` stays `$HOME` and is flagged [`Word::dynamic`]); `case`, function definitions and
//! arithmetic are not understood (a line using them may fail to parse, and an unparsed line is
//! treated conservatively by the rules); here-documents are skipped (an unquoted one's
//! substitutions are still parsed). Work is bounded: at most [`MAX_COMMAND_BYTES`] bytes, nesting
//! at most [`MAX_DEPTH`] deep, at most [`MAX_COMMANDS`] simple commands; beyond that [`parse`]
//! fails. It never panics.

use std::fmt;

/// The longest command line parsed, in bytes.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// The deepest nesting of subshells, groups, substitutions and `sh -c` scripts.
pub const MAX_DEPTH: usize = 12;
/// The most simple commands a line may hold.
pub const MAX_COMMANDS: usize = 1024;

/// Why a command line could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Longer than [`MAX_COMMAND_BYTES`].
    TooLong,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// More than [`MAX_COMMANDS`] simple commands.
    TooManyCommands,
    /// A quote, substitution or here-document that is never closed.
    Unterminated,
    /// Something the shell would refuse (a stray `)`, an operator with no command).
    Syntax,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLong => "the command is longer than 64 KiB",
            Self::TooDeep => "the command is nested too deep",
            Self::TooManyCommands => "the command holds too many commands",
            Self::Unterminated => "a quote, substitution or here-document is not closed",
            Self::Syntax => "the command is not valid shell syntax",
        })
    }
}

/// One word of a command after quote removal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word {
    /// The word's text: quotes removed and escapes resolved; expansions (`$VAR`, `${…}`,
    /// `$(…)`, backticks) kept as written.
    pub text: String,
    /// Whether the shell would change the word at run time: an expansion or substitution, an
    /// unquoted glob character (`*`, `?`, `[`) or brace expansion.
    pub dynamic: bool,
    /// Whether the word holds an expansion (`$VAR`, `${…}`, `$((…))`) or a substitution: its
    /// value is only known at run time (globs alone do not count).
    pub expanded: bool,
    /// Whether the word holds a command substitution (`$(…)` or backticks) outside single quotes.
    pub substituted: bool,
    /// Whether the word is a process substitution (`<(…)` or `>(…)`).
    pub process: bool,
}

/// A redirection of a simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The target (a file, or a file descriptor number for `>&2`).
    pub target: Word,
    /// Whether it writes (`>`, `>>`, `>|`, `&>`, `<>`, `n>`) rather than reads.
    pub writes: bool,
    /// Whether the target is a file descriptor (`>&2`, `<&0`, `>&-`) rather than a file.
    pub descriptor: bool,
}

/// One simple command, reduced to what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    /// The program's base name once wrappers are seen through; empty when nothing runs (only
    /// redirections or assignments); `None` when the program word is computed at run time.
    pub program: Option<String>,
    /// The arguments after the program (wrappers and their options removed).
    pub args: Vec<Word>,
    /// The command's redirections (the wrappers' included).
    pub redirects: Vec<Redirect>,
}

/// Everything a command line runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    /// Every simple command, in source order of their ends, at every nesting level.
    pub commands: Vec<SimpleCommand>,
    /// Whether some command's output is run as code (see the module header).
    pub pipes_to_shell: bool,
}

/// Parses a command line (see the module header).
pub fn parse(source: &str) -> Result<CommandLine, ParseError> {
    if source.len() > MAX_COMMAND_BYTES {
        return Err(ParseError::TooLong);
    }
    let mut line = CommandLine::default();
    parse_script(source.as_bytes(), 0, &mut line)?;
    Ok(line)
}

/// Parses a whole script (a command line, or the script of `sh -c`) into `line`.
fn parse_script(source: &[u8], depth: usize, line: &mut CommandLine) -> Result<(), ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    let mut parser = Parser { src: source, pos: 0, line, heredocs: Vec::new() };
    let end = parser.list(depth, None)?;
    if end != End::Eof {
        return Err(ParseError::Syntax);
    }
    if !parser.heredocs.is_empty() {
        return Err(ParseError::Unterminated);
    }
    Ok(())
}

/// What stopped a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Eof,
    /// `)` closing a subshell or substitution.
    Paren,
    /// `}` closing a group.
    Brace,
}

/// A here-document whose body starts after the current line.
struct Heredoc {
    delimiter: Vec<u8>,
    strip_tabs: bool,
    /// Unquoted delimiter: the body is expanded (its substitutions run).
    expands: bool,
}

/// A pipeline stage as the parser assembles it.
enum Stage {
    /// A simple command: its index in [`CommandLine::commands`], when it ran something.
    Simple(Option<usize>),
    /// A subshell or group: whether any command inside is an interpreter.
    Group { interpreter: bool },
}

struct Parser<'a, 'l> {
    src: &'a [u8],
    pos: usize,
    line: &'l mut CommandLine,
    heredocs: Vec<Heredoc>,
}

fn is_meta(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>')
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.src.get(self.pos.saturating_add(offset)).copied()
    }

    fn starts_with(&self, text: &[u8]) -> bool {
        self.src.get(self.pos..).is_some_and(|rest| rest.starts_with(text))
    }

    /// Skips blanks, line continuations and comments (not newlines).
    fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => self.pos += 1,
                Some(b'\\') if self.peek_at(1) == Some(b'\n') => self.pos += 2,
                Some(b'#') => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    /// Consumes a newline, then the bodies of the here-documents opened on its line.
    fn newline(&mut self, depth: usize) -> Result<(), ParseError> {
        self.pos += 1;
        let pending = std::mem::take(&mut self.heredocs);
        for heredoc in pending {
            self.heredoc_body(&heredoc, depth)?;
        }
        Ok(())
    }

    fn heredoc_body(&mut self, heredoc: &Heredoc, depth: usize) -> Result<(), ParseError> {
        loop {
            let start = self.pos;
            if start >= self.src.len() {
                return Err(ParseError::Unterminated);
            }
            let end = self.src.get(start..).and_then(|rest| rest.iter().position(|b| *b == b'\n'));
            let end = end.map_or(self.src.len(), |n| start + n);
            let text = self.src.get(start..end).unwrap_or_default();
            let text = if heredoc.strip_tabs {
                let tabs = text.iter().take_while(|b| **b == b'\t').count();
                text.get(tabs..).unwrap_or_default()
            } else {
                text
            };
            self.pos = end.saturating_add(1).min(self.src.len());
            if text == heredoc.delimiter.as_slice()
                || (heredoc.strip_tabs && text.strip_suffix(b"\r") == Some(&heredoc.delimiter))
            {
                return Ok(());
            }
            if heredoc.expands && text.iter().any(|b| matches!(b, b'$' | b'`')) {
                // The body expands like a double-quoted string: parse its substitutions.
                let mut body = Parser { src: text, pos: 0, line: &mut *self.line, heredocs: Vec::new() };
                let mut word = WordBuilder::default();
                body.double_quoted_body(&mut word, depth, None)?;
            }
        }
    }

    /// Parses a list up to the end of input or the closing `)` / `}` for which `close` asks.
    fn list(&mut self, depth: usize, close: Option<End>) -> Result<End, ParseError> {
        loop {
            self.skip_blanks();
            match self.peek() {
                None => {
                    return if close.is_none() { Ok(End::Eof) } else { Err(ParseError::Unterminated) };
                }
                Some(b'\n') => {
                    self.newline(depth)?;
                    continue;
                }
                Some(b';' | b'&') => {
                    // Separators after a command are consumed by `and_or`; here only a stray one
                    // (`;;` of `case`, a leading `;`).
                    return Err(ParseError::Syntax);
                }
                Some(b')') => {
                    self.pos += 1;
                    return if close == Some(End::Paren) { Ok(End::Paren) } else { Err(ParseError::Syntax) };
                }
                _ => {}
            }
            if self.at_word("}") {
                self.pos += 1;
                return if close == Some(End::Brace) { Ok(End::Brace) } else { Err(ParseError::Syntax) };
            }
            self.and_or(depth)?;
            self.skip_blanks();
            match self.peek() {
                Some(b';') if self.peek_at(1) != Some(b';') => self.pos += 1,
                Some(b'&') if self.peek_at(1) != Some(b'&') => self.pos += 1,
                _ => {}
            }
        }
    }

    /// Whether the next word is exactly `word` (a reserved word such as `}`).
    fn at_word(&self, word: &str) -> bool {
        self.starts_with(word.as_bytes()) && self.peek_at(word.len()).is_none_or(is_meta)
    }

    fn and_or(&mut self, depth: usize) -> Result<(), ParseError> {
        loop {
            self.pipeline(depth)?;
            self.skip_blanks();
            if self.starts_with(b"&&") || self.starts_with(b"||") {
                self.pos += 2;
                self.skip_newlines(depth)?;
                continue;
            }
            return Ok(());
        }
    }

    fn skip_newlines(&mut self, depth: usize) -> Result<(), ParseError> {
        loop {
            self.skip_blanks();
            if self.peek() == Some(b'\n') {
                self.newline(depth)?;
            } else {
                return Ok(());
            }
        }
    }

    fn pipeline(&mut self, depth: usize) -> Result<(), ParseError> {
        let mut stages = Vec::new();
        loop {
            self.skip_blanks();
            if self.at_word("!") {
                self.pos += 1;
                continue;
            }
            stages.push(self.command(depth)?);
            self.skip_blanks();
            if self.peek() == Some(b'|') && self.peek_at(1) != Some(b'|') {
                self.pos += if self.peek_at(1) == Some(b'&') { 2 } else { 1 };
                self.skip_newlines(depth)?;
                continue;
            }
            break;
        }
        // A stage after the first reads the output of the one before it.
        let fed_interpreter = stages.iter().skip(1).any(|stage| match stage {
            Stage::Simple(Some(index)) => {
                self.line.commands.get(*index).is_some_and(|c| c.program.as_deref().is_some_and(is_interpreter))
            }
            Stage::Simple(None) => false,
            Stage::Group { interpreter } => *interpreter,
        });
        if fed_interpreter {
            self.line.pipes_to_shell = true;
        }
        Ok(())
    }

    fn command(&mut self, depth: usize) -> Result<Stage, ParseError> {
        self.skip_blanks();
        let compound = if self.peek() == Some(b'(') {
            self.pos += 1;
            Some(End::Paren)
        } else if self.at_word("{") {
            self.pos += 1;
            Some(End::Brace)
        } else {
            None
        };
        if let Some(close) = compound {
            let depth = depth.saturating_add(1);
            if depth > MAX_DEPTH {
                return Err(ParseError::TooDeep);
            }
            let first = self.line.commands.len();
            self.list(depth, Some(close))?;
            let interpreter = self
                .line
                .commands
                .get(first..)
                .is_some_and(|inner| inner.iter().any(|c| c.program.as_deref().is_some_and(is_interpreter)));
            // Redirections of the group apply to every command inside; they are kept on a
            // command of their own so `writes_to` sees them.
            let mut group = SimpleCommand::default();
            self.redirects_only(depth, &mut group)?;
            if !group.redirects.is_empty() {
                self.push_command(group)?;
            }
            return Ok(Stage::Group { interpreter });
        }
        self.simple(depth)
    }

    /// Redirections after a compound command.
    fn redirects_only(&mut self, depth: usize, into: &mut SimpleCommand) -> Result<(), ParseError> {
        loop {
            self.skip_blanks();
            match self.redirect(depth)? {
                Some(redirect) => into.redirects.push(redirect),
                None => return Ok(()),
            }
        }
    }

    fn push_command(&mut self, command: SimpleCommand) -> Result<usize, ParseError> {
        if self.line.commands.len() >= MAX_COMMANDS {
            return Err(ParseError::TooManyCommands);
        }
        self.line.commands.push(command);
        Ok(self.line.commands.len().saturating_sub(1))
    }

    fn simple(&mut self, depth: usize) -> Result<Stage, ParseError> {
        let mut words = Vec::new();
        let mut redirects = Vec::new();
        let mut reserved = false;
        loop {
            self.skip_blanks();
            if let Some(redirect) = self.redirect(depth)? {
                redirects.push(redirect);
                continue;
            }
            match self.peek() {
                None | Some(b'\n' | b';' | b'&' | b'|' | b')') => break,
                Some(b'(') => return Err(ParseError::Syntax),
                Some(b'}') if words.is_empty() && self.at_word("}") => break,
                _ => {}
            }
            let word = self.word(depth)?;
            if words.is_empty() && is_reserved(&word) {
                // `if`, `then`, `do`, `while` …: the command follows the reserved word.
                reserved = true;
                continue;
            }
            words.push(word);
        }
        if words.is_empty() && redirects.is_empty() {
            return if reserved { Ok(Stage::Simple(None)) } else { Err(ParseError::Syntax) };
        }
        self.resolve(words, redirects, depth).map(Stage::Simple)
    }

    /// A redirection operator and its target, if one starts here.
    fn redirect(&mut self, depth: usize) -> Result<Option<Redirect>, ParseError> {
        let start = self.pos;
        let digits = self.src.get(start..).map_or(0, |rest| rest.iter().take_while(|b| b.is_ascii_digit()).count());
        let at = start.saturating_add(digits);
        let op = self.src.get(at..).unwrap_or_default();
        let (length, writes, heredoc) = if op.starts_with(b"<<<") {
            (3, false, false)
        } else if op.starts_with(b"<<-") {
            (3, false, true)
        } else if op.starts_with(b"<<") {
            (2, false, true)
        } else if op.starts_with(b"&>>") && digits == 0 {
            (3, true, false)
        } else if (op.starts_with(b"&>") && digits == 0)
            || op.starts_with(b">>")
            || op.starts_with(b">|")
            || op.starts_with(b"<>")
        {
            (2, true, false)
        } else if op.starts_with(b">&") || op.starts_with(b"<&") {
            (2, op.starts_with(b">"), false)
        } else if op.starts_with(b"<(") || op.starts_with(b">(") {
            // A process substitution is a word, not a redirection.
            return Ok(None);
        } else if op.starts_with(b">") {
            (1, true, false)
        } else if op.starts_with(b"<") {
            (1, false, false)
        } else {
            return Ok(None);
        };
        let duplicating = op.starts_with(b">&") || op.starts_with(b"<&");
        self.pos = at.saturating_add(length);
        self.skip_blanks();
        if heredoc {
            let word = self.word(depth)?;
            let quoted =
                self.src.get(start..self.pos).is_some_and(|t| t.iter().any(|b| matches!(b, b'\'' | b'"' | b'\\')));
            self.heredocs.push(Heredoc {
                delimiter: word.text.into_bytes(),
                strip_tabs: op.starts_with(b"<<-"),
                expands: !quoted,
            });
            return Ok(Some(Redirect { target: Word::default(), writes: false, descriptor: true }));
        }
        if self.peek().is_none_or(|b| is_meta(b) && !matches!(b, b'<' | b'>')) {
            return Err(ParseError::Syntax);
        }
        let target = self.word(depth)?;
        let descriptor = duplicating
            && (target.text == "-" || (!target.text.is_empty() && target.text.bytes().all(|b| b.is_ascii_digit())));
        Ok(Some(Redirect { target, writes, descriptor }))
    }

    /// One word (the caller skipped blanks and checked a word starts here).
    fn word(&mut self, depth: usize) -> Result<Word, ParseError> {
        let mut word = WordBuilder::default();
        if self.starts_with(b"<(") || self.starts_with(b">(") {
            self.pos += 2;
            self.nested(depth)?;
            word.word.process = true;
            word.word.dynamic = true;
            word.word.expanded = true;
            word.push_str("<(…)");
            return Ok(word.finish());
        }
        while let Some(b) = self.peek() {
            match b {
                _ if is_meta(b) => break,
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'\n') => self.pos += 1,
                        Some(c) => {
                            word.push(c);
                            self.pos += 1;
                        }
                        None => {}
                    }
                }
                b'\'' => {
                    self.pos += 1;
                    let Some(length) = self.src.get(self.pos..).and_then(|r| r.iter().position(|c| *c == b'\'')) else {
                        return Err(ParseError::Unterminated);
                    };
                    word.extend(self.src.get(self.pos..self.pos + length).unwrap_or_default());
                    self.pos += length + 1;
                }
                b'"' => {
                    self.pos += 1;
                    self.double_quoted_body(&mut word, depth, Some(b'"'))?;
                }
                b'$' if self.peek_at(1) == Some(b'\'') => {
                    self.pos += 2;
                    self.ansi_c(&mut word)?;
                }
                b'$' if self.peek_at(1) == Some(b'"') => {
                    self.pos += 2;
                    self.double_quoted_body(&mut word, depth, Some(b'"'))?;
                }
                b'$' | b'`' => self.expansion(&mut word, depth)?,
                b'*' | b'?' | b'[' | b']' | b'{' | b'}' | b',' => {
                    // Unquoted glob or brace-expansion characters: the shell may rewrite the word
                    // (decided in `finish`: `[` alone, as in `[ -f x ]`, is a plain word).
                    word.unquoted_specials.push(b);
                    word.push(b);
                    self.pos += 1;
                }
                _ => {
                    word.push(b);
                    self.pos += 1;
                }
            }
        }
        Ok(word.finish())
    }

    /// A `$…` expansion or a backtick substitution at the cursor, appended as written.
    fn expansion(&mut self, word: &mut WordBuilder, depth: usize) -> Result<(), ParseError> {
        let start = self.pos;
        let (was_dynamic, was_expanded) = (word.word.dynamic, word.word.expanded);
        word.word.dynamic = true;
        word.word.expanded = true;
        if self.peek() == Some(b'`') {
            self.pos += 1;
            let mut script = Vec::new();
            loop {
                match self.peek() {
                    None => return Err(ParseError::Unterminated),
                    Some(b'`') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b'\\') if matches!(self.peek_at(1), Some(b'`' | b'\\' | b'$')) => {
                        script.extend(self.peek_at(1));
                        self.pos += 2;
                    }
                    Some(c) => {
                        script.push(c);
                        self.pos += 1;
                    }
                }
            }
            word.word.substituted = true;
            nested_script(&script, depth, self.line)?;
        } else if self.starts_with(b"$((") {
            // Arithmetic: skip to the matching `))`; it runs nothing we can name.
            self.pos += 3;
            let mut open = 2usize;
            while open > 0 {
                match self.peek() {
                    None => return Err(ParseError::Unterminated),
                    Some(b'(') => open += 1,
                    Some(b')') => open -= 1,
                    Some(b'`') => return Err(ParseError::Syntax),
                    Some(b'$') if self.peek_at(1) == Some(b'(') && self.peek_at(2) != Some(b'(') => {
                        return Err(ParseError::Syntax)
                    }
                    _ => {}
                }
                self.pos += 1;
            }
        } else if self.starts_with(b"$(") {
            self.pos += 2;
            word.word.substituted = true;
            self.nested(depth)?;
        } else if self.starts_with(b"${") {
            self.pos += 2;
            let mut open = 1usize;
            while open > 0 {
                match self.peek() {
                    None => return Err(ParseError::Unterminated),
                    Some(b'{') => open += 1,
                    Some(b'}') => open -= 1,
                    // A substitution inside a parameter expansion (`${x:-$(cmd)}`) is not read.
                    Some(b'`') => return Err(ParseError::Syntax),
                    Some(b'$') if self.peek_at(1) == Some(b'(') => return Err(ParseError::Syntax),
                    Some(b'\\') => self.pos += 1,
                    _ => {}
                }
                self.pos += 1;
            }
        } else {
            self.pos += 1;
            match self.peek() {
                Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                    while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                        self.pos += 1;
                    }
                }
                Some(c) if c.is_ascii_digit() || matches!(c, b'@' | b'*' | b'#' | b'?' | b'-' | b'$' | b'!') => {
                    self.pos += 1;
                }
                // A lone `$` is a literal dollar.
                _ => (word.word.dynamic, word.word.expanded) = (was_dynamic, was_expanded),
            }
        }
        word.extend(self.src.get(start..self.pos).unwrap_or_default());
        Ok(())
    }

    /// A nested list closed by `)` (`$(…)`, `<(…)`), parsed one level deeper.
    fn nested(&mut self, depth: usize) -> Result<(), ParseError> {
        let depth = depth.saturating_add(1);
        if depth > MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        let outer = std::mem::take(&mut self.heredocs);
        let end = self.list(depth, Some(End::Paren));
        if !self.heredocs.is_empty() && end.is_ok() {
            return Err(ParseError::Unterminated);
        }
        self.heredocs = outer;
        end.map(|_| ())
    }

    /// The inside of `"…"` (or an expanding here-document body when `close` is `None`).
    fn double_quoted_body(
        &mut self,
        word: &mut WordBuilder,
        depth: usize,
        close: Option<u8>,
    ) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                None if close.is_none() => return Ok(()),
                None => return Err(ParseError::Unterminated),
                Some(b) if Some(b) == close => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    match self.peek_at(1) {
                        Some(b'\n') => {}
                        Some(c @ (b'$' | b'`' | b'"' | b'\\')) => word.push(c),
                        Some(c) => {
                            word.push(b'\\');
                            word.push(c);
                        }
                        None => word.push(b'\\'),
                    }
                    self.pos = self.pos.saturating_add(2).min(self.src.len());
                }
                Some(b'$' | b'`') => self.expansion(word, depth)?,
                Some(c) => {
                    word.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// The inside of `$'…'`: C escapes.
    fn ansi_c(&mut self, word: &mut WordBuilder) -> Result<(), ParseError> {
        loop {
            let Some(b) = self.peek() else { return Err(ParseError::Unterminated) };
            self.pos += 1;
            match b {
                b'\'' => return Ok(()),
                b'\\' => {
                    let Some(e) = self.peek() else { return Err(ParseError::Unterminated) };
                    self.pos += 1;
                    match e {
                        b'n' => word.push(b'\n'),
                        b't' => word.push(b'\t'),
                        b'r' => word.push(b'\r'),
                        b'a' => word.push(7),
                        b'b' => word.push(8),
                        b'e' | b'E' => word.push(27),
                        b'f' => word.push(12),
                        b'v' => word.push(11),
                        b'x' => {
                            let value = self.hex_digits(2);
                            word.push_char(value);
                        }
                        b'u' => {
                            let value = self.hex_digits(4);
                            word.push_char(value);
                        }
                        b'U' => {
                            let value = self.hex_digits(8);
                            word.push_char(value);
                        }
                        b'0'..=b'7' => {
                            let mut value = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        value = value * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            word.push_char(Some(value & 0xff));
                        }
                        b'c' => {
                            // `\cX`: a control character.
                            if let Some(x) = self.peek() {
                                self.pos += 1;
                                word.push(x & 0x1f);
                            }
                        }
                        other => word.push(other),
                    }
                }
                other => word.push(other),
            }
        }
    }

    fn hex_digits(&mut self, most: usize) -> Option<u32> {
        let mut value: Option<u32> = None;
        for _ in 0..most {
            let Some(digit) = self.peek().and_then(|d| (d as char).to_digit(16)) else { break };
            value = Some(value.unwrap_or(0).saturating_mul(16).saturating_add(digit));
            self.pos += 1;
        }
        value
    }

    /// Reduces a simple command's words to what it runs and records it (and what it runs in
    /// turn: `sh -c` scripts, `find -exec` commands). Returns its index when it was recorded.
    fn resolve(
        &mut self,
        words: Vec<Word>,
        redirects: Vec<Redirect>,
        depth: usize,
    ) -> Result<Option<usize>, ParseError> {
        let mut rest: &[Word] = &words;
        // Environment prefixes.
        while rest.first().is_some_and(is_assignment) {
            rest = rest.get(1..).unwrap_or_default();
        }
        let mut program = None;
        let mut wrapper = None;
        while let Some((first, after)) = rest.split_first() {
            if first.dynamic {
                break;
            }
            if first.text.contains(|c: char| c.is_ascii_whitespace()) {
                // A program word with spaces (`env -S 'rm -rf /'`, `"rm -rf"`): what runs is
                // unknown; read it as a script as well.
                nested_script(first.text.as_bytes(), depth, self.line)?;
                break;
            }
            let name = base_name(&first.text);
            match skip_wrapper(name, after) {
                Some(next) => {
                    wrapper = Some(name.to_string());
                    rest = next;
                    while rest.first().is_some_and(is_assignment) {
                        rest = rest.get(1..).unwrap_or_default();
                    }
                }
                None => {
                    program = Some(name.to_string());
                    rest = after;
                    break;
                }
            }
        }
        if words.is_empty() {
            // Only redirections (`> file`): no program runs.
            return self
                .push_command(SimpleCommand { program: Some(String::new()), args: Vec::new(), redirects })
                .map(Some);
        }
        let (program, args) = match program {
            Some(name) => (Some(name), rest.to_vec()),
            // A wrapper with nothing to run (`sudo -l`) runs itself; bare assignments run none.
            None if rest.is_empty() => (Some(wrapper.unwrap_or_default()), Vec::new()),
            None => (None, rest.get(1..).unwrap_or_default().to_vec()),
        };
        let command = SimpleCommand { program, args, redirects };
        self.consequences(&command, depth)?;
        self.push_command(command).map(Some)
    }

    /// What a command runs in turn, and whether it runs generated code.
    fn consequences(&mut self, command: &SimpleCommand, depth: usize) -> Result<(), ParseError> {
        let Some(program) = command.program.as_deref() else { return Ok(()) };
        let interpreter = is_interpreter(program);
        if interpreter || matches!(program, "source" | "." | "eval") {
            let fed = command.args.iter().any(|a| a.process)
                || command.redirects.iter().any(|r| !r.writes && (r.target.process || r.target.substituted));
            if fed {
                self.line.pipes_to_shell = true;
            }
        }
        if program == "eval" {
            if command.args.iter().any(|a| a.substituted) {
                self.line.pipes_to_shell = true;
            }
            let script: Vec<&str> = command.args.iter().map(|a| a.text.as_str()).collect();
            nested_script(script.join(" ").as_bytes(), depth, self.line)?;
        } else if is_shell(program) || matches!(program, "su" | "runuser") {
            let script = if is_shell(program) { shell_script(&command.args) } else { su_command(&command.args) };
            if let Some(script) = script {
                if script.substituted {
                    self.line.pipes_to_shell = true;
                }
                nested_script(script.text.as_bytes(), depth, self.line)?;
            }
        } else if program == "find" {
            // `{}` stands for each file found under the starting points (`.` by default).
            let starts: Vec<&Word> = command.args.iter().take_while(|w| !w.text.starts_with(['-', '(', '!'])).collect();
            let dot = Word { text: ".".into(), ..Word::default() };
            let starts = if starts.is_empty() { vec![&dot] } else { starts };
            let mut args = command.args.iter();
            while let Some(arg) = args.next() {
                if matches!(arg.text.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                    let inner: Vec<Word> = args
                        .by_ref()
                        .take_while(|w| !matches!(w.text.as_str(), ";" | "+"))
                        .flat_map(|w| {
                            if w.text.contains("{}") {
                                starts
                                    .iter()
                                    .map(|start| Word { text: w.text.replace("{}", &start.text), ..(*start).clone() })
                                    .collect()
                            } else {
                                vec![w.clone()]
                            }
                        })
                        .collect();
                    if !inner.is_empty() {
                        let depth = depth.saturating_add(1);
                        if depth > MAX_DEPTH {
                            return Err(ParseError::TooDeep);
                        }
                        self.resolve(inner, Vec::new(), depth)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Parses a script one level deeper into `line` (`sh -c`, `eval`, backticks).
fn nested_script(script: &[u8], depth: usize, line: &mut CommandLine) -> Result<(), ParseError> {
    parse_script(script, depth.saturating_add(1), line)
}

#[derive(Default)]
struct WordBuilder {
    bytes: Vec<u8>,
    word: Word,
    /// The unquoted `*?[]{},` characters, in order.
    unquoted_specials: Vec<u8>,
}

impl WordBuilder {
    fn push(&mut self, b: u8) {
        self.bytes.push(b);
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn push_str(&mut self, text: &str) {
        self.bytes.extend_from_slice(text.as_bytes());
    }

    /// A code point from an escape (`\xHH`, `\uHHHH`); bytes below 0x80 as themselves.
    fn push_char(&mut self, value: Option<u32>) {
        match value {
            Some(v) if v < 0x80 => self.bytes.push(v as u8),
            Some(v) => {
                let c = char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut buffer = [0u8; 4];
                self.bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
            None => {}
        }
    }

    fn finish(self) -> Word {
        let specials = &self.unquoted_specials;
        let after = |open: u8, close: u8| {
            specials.iter().position(|b| *b == open).is_some_and(|at| specials.iter().skip(at).any(|b| *b == close))
        };
        // `*` and `?` always glob; `[…]` is a bracket expression; `{a,b}` a brace expansion.
        let glob = specials.iter().any(|b| matches!(b, b'*' | b'?'))
            || after(b'[', b']')
            || (after(b'{', b'}') && (specials.contains(&b',') || self.bytes.windows(2).any(|w| w == b"..")));
        let word = Word { dynamic: self.word.dynamic || glob, ..self.word };
        Word { text: String::from_utf8_lossy(&self.bytes).into_owned(), ..word }
    }
}

/// `NAME=value` (an environment prefix).
fn is_assignment(word: &Word) -> bool {
    match word.text.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        None => false,
    }
}

fn is_reserved(word: &Word) -> bool {
    !word.dynamic
        && matches!(
            word.text.as_str(),
            "if" | "then" | "else" | "elif" | "fi" | "do" | "done" | "while" | "until" | "!"
        )
}

/// The last path component of a program word (`/usr/bin/rm` → `rm`).
fn base_name(text: &str) -> &str {
    text.rsplit('/').next().unwrap_or(text)
}

/// Whether a program is a POSIX-like shell (runs `-c SCRIPT`).
pub fn is_shell(program: &str) -> bool {
    matches!(program, "sh" | "bash" | "zsh" | "dash" | "ksh" | "mksh" | "ash" | "fish" | "csh" | "tcsh")
}

/// Whether a program runs code it reads (a shell or a script interpreter, any version suffix:
/// `python3.12`).
pub fn is_interpreter(program: &str) -> bool {
    if is_shell(program) {
        return true;
    }
    let stem = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        stem,
        "python"
            | "pypy"
            | "perl"
            | "ruby"
            | "node"
            | "nodejs"
            | "php"
            | "lua"
            | "luajit"
            | "deno"
            | "bun"
            | "pwsh"
            | "powershell"
            | "tclsh"
            | "osascript"
            | "Rscript"
            | "irb"
            | "jshell"
            | "groovy"
    )
}

/// The script word of `sh -c SCRIPT` (the first operand after an option cluster holding `c`).
fn shell_script(args: &[Word]) -> Option<Word> {
    let mut has_c = false;
    for arg in args {
        let text = arg.text.as_str();
        if text == "--" {
            continue;
        }
        if let Some(flags) = text.strip_prefix('-').filter(|f| !f.starts_with('-') && !f.is_empty()) {
            if flags.contains('c') {
                has_c = true;
            }
            continue;
        }
        if text.starts_with("--") || text.starts_with('+') {
            continue;
        }
        return has_c.then(|| arg.clone());
    }
    None
}

/// The command of `su [-l] [USER] -c COMMAND` (also `--command COMMAND`, `--command=COMMAND`).
fn su_command(args: &[Word]) -> Option<Word> {
    let mut words = args.iter();
    while let Some(arg) = words.next() {
        if arg.text == "-c" || arg.text == "--command" {
            return words.next().cloned();
        }
        if let Some(script) = arg.text.strip_prefix("--command=") {
            return Some(Word { text: script.to_string(), ..arg.clone() });
        }
    }
    None
}

/// A wrapper's options that take a value (short letters, long names) and how many operands it
/// takes before the command it runs.
struct Wrapper {
    name: &'static str,
    short_values: &'static str,
    long_values: &'static [&'static str],
    operands: usize,
}

const WRAPPERS: &[Wrapper] = &[
    Wrapper {
        name: "sudo",
        short_values: "ugpCDrtUT",
        long_values: &[
            "user",
            "group",
            "prompt",
            "close-from",
            "host",
            "chdir",
            "role",
            "type",
            "other-user",
            "command-timeout",
        ],
        operands: 0,
    },
    Wrapper { name: "doas", short_values: "uC", long_values: &[], operands: 0 },
    Wrapper { name: "env", short_values: "uC", long_values: &["unset", "chdir"], operands: 0 },
    Wrapper { name: "nice", short_values: "n", long_values: &["adjustment"], operands: 0 },
    Wrapper { name: "ionice", short_values: "cnp", long_values: &["class", "classdata"], operands: 0 },
    Wrapper { name: "timeout", short_values: "sk", long_values: &["signal", "kill-after"], operands: 1 },
    Wrapper {
        name: "xargs",
        short_values: "IEadLnPs",
        long_values: &[
            "arg-file",
            "delimiter",
            "eof",
            "replace",
            "max-lines",
            "max-args",
            "max-procs",
            "max-chars",
            "process-slot-var",
        ],
        operands: 0,
    },
    Wrapper { name: "command", short_values: "", long_values: &[], operands: 0 },
    Wrapper { name: "builtin", short_values: "", long_values: &[], operands: 0 },
    Wrapper { name: "exec", short_values: "a", long_values: &[], operands: 0 },
    Wrapper { name: "nohup", short_values: "", long_values: &[], operands: 0 },
    Wrapper { name: "time", short_values: "fo", long_values: &["format", "output"], operands: 0 },
    Wrapper { name: "stdbuf", short_values: "ioe", long_values: &["input", "output", "error"], operands: 0 },
    Wrapper { name: "setsid", short_values: "", long_values: &[], operands: 0 },
    Wrapper { name: "chrt", short_values: "", long_values: &[], operands: 1 },
    Wrapper { name: "unbuffer", short_values: "", long_values: &[], operands: 0 },
    Wrapper { name: "busybox", short_values: "", long_values: &[], operands: 0 },
    Wrapper { name: "watch", short_values: "n", long_values: &["interval"], operands: 0 },
    Wrapper {
        name: "flock",
        short_values: "wEc",
        long_values: &["timeout", "conflict-exit-code", "command"],
        operands: 1,
    },
];

/// If `name` is a wrapper, the words from the command it runs on (options and operands skipped);
/// `None` when it is not one. `command -v` / `-V` only looks a name up, and runs nothing.
fn skip_wrapper<'w>(name: &str, args: &'w [Word]) -> Option<&'w [Word]> {
    let wrapper = WRAPPERS.iter().find(|w| w.name == name)?;
    let mut rest = args;
    let mut operands = wrapper.operands;
    while let Some((arg, after)) = rest.split_first() {
        let text = arg.text.as_str();
        if text == "--" {
            rest = after;
            break;
        }
        if name == "command" && (text == "-v" || text == "-V") {
            return None;
        }
        if let Some(long) = text.strip_prefix("--") {
            rest = after;
            if !long.contains('=') && wrapper.long_values.contains(&long) {
                rest = rest.get(1..).unwrap_or_default();
            }
            continue;
        }
        if let Some(flags) = text.strip_prefix('-').filter(|f| !f.is_empty()) {
            rest = after;
            // `-n5`: the value is attached; `-n 5`: it is the next word.
            if let Some((i, _)) = flags.char_indices().find(|(_, c)| wrapper.short_values.contains(*c)) {
                if i + 1 == flags.len() {
                    rest = rest.get(1..).unwrap_or_default();
                }
            }
            continue;
        }
        if operands > 0 {
            operands -= 1;
            rest = after;
            continue;
        }
        break;
    }
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs(source: &str) -> Vec<String> {
        let line = parse(source).unwrap_or_else(|e| panic!("{source:?}: {e}"));
        line.commands.iter().map(|c| c.program.clone().unwrap_or_else(|| "?".into())).collect()
    }

    fn args(source: &str) -> Vec<Vec<String>> {
        let line = parse(source).unwrap_or_else(|e| panic!("{source:?}: {e}"));
        line.commands.iter().map(|c| c.args.iter().map(|a| a.text.clone()).collect()).collect()
    }

    #[test]
    fn quotes_and_escapes_are_removed_from_program_names() {
        for source in [
            "rm -rf x",
            "r''m -rf x",
            "\"rm\" -rf x",
            "\\rm -rf x",
            "$'\\x72m' -rf x",
            "$'\\162m' -rf x",
            "'r'\"m\" -rf x",
            "/usr/bin/rm -rf x",
            "./rm -rf x",
        ] {
            assert_eq!(programs(source), vec!["rm"], "{source}");
            assert_eq!(args(source), vec![vec!["-rf", "x"]], "{source}");
        }
    }

    #[test]
    fn lists_pipelines_and_groups_are_all_seen() {
        assert_eq!(programs("ls; rm a && echo b || cat c & wc\nhead"), vec!["ls", "rm", "echo", "cat", "wc", "head"]);
        assert_eq!(programs("(cd /tmp && rm x) | { grep y; tail; }"), vec!["cd", "rm", "grep", "tail"]);
        assert_eq!(programs("echo $(rm -rf /) `id` \"$(whoami)\""), vec!["rm", "id", "whoami", "echo"]);
        assert_eq!(programs("diff <(ls a) >(wc)"), vec!["ls", "wc", "diff"]);
        assert_eq!(programs("if true; then rm x; fi"), vec!["true", "rm"]);
        assert_eq!(programs("[ -f a ] && [[ -d b ]] && test -e c, || echo {x}"), vec!["[", "[[", "test", "echo"]);
        assert_eq!(programs("for f in *.o; do rm \"$f\"; done"), vec!["for", "rm"]);
    }

    #[test]
    fn wrappers_and_environment_prefixes_are_seen_through() {
        for source in [
            "sudo rm -rf /",
            "sudo -u root rm -rf /",
            "sudo -- rm -rf /",
            "env A=1 B=2 rm -rf /",
            "A=1 rm -rf /",
            "nice -n 10 rm -rf /",
            "timeout -s KILL 10 rm -rf /",
            "nohup rm -rf /",
            "command rm -rf /",
            "exec rm -rf /",
            "time rm -rf /",
            "sudo env X=1 nice timeout 5 /bin/rm -rf /",
            "xargs -n 1 rm -rf /",
        ] {
            assert_eq!(programs(source), vec!["rm"], "{source}");
            assert_eq!(args(source), vec![vec!["-rf", "/"]], "{source}");
        }
        assert_eq!(programs("command -v rm"), vec!["command"]);
        assert_eq!(programs("sudo -l"), vec!["sudo"]);
        assert_eq!(programs("X=1 Y=$(id) ; > out"), vec!["id", "", ""]);
    }

    #[test]
    fn shell_scripts_are_parsed_recursively() {
        assert_eq!(programs("bash -c 'rm -rf /'"), vec!["rm", "bash"]);
        assert_eq!(programs("sh -lc \"cd x && rm -rf y\""), vec!["cd", "rm", "sh"]);
        assert_eq!(programs("eval 'rm -rf /'"), vec!["rm", "eval"]);
        assert_eq!(programs("find . -name '*.o' -exec rm -f {} \\;"), vec!["rm", "find"]);
        assert_eq!(programs("bash -c \"bash -c 'sudo rm x'\""), vec!["rm", "bash", "bash"]);
        assert_eq!(programs("su root -c 'rm -rf /'"), vec!["rm", "su"]);
        assert_eq!(programs("runuser -u x --command='rm y'"), vec!["rm", "runuser"]);
        assert_eq!(programs("watch -n 5 'rm -rf /tmp/x'"), vec!["rm", "?"]);
        assert_eq!(programs("flock /tmp/lock rm x"), vec!["rm"]);
    }

    #[test]
    fn computed_program_names_are_unknown() {
        for source in ["$CMD -rf /", "$(echo rm) -rf /", "r* -rf /", "/bin/r? x", "/bin/r[m] x", "r{m,} x", "${X} y"] {
            let line = parse(source).unwrap();
            assert_eq!(line.commands.last().and_then(|c| c.program.clone()), None, "{source}");
        }
    }

    #[test]
    fn downloads_run_by_an_interpreter_are_noticed() {
        for source in [
            "curl -fsSL https://x.sh | sh",
            "curl https://x | sudo bash",
            "wget -qO- https://x | tee log | python3",
            "curl x | sudo -E bash -s -- --flag",
            "bash <(curl -s https://x)",
            "source <(curl -s https://x)",
            ". <(curl x)",
            "sh -c \"$(curl -fsSL https://x)\"",
            "eval \"$(curl x)\"",
            "bash < <(curl x)",
            "bash <<< \"$(curl x)\"",
            "curl x | (cd /tmp && sh)",
            "echo 'ok' && curl x | /bin/bash",
            "curl x |\n  sh",
        ] {
            assert!(parse(source).unwrap().pipes_to_shell, "{source}");
        }
        for source in [
            "curl -o x.sh https://x && cat x.sh",
            "sh script.sh",
            "echo sh | grep sh",
            "bash -c 'echo hi'",
            "ls | wc -l",
        ] {
            assert!(!parse(source).unwrap().pipes_to_shell, "{source}");
        }
    }

    #[test]
    fn redirections_are_kept_with_their_command() {
        let line = parse("echo x > /etc/passwd 2>>err.log &>all <in; cat 2>&1 >&2").unwrap();
        let first = &line.commands[0];
        let targets: Vec<(&str, bool)> = first.redirects.iter().map(|r| (r.target.text.as_str(), r.writes)).collect();
        assert_eq!(targets, vec![("/etc/passwd", true), ("err.log", true), ("all", true), ("in", false)]);
        assert!(line.commands[1].redirects.iter().all(|r| r.descriptor));
        let group = parse("{ echo a; } > ~/.bashrc").unwrap();
        assert!(group.commands.iter().any(|c| c.redirects.iter().any(|r| r.target.text == "~/.bashrc" && r.writes)));
    }

    #[test]
    fn here_documents_are_skipped_but_their_substitutions_are_read() {
        let commit = "git commit -m \"$(cat <<'EOF'\nrm -rf / in a message\nEOF\n)\" && git push";
        assert_eq!(programs(commit), vec!["cat", "git", "git"]);
        let expanding = "cat <<EOF > x\nhello $(rm -rf /)\nEOF\necho done";
        assert_eq!(programs(expanding), vec!["cat", "rm", "echo"]);
        assert_eq!(parse("cat <<EOF\nnever closed"), Err(ParseError::Unterminated));
    }

    #[test]
    fn malformed_and_oversized_lines_fail() {
        for (source, error) in [
            ("echo 'open", ParseError::Unterminated),
            ("echo \"open", ParseError::Unterminated),
            ("echo $(open", ParseError::Unterminated),
            ("echo `open", ParseError::Unterminated),
            ("(echo x", ParseError::Unterminated),
            ("echo x)", ParseError::Syntax),
            ("| ls", ParseError::Syntax),
            ("ls &&", ParseError::Syntax),
        ] {
            assert_eq!(parse(source), Err(error), "{source}");
        }
        assert_eq!(parse(&"x".repeat(MAX_COMMAND_BYTES + 1)), Err(ParseError::TooLong));
        let deep = format!("{}ls{}", "$(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&deep), Err(ParseError::TooDeep));
        let nested_sh = (0..5).fold("rm x".to_string(), |inner, _| format!("sh -c {}", shell_quote(&inner)));
        assert_eq!(programs(&nested_sh), vec!["rm", "sh", "sh", "sh", "sh", "sh"]);
        let deep_groups = format!("{}ls{}", "( ".repeat(MAX_DEPTH + 1), " )".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&deep_groups), Err(ParseError::TooDeep));
        assert_eq!(parse(&"ls;".repeat(MAX_COMMANDS + 1)), Err(ParseError::TooManyCommands));
    }

    fn shell_quote(text: &str) -> String {
        format!("'{}'", text.replace('\'', "'\\''"))
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "[ -~\\n]{0,80}") {
            let _ = parse(&text);
        }

        #[test]
        fn shell_metacharacter_soup_never_panics(text in "[a$'\"`\\\\(){};&|<>!*\\n -]{0,40}") {
            let _ = parse(&text);
        }
    }
}
