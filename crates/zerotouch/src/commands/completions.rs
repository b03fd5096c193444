//! `zerotouch completions`: shell completion scripts.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::AppError;

/// Arguments of `zerotouch completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_parser = ["bash", "zsh", "fish"])]
    pub shell: String,
}

/// Prints the completion script for the shell on stdout.
pub fn run(args: CompletionsArgs) -> Result<(), AppError> {
    let shell = match args.shell.as_str() {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => {
            return Err(AppError::Usage(format!(
                "unsupported shell `{other}`; use bash, zsh or fish"
            )));
        }
    };
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "zerotouch", &mut std::io::stdout());
    Ok(())
}
