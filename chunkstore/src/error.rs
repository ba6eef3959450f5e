//! The storage node's one error type, shared by its server and client.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob not found")]
    NotFound,
    #[error("blob content does not match its name")]
    HashMismatch,
    #[error("stored blob failed its checksum: {0}")]
    Corrupt(String),
    #[error("range outside the blob")]
    BadRange,
    #[error("blob larger than the node accepts")]
    TooLarge,
    #[error("node stopped taking writes after an fsync failure")]
    WritesDisabled,
    #[error("node is full (its capacity limit)")]
    Full,
    #[error("disk I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("node {addr} unreachable: {detail}")]
    Unreachable { addr: String, detail: String },
    #[error("node {addr} answered {status}: {detail}")]
    Remote {
        addr: String,
        status: u16,
        detail: String,
    },
}

impl Error {
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Error::NotFound => S::NOT_FOUND,
            Error::HashMismatch | Error::BadRange => S::BAD_REQUEST,
            Error::TooLarge => S::PAYLOAD_TOO_LARGE,
            Error::WritesDisabled => S::SERVICE_UNAVAILABLE,
            Error::Full => S::INSUFFICIENT_STORAGE,
            Error::Corrupt(_) => S::UNPROCESSABLE_ENTITY,
            Error::Io(_) | Error::Unreachable { .. } | Error::Remote { .. } => {
                S::INTERNAL_SERVER_ERROR
            }
        }
    }
}
