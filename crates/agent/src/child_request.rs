//! What a child mode of `stagepass-agent` (refresh worker, doctor probe) reads: one request on
//! stdin, never in argv (it may carry a refresh token), bounded in size.

use std::io::Read;

const MAX_REQUEST: u64 = 1 << 20;

/// All of stdin, up to [`MAX_REQUEST`]; empty when the parent closed it without writing.
pub(crate) fn read_stdin() -> std::io::Result<Vec<u8>> {
    let mut input = Vec::new();
    std::io::stdin().take(MAX_REQUEST).read_to_end(&mut input)?;
    Ok(input)
}
