//! The model catalog lives in the engine, so that the config is checked against the same
//! data the sandbox serves and judges by; here only what the sandbox adds to it.

pub use singularis_engine::systems::catalog::*;

/// What a service sends that only an emulator needs to know.
pub trait ServiceHeaders {
    /// Sends `x-ratelimit-*` (OpenAI) or `anthropic-ratelimit-*` headers on every answer.
    fn rate_limit_headers(self) -> bool;
}

impl ServiceHeaders for Service {
    fn rate_limit_headers(self) -> bool {
        matches!(self, Service::OpenAi | Service::Anthropic)
    }
}
