//! Ingestion: G1 download, synthetic data, refine, Kafka replay and consumer.
