//! Where records come from: a file or stdin (NDJSON or a MessagePack
//! stream). The Kafka source joins here.

pub mod file;
