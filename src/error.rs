//! The crate's one error type. `kind()` tells the caller what to do with it;
//! messages are lowercase with `key=value` context and say what to fix.
//! Bad input records are not errors: the codec makes them dead letters.

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Try again later (storage or network hiccup).
    Transient,
    /// The user gave something invalid (a flag, an id, a URL): fix and rerun.
    Invalid,
    /// Asked for something that does not exist.
    NotFound,
    /// Cannot go on (fenced by a newer writer, corrupt store).
    Fatal,
}

/// Sundial's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("storage: {0}")]
    Storage(#[from] slatedb::Error),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode {0}; nothing of the batch was committed")]
    Encode(String),
    #[error("corrupt stored data at key={key}: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("busy: job={job} attempt={attempt} is being written by {holder}; stop that writer first, or pass another --attempt")]
    Busy {
        job: String,
        attempt: String,
        holder: String,
    },
    #[error("fenced: another writer opened this attempt (job={job} attempt={attempt}); only one writer (project, replay) may write an attempt at a time")]
    Fenced { job: String, attempt: String },
}

impl Error {
    /// Shorthand for an invalid-input error.
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            detail: detail.into(),
        }
    }

    /// What to do about it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. } => ErrorKind::Invalid,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Storage(e) => match e.kind() {
                slatedb::ErrorKind::Closed(_) => ErrorKind::Fatal,
                slatedb::ErrorKind::Unavailable => ErrorKind::Transient,
                _ => ErrorKind::Fatal,
            },
            Error::ObjectStore(_) | Error::Io(_) | Error::Unavailable(_) => ErrorKind::Transient,
            Error::Corrupt { .. }
            | Error::Encode(_)
            | Error::Fenced { .. }
            | Error::Busy { .. } => ErrorKind::Fatal,
        }
    }

    /// This error, or the one-line `Fenced` error for `job`/`attempt` when
    /// it says a newer writer fenced this one off (SlateDB's own text is
    /// `Closed error: detected newer DB client`).
    pub fn or_fenced(self, job: &str, attempt: &str) -> Error {
        if self.is_fenced() {
            Error::Fenced {
                job: job.to_owned(),
                attempt: attempt.to_owned(),
            }
        } else {
            self
        }
    }

    /// True when a newer writer fenced this one off.
    pub fn is_fenced(&self) -> bool {
        match self {
            Error::Fenced { .. } => true,
            Error::Storage(e) => matches!(
                e.kind(),
                slatedb::ErrorKind::Closed(slatedb::CloseReason::Fenced)
            ),
            _ => false,
        }
    }
}

impl From<sundial_views::EncodeError> for Error {
    fn from(e: sundial_views::EncodeError) -> Self {
        Error::Encode(e.to_string())
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
