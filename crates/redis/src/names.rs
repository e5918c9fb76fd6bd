//! Metric names under the configured namespace (`--namespace`, default
//! `redis`), built once at start-up so a scrape allocates no names.
//!
//! The tables map `INFO` fields to redis_exporter's metric names and types:
//! a field listed here is exported, any other field is ignored, except
//! `cluster_*` fields, which are exported as gauges under their own name
//! (as redis_exporter does).

use std::borrow::Cow;
use std::collections::HashMap;

/// How an `INFO` field is exported.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Full metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Counter (else gauge).
    pub counter: bool,
    /// Factor applied to the value (`latest_fork_usec` becomes seconds).
    pub scale: f64,
}

/// `INFO` fields exported as gauges: `(field, metric suffix)`.
const GAUGES: &[(&str, &str)] = &[
    // Server
    ("uptime_in_seconds", "uptime_in_seconds"),
    ("process_id", "process_id"),
    // Clients
    ("connected_clients", "connected_clients"),
    ("blocked_clients", "blocked_clients"),
    ("tracking_clients", "tracking_clients"),
    ("clients_in_timeout_table", "clients_in_timeout_table"),
    ("client_longest_output_list", "client_longest_output_list"),
    ("client_biggest_input_buf", "client_biggest_input_buf"),
    (
        "client_recent_max_output_buffer",
        "client_recent_max_output_buffer_bytes",
    ),
    (
        "client_recent_max_input_buffer",
        "client_recent_max_input_buffer_bytes",
    ),
    // Memory
    ("allocator_active", "allocator_active_bytes"),
    ("allocator_allocated", "allocator_allocated_bytes"),
    ("allocator_resident", "allocator_resident_bytes"),
    ("allocator_frag_ratio", "allocator_frag_ratio"),
    ("allocator_frag_bytes", "allocator_frag_bytes"),
    ("allocator_rss_ratio", "allocator_rss_ratio"),
    ("allocator_rss_bytes", "allocator_rss_bytes"),
    ("used_memory", "memory_used_bytes"),
    ("used_memory_rss", "memory_used_rss_bytes"),
    ("used_memory_peak", "memory_used_peak_bytes"),
    ("used_memory_lua", "memory_used_lua_bytes"),
    ("used_memory_overhead", "memory_used_overhead_bytes"),
    ("used_memory_startup", "memory_used_startup_bytes"),
    ("used_memory_dataset", "memory_used_dataset_bytes"),
    ("used_memory_scripts", "memory_used_scripts_bytes"),
    ("maxmemory", "memory_max_bytes"),
    ("maxmemory_reservation", "memory_max_reservation_bytes"),
    (
        "maxmemory_desired_reservation",
        "memory_max_reservation_desired_bytes",
    ),
    (
        "maxfragmentationmemory_reservation",
        "memory_max_fragmentation_reservation_bytes",
    ),
    (
        "maxfragmentationmemory_desired_reservation",
        "memory_max_fragmentation_reservation_desired_bytes",
    ),
    ("mem_fragmentation_ratio", "mem_fragmentation_ratio"),
    ("mem_fragmentation_bytes", "mem_fragmentation_bytes"),
    ("mem_clients_slaves", "mem_clients_slaves"),
    ("mem_clients_normal", "mem_clients_normal"),
    ("expired_stale_perc", "expired_stale_percentage"),
    (
        "mem_not_counted_for_evict",
        "mem_not_counted_for_eviction_bytes",
    ),
    ("lazyfree_pending_objects", "lazyfree_pending_objects"),
    ("active_defrag_running", "active_defrag_running"),
    ("migrate_cached_sockets", "migrate_cached_sockets_total"),
    ("active_defrag_hits", "defrag_hits"),
    ("active_defrag_misses", "defrag_misses"),
    ("active_defrag_key_hits", "defrag_key_hits"),
    ("active_defrag_key_misses", "defrag_key_misses"),
    (
        "expired_time_cap_reached_count",
        "expired_time_cap_reached_total",
    ),
    ("number_of_cached_scripts", "number_of_cached_scripts"),
    // Persistence
    ("loading", "loading_dump_file"),
    ("rdb_changes_since_last_save", "rdb_changes_since_last_save"),
    ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress"),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
    ("rdb_last_bgsave_status", "rdb_last_bgsave_status"),
    ("rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec"),
    (
        "rdb_current_bgsave_time_sec",
        "rdb_current_bgsave_duration_sec",
    ),
    ("rdb_last_cow_size", "rdb_last_cow_size_bytes"),
    ("aof_enabled", "aof_enabled"),
    ("aof_rewrite_in_progress", "aof_rewrite_in_progress"),
    ("aof_rewrite_scheduled", "aof_rewrite_scheduled"),
    ("aof_last_rewrite_time_sec", "aof_last_rewrite_duration_sec"),
    (
        "aof_current_rewrite_time_sec",
        "aof_current_rewrite_duration_sec",
    ),
    ("aof_last_cow_size", "aof_last_cow_size_bytes"),
    ("aof_current_size", "aof_current_size_bytes"),
    ("aof_base_size", "aof_base_size_bytes"),
    ("aof_pending_rewrite", "aof_pending_rewrite"),
    ("aof_buffer_length", "aof_buffer_length"),
    ("aof_rewrite_buffer_length", "aof_rewrite_buffer_length"),
    ("aof_pending_bio_fsync", "aof_pending_bio_fsync"),
    ("aof_delayed_fsync", "aof_delayed_fsync"),
    ("aof_last_bgrewrite_status", "aof_last_bgrewrite_status"),
    ("aof_last_write_status", "aof_last_write_status"),
    ("module_fork_in_progress", "module_fork_in_progress"),
    ("module_fork_last_cow_size", "module_fork_last_cow_size"),
    // Stats
    ("pubsub_channels", "pubsub_channels"),
    ("pubsub_patterns", "pubsub_patterns"),
    ("latest_fork_usec", "latest_fork_seconds"),
    ("tracking_total_keys", "tracking_total_keys"),
    ("tracking_total_items", "tracking_total_items"),
    ("tracking_total_prefixes", "tracking_total_prefixes"),
    ("instantaneous_ops_per_sec", "instantaneous_ops_per_sec"),
    ("instantaneous_input_kbps", "instantaneous_input_kbps"),
    ("instantaneous_output_kbps", "instantaneous_output_kbps"),
    // Threads
    ("io_threads_active", "io_threads_active"),
    // Replication
    ("connected_slaves", "connected_slaves"),
    ("repl_backlog_size", "replication_backlog_bytes"),
    ("repl_backlog_active", "repl_backlog_is_active"),
    (
        "repl_backlog_first_byte_offset",
        "repl_backlog_first_byte_offset",
    ),
    ("repl_backlog_histlen", "repl_backlog_history_bytes"),
    ("master_repl_offset", "master_repl_offset"),
    ("second_repl_offset", "second_repl_offset"),
    ("slave_expires_tracked_keys", "slave_expires_tracked_keys"),
    ("slave_priority", "slave_priority"),
    ("sync_full", "replica_resyncs_full"),
    ("sync_partial_ok", "replica_partial_resync_accepted"),
    ("sync_partial_err", "replica_partial_resync_denied"),
    // Cluster
    ("cluster_stats_messages_sent", "cluster_messages_sent_total"),
    (
        "cluster_stats_messages_received",
        "cluster_messages_received_total",
    ),
    // KeyDB
    ("server_threads", "server_threads_total"),
    ("long_lock_waits", "long_lock_waits_total"),
    ("current_client_thread", "current_client_thread"),
];

/// `INFO` fields exported as counters: `(field, metric suffix)`.
const COUNTERS: &[(&str, &str)] = &[
    ("total_connections_received", "connections_received_total"),
    ("total_commands_processed", "commands_processed_total"),
    ("rejected_connections", "rejected_connections_total"),
    ("total_net_input_bytes", "net_input_bytes_total"),
    ("total_net_output_bytes", "net_output_bytes_total"),
    ("expired_keys", "expired_keys_total"),
    ("evicted_keys", "evicted_keys_total"),
    ("keyspace_hits", "keyspace_hits_total"),
    ("keyspace_misses", "keyspace_misses_total"),
    ("used_cpu_sys", "cpu_sys_seconds_total"),
    ("used_cpu_user", "cpu_user_seconds_total"),
    ("used_cpu_sys_children", "cpu_sys_children_seconds_total"),
    ("used_cpu_user_children", "cpu_user_children_seconds_total"),
    (
        "used_cpu_sys_main_thread",
        "cpu_sys_main_thread_seconds_total",
    ),
    (
        "used_cpu_user_main_thread",
        "cpu_user_main_thread_seconds_total",
    ),
    ("total_error_replies", "total_error_replies"),
    ("unexpected_error_replies", "unexpected_error_replies"),
    ("dump_payload_sanitizations", "dump_payload_sanitizations"),
    ("total_reads_processed", "total_reads_processed"),
    ("total_writes_processed", "total_writes_processed"),
    ("io_threaded_reads_processed", "io_threaded_reads_processed"),
    (
        "io_threaded_writes_processed",
        "io_threaded_writes_processed",
    ),
];

/// Metrics that are not a plain `INFO` field: `(suffix, help)`.
const OTHERS: &[(&str, &str)] = &[
    ("up", "Information about the Redis instance"),
    ("instance_info", "Information about the Redis instance"),
    ("slave_info", "Information about the Redis slave"),
    ("start_time_seconds", "Start time of the Redis instance since unix epoch in seconds."),
    ("commands_total", "Total number of calls per command"),
    ("commands_duration_seconds_total", "Total amount of time in seconds spent per command"),
    ("commands_rejected_calls_total", "Total number of errors prior command execution per command"),
    ("commands_failed_calls_total", "Total number of errors within command execution per command"),
    ("latency_percentiles_usec", "A summary of latency percentile distribution per command"),
    ("errors_total", "Total number of errors per error type"),
    ("db_keys", "Total number of keys by DB"),
    ("db_keys_expiring", "Total number of expiring keys by DB"),
    ("db_avg_ttl_seconds", "Avg TTL in seconds"),
    (
        "db_keys_with_expiring_items",
        "Total number of keys with expiring items (hash fields) by DB",
    ),
    ("db_keys_cached", "Total number of cached keys by DB"),
    ("connected_slave_offset_bytes", "Offset of connected slave"),
    ("connected_slave_lag_seconds", "Lag of connected slave"),
    ("master_link_up", "Master link status on Redis slave"),
    ("master_last_io_seconds_ago", "Master last io seconds ago"),
    ("master_sync_in_progress", "Master sync in progress"),
    ("master_link_down_since_seconds", "Seconds since the link to the master went down"),
    ("slave_repl_offset", "Slave replication offset"),
    ("config_maxmemory", "config_maxmemory metric"),
    ("config_maxclients", "config_maxclients metric"),
    ("config_io_threads", "config_io_threads metric"),
    ("config_key_value", "Config key and value"),
    ("config_value", "Config key and value as metric"),
    ("slowlog_length", "Total slowlog"),
    ("slowlog_last_id", "Last id of slowlog"),
    ("last_slow_execution_duration_seconds", "The amount of time needed for last slow execution, in seconds"),
    ("latency_spike_last", "When the latency spike last occurred"),
    ("latency_spike_duration_seconds", "Length of the last latency spike in seconds"),
    ("key_size", "The length or size of \"key\""),
    ("key_value", "The value of \"key\""),
    ("key_value_as_string", "The value of \"key\" as a string"),
    ("keys_count", "Count of keys"),
    ("connected_clients_details", "Details about connected clients"),
    ("stream_length", "The number of elements of the stream"),
    ("stream_radix_tree_keys", "Radix tree keys count"),
    ("stream_radix_tree_nodes", "Radix tree nodes count"),
    ("stream_groups", "Groups count of stream"),
    ("stream_last_generated_id", "The epoch timestamp (ms) of the latest message on the stream"),
    ("stream_group_consumers", "Consumers count of stream group"),
    ("stream_group_messages_pending", "Pending number of messages in that stream group"),
    ("stream_group_last_delivered_id", "The epoch timestamp (ms) of the last delivered message"),
    ("stream_group_consumer_messages_pending", "Pending number of messages for this specific consumer"),
    ("stream_group_consumer_idle_seconds", "Consumer idle time in seconds"),
    ("last_key_groups_scrape_duration_milliseconds", "Duration of the last key group metrics scrape in milliseconds"),
    ("key_group_count", "Count of keys in key group"),
    ("key_group_memory_usage_bytes", "Total memory usage of key group in bytes"),
    ("number_of_distinct_key_groups", "Number of distinct key groups"),
    ("sentinel_masters", "The number of masters this sentinel is watching"),
    ("sentinel_tilt", "Sentinel is in TILT mode"),
    ("sentinel_running_scripts", "Number of scripts in execution right now"),
    ("sentinel_scripts_queue_length", "Queue of user scripts to execute"),
    ("sentinel_simulate_failure_flags", "Failures simulations"),
    ("sentinel_master_status", "Master status on Sentinel"),
    ("sentinel_master_slaves", "The number of slaves of the master"),
    ("sentinel_master_sentinels", "The number of sentinels monitoring this master"),
    ("exporter_last_scrape_error", "The last scrape error status."),
    ("exporter_last_scrape_duration_seconds", "exporter_last_scrape_duration_seconds metric"),
    ("exporter_last_scrape_connect_time_seconds", "Time taken to obtain the connection to Redis for the last scrape (0 when the kept connection was reused)"),
    ("exporter_scrapes_total", "Current total redis scrapes."),
    ("exporter_scrape_duration_seconds", "Durations of scrapes by the exporter"),
    ("target_scrape_request_errors_total", "Errors in requests to the exporter"),
    ("exporter_key_check_budget_exhausted_total", "Scrapes whose key checks stopped at the --check-keys-time-budget or the scrape deadline; their partial results were dropped"),
];

/// All names of one namespace.
#[derive(Debug)]
pub struct Names {
    /// The namespace, e.g. `redis`.
    pub namespace: &'static str,
    fields: HashMap<&'static str, Field>,
    others: HashMap<&'static str, (&'static str, &'static str)>,
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

impl Names {
    /// Builds the names for `namespace`. The strings live for the rest of
    /// the process (one set per process).
    /// With `include_system`, `total_system_memory` is exported too
    /// (`--include-system-metrics`).
    pub fn new(namespace: &str, include_system: bool) -> &'static Names {
        let ns: &'static str = leak(namespace.to_string());
        let mut fields = HashMap::with_capacity(GAUGES.len() + COUNTERS.len());
        let system: &[(&str, &str)] = if include_system {
            &[("total_system_memory", "total_system_memory_bytes")]
        } else {
            &[]
        };
        for (list, counter) in [(GAUGES, false), (system, false), (COUNTERS, true)] {
            for &(field, suffix) in list {
                let name = leak(format!("{ns}_{suffix}"));
                let help = leak(format!("{suffix} metric"));
                let scale = if field == "latest_fork_usec" {
                    1e-6
                } else {
                    1.0
                };
                fields.insert(
                    field,
                    Field {
                        name,
                        help,
                        counter,
                        scale,
                    },
                );
            }
        }
        let others = OTHERS
            .iter()
            .map(|&(suffix, help)| (suffix, (leak(format!("{ns}_{suffix}")), help)))
            .collect();
        Box::leak(Box::new(Names {
            namespace: ns,
            fields,
            others,
        }))
    }

    /// How an `INFO` field is exported, if it is.
    pub fn field(&self, info_key: &str) -> Option<&Field> {
        self.fields.get(info_key)
    }

    /// Name and help of a non-field metric by its suffix (`up`,
    /// `commands_total`, ...).
    pub fn get(&self, suffix: &str) -> (Cow<'static, str>, Cow<'static, str>) {
        match self.others.get(suffix) {
            Some(&(name, help)) => (Cow::Borrowed(name), Cow::Borrowed(help)),
            None => (
                Cow::Owned(format!("{}_{suffix}", self.namespace)),
                Cow::Owned(format!("{suffix} metric")),
            ),
        }
    }

    /// An empty gauge family for a non-field metric.
    pub fn gauge(&self, suffix: &str) -> oxmon_core::MetricFamily {
        let (n, h) = self.get(suffix);
        oxmon_core::MetricFamily::gauge(n, h)
    }

    /// An empty counter family for a non-field metric.
    pub fn counter(&self, suffix: &str) -> oxmon_core::MetricFamily {
        let (n, h) = self.get(suffix);
        oxmon_core::MetricFamily::counter(n, h)
    }

    /// A gauge family with one unlabelled sample.
    pub fn gauge1(&self, suffix: &str, v: f64) -> oxmon_core::MetricFamily {
        let mut f = self.gauge(suffix);
        f.add(&[], v);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_prefixes_every_name() {
        let n = Names::new("kv", false);
        assert_eq!(n.field("used_memory").unwrap().name, "kv_memory_used_bytes");
        assert!(n.field("total_commands_processed").unwrap().counter);
        assert_eq!(n.get("up").0, "kv_up");
        assert_eq!(n.get("unknown_thing").0, "kv_unknown_thing");
        assert!((n.field("latest_fork_usec").unwrap().scale - 1e-6).abs() < 1e-12);
    }
}
