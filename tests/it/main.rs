//! The integration tests, one binary: on two cores, linking twenty-odd test binaries against
//! the daemon cost more than running them. Each module is one story over real sockets.

mod admin_listener;
mod backends;
mod common;
mod crash_safety;
mod foreign_smsc;
mod http_api;
mod http_contract;
mod limits;
mod login_flow;
mod login_page;
mod metrics;
mod ops_check_config;
mod ops_dashboard;
mod ops_install;
mod ops_logs;
mod ops_notify;
mod ops_signals;
mod ops_store_errors;
mod pdu_vectors;
mod poll_results;
mod postgres_daemon;
mod postgres_migrations;
mod postgres_nodes;
mod postgres_sigkill;
mod readiness;
mod remote_auth;
mod security;
mod sim_vs_smpplib;
mod slow_smsc;
mod smpp_inbound;
mod smpp_link;
mod smpp_tls;
mod store_battery;
mod token_props;
mod webhooks;
