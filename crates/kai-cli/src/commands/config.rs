//! `kai config show`.

use kai_config::Loaded;

use crate::cli::ConfigCommand;
use crate::output;

pub(crate) fn run(loaded: &Loaded, command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Show(format) => {
            if format.json {
                output::json(&loaded.settings)
            } else {
                let source = match &loaded.file {
                    Some(path) => format!("# from {} and the environment, secrets redacted", path.display()),
                    None => "# built-in defaults and the environment (no configuration file), secrets redacted"
                        .to_owned(),
                };
                output::line(&source);
                output::line(loaded.settings.to_redacted_toml().trim_end());
                Ok(())
            }
        }
    }
}
