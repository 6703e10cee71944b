//! Everything Ollama: its model store, Modelfiles, template translation, the host, the client, deploy, the teacher.
pub mod client;
pub mod deploy;
pub mod host;
pub mod modelfile;
pub mod store;
pub mod teacher;
pub mod template;

pub use client::{Client, ServerError};
pub use host::Host;
