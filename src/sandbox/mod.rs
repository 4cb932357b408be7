//! TEMPORARY stub, replaced by the real sandbox (same API).

pub mod fault;

use crate::systems::{Protocol, SystemId};
use fault::Fault;

pub struct SandboxSystem {
    pub id: SystemId,
    pub protocol: Protocol,
    pub model: String,
    pub fault: Option<Fault>,
}

pub struct RecordedRequest { pub method: String, pub path_and_query: String, pub headers: http::HeaderMap, pub body: bytes::Bytes }

pub struct Sandbox;

impl Sandbox {
    pub async fn start(_listen: std::net::IpAddr, _base_port: u16, _systems: Vec<SandboxSystem>) -> std::io::Result<Sandbox> {
        Ok(Sandbox)
    }
    pub fn base_url(&self, _id: SystemId) -> Option<url::Url> {
        None
    }
    pub fn ports(&self) -> Vec<u16> {
        Vec::new()
    }
    pub fn set_fault(&self, _id: SystemId, _fault: Option<Fault>) {}
    pub async fn stop(self) {}
    pub fn requests(&self, _id: SystemId) -> Vec<RecordedRequest> { Vec::new() }
}
