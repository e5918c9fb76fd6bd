#!/usr/bin/env python3
"""Writes a fake-nvml config with N GPUs (default 8), every field set (GPM
and per-process utilisation included), to stdout: the load oxmon-gpu's
benchmark scrapes. Usage: fake-gpus.py [N]"""

import json
import sys


def gpu(i):
    return {
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": f"GPU-0000{i:04d}-1111-2222-3333-444455556666",
        "pci_bus_id": f"00000000:{0x18 + i * 0x10:02X}:00.0",
        "vbios_version": "96.00.74.00.0B",
        "compute_mode": 0,
        "persistence_mode": True,
        "utilization": {"gpu": 90 - i, "memory": 40 + i},
        "encoder_utilization": 0,
        "decoder_utilization": 0,
        "memory": {"total": 85520809984, "used": 40000000000 + i, "free": 45520809984 - i, "reserved": 550000000},
        "temperature": 60 + i,
        "memory_temperature": 70 + i,
        "temperature_thresholds": {"shutdown": 92, "slowdown": 89, "memory_max": 95, "gpu_max": 87},
        "power_usage_mw": 500000 + i,
        "power_limit_mw": 700000,
        "energy_mj": 123456789012 + i,
        "clocks_mhz": {"graphics": 1980, "sm": 1980, "memory": 2619, "video": 1755},
        "max_clocks_mhz": {"graphics": 1980, "sm": 1980, "memory": 2619, "video": 1755},
        "performance_state": 0,
        "throttle_reasons": 0,
        "ecc_mode": True,
        "ecc_errors": {"volatile_corrected": 0, "volatile_uncorrected": 0, "aggregate_corrected": 3, "aggregate_uncorrected": 0},
        "retired_pages": {"single_bit": 0, "double_bit": 0, "pending": 0},
        "remapped_rows": {"correctable": 0, "uncorrectable": 0, "pending": 0, "failure": 0},
        "xid_events": [],
        "pcie": {"tx_kbps": 12000, "rx_kbps": 34000, "link_gen": 5, "max_link_gen": 5, "link_width": 16, "max_link_width": 16, "replay_counter": 0},
        "nvlinks": [True] * 18,
        "mig": {"current": False, "pending": False, "instances": []},
        "processes": [{"pid": 10000 + i, "name": "python3", "used_memory": 40000000000,
                       "utilization": {"sm": 85, "memory": 40, "encoder": 0, "decoder": 0}}],
        "gpm": {"graphics_util": 90, "sm_util": 85.5, "sm_occupancy": 42.25,
                "any_tensor_util": 61, "hmma_tensor_util": 58, "imma_tensor_util": 0,
                "dfma_tensor_util": 3, "dram_bw_util": 37.5, "fp64_util": 1.5,
                "fp32_util": 22, "fp16_util": 14, "pcie_tx_per_sec": 1200 + i,
                "pcie_rx_per_sec": 3400 + i, "nvlink_total_tx_per_sec": 81920,
                "nvlink_total_rx_per_sec": 90112},
    }


n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
json.dump({"driver_version": "550.54.15", "cuda_driver_version": 12040,
           "devices": [gpu(i) for i in range(n)]}, sys.stdout, indent=1)
