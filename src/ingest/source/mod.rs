//! Where records come from: a file or stdin (NDJSON or a MessagePack
//! stream), or a Kafka topic (the projector daemon).

pub mod file;
pub mod kafka;
pub mod limit;
pub mod msgpack_frame;
