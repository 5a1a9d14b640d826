//! `kai openapi`: the API description, for generating clients without running a server.

use crate::output;

pub(crate) fn run() -> anyhow::Result<()> {
    output::line(&kai_server::openapi_document().to_pretty_json()?);
    Ok(())
}
