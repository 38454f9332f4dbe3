//! Faults against a cluster: process kills, pauses, partitions. Filled by issue 7.
