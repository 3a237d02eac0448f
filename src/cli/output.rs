//! The one place statebucket writes to the terminal. Data (plans, documents, policies,
//! backend files) goes to stdout, so that it can be piped; messages, warnings, errors,
//! prompts and progress go to stderr.
//!
//! `-q` hides messages (`info`, `note_once`) and progress, never warnings or errors: a warning
//! says something the user must act on. `-v`/`-vv` add logs and hide progress (it would
//! interleave with them). Progress is also hidden when stderr is not a terminal.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Error;
use crate::progress::{Reporter, Silent, Task};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose(u8),
}

#[derive(Debug)]
pub struct Printer {
    verbosity: Verbosity,
    progress: bool,
    /// Notes already shown this run: a note that is the same for every environment (a
    /// plain-HTTP endpoint, say) is shown once.
    shown: Mutex<BTreeSet<String>>,
}

impl Printer {
    pub fn new(verbosity: Verbosity, no_progress: bool) -> Printer {
        Printer {
            verbosity,
            progress: verbosity == Verbosity::Normal && !no_progress && io::stderr().is_terminal(),
            shown: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Results: stdout, always.
    pub fn data(&self, text: &str) {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// A message for people; hidden by `-q`.
    pub fn info(&self, text: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.stderr(text);
        }
    }

    /// A message shown at most once per run; hidden by `-q`.
    pub fn note_once(&self, text: &str) {
        let first = self
            .shown
            .lock()
            .expect("printer lock")
            .insert(text.to_owned());
        if first {
            self.info(&format!("note: {text}"));
        }
    }

    /// Something the user must act on; never hidden.
    pub fn warn(&self, text: &str) {
        self.stderr(&format!("warning: {text}"));
    }

    /// An error with its hint, and every located problem of a spec error; never hidden.
    pub fn error(&self, error: &Error) {
        if let Error::Spec(diagnostics) = error {
            for diagnostic in diagnostics {
                self.stderr(&diagnostic.to_string());
            }
            self.stderr(&error.to_string());
            return;
        }
        self.stderr(&format!("error: {error}"));
        if let Some(hint) = error.hint() {
            self.stderr(&format!("  hint: {hint}"));
        }
    }

    /// Asks `question` on stderr and reads one line from stdin; `None` without a terminal
    /// on stdin (there is nobody to ask).
    pub fn ask(&self, question: &str) -> Option<String> {
        if !io::stdin().is_terminal() {
            return None;
        }
        let mut stderr = io::stderr().lock();
        let _ = write!(stderr, "{question}");
        let _ = stderr.flush();
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer).ok()?;
        Some(answer.trim().to_owned())
    }

    /// Progress bars on stderr; where they are hidden, messages only (none with `-q`).
    pub fn reporter(&self) -> std::sync::Arc<dyn Reporter> {
        match (self.progress, self.verbosity) {
            (true, _) => std::sync::Arc::new(Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            }),
            (false, Verbosity::Quiet) => std::sync::Arc::new(Silent),
            (false, _) => std::sync::Arc::new(Lines),
        }
    }

    fn stderr(&self, text: &str) {
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "{text}");
    }
}

/// One spinner line per unit of work, cleared when it finishes.
struct Bars {
    multi: MultiProgress,
}

impl Reporter for Bars {
    fn message(&self, text: &str) {
        let _ = self.multi.println(format!("note: {text}"));
    }

    fn task(&self, name: &str) -> Box<dyn Task> {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                .expect("static template"),
        );
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        Box::new(Bar(bar))
    }
}

struct Bar(ProgressBar);

/// No progress bars (stderr is not a terminal, or `--no-progress`, or `-v`), but messages,
/// one line each.
struct Lines;

impl Reporter for Lines {
    fn task(&self, _name: &str) -> Box<dyn Task> {
        Box::new(Silent)
    }

    fn message(&self, text: &str) {
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "note: {text}");
    }
}

impl Task for Bar {
    fn step(&self, message: &str) {
        self.0.set_message(message.to_owned());
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
