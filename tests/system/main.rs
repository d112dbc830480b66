//! System tests: the `newsrec` binary and the library crates together, against the real
//! broker, Redis and Prometheus on loopback (`scripts/services.sh`), with random topic
//! names and key prefixes. One test binary; `support` holds what the modules share.

mod api_e2e;
mod api_http;
mod api_served_log;
mod cli_settings;
mod demo;
mod model_quality;
mod ops_airflow;
mod ops_compose;
mod ops_dashboards_live;
mod stream_attribution;
mod stream_crash;
mod stream_experiments;
mod stream_prequential;
mod support;
