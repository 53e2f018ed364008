//! How a destructive subcommand (`rollback`, `prune`) gets the operator's yes.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::{AdminError, Result};

/// How a destructive command (`rollback`, `prune`) gets the operator's yes: `--yes`, or
/// `y` typed at a `[y/N]` question on a terminal. Without a terminal and without `--yes`
/// it refuses: a script must say `--yes`, not be answered by whatever its stdin holds.
pub struct Consent<'a, R> {
    /// Where the answer is read.
    pub input: &'a mut R,
    /// Whether `input` is a terminal someone can answer from.
    pub interactive: bool,
    /// `--yes`: do not ask.
    pub yes: bool,
}

impl<R: BufRead> Consent<'_, R> {
    /// Asks `question` with `[y/N]` on `out` unless `--yes` was given; an error (nothing
    /// done) saying `no_terminal` without a terminal, or `cancelled` for any answer but
    /// y or yes.
    pub fn ask(
        self,
        out: &mut impl Write,
        question: &str,
        no_terminal: &str,
        cancelled: &str,
    ) -> Result<()> {
        if self.yes {
            return Ok(());
        }
        if !self.interactive {
            return Err(AdminError::new(no_terminal));
        }
        write!(out, "{question} [y/N] ")?;
        out.flush()?;
        let mut answer = String::new();
        self.input.read_line(&mut answer)?;
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            return Err(AdminError::new(cancelled));
        }
        Ok(())
    }
}

/// Whether stdin is a terminal (for `rollback`'s and `prune`'s question).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}
