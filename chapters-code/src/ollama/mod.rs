//! Everything Ollama: Modelfiles, template translation, the host, the client, deploy, the teacher.
pub mod deploy;
pub mod modelfile;
pub mod teacher;
