#!/bin/sh
# exec handler fixture: prints its resource limits as JSON (ulimit units: CPU
# seconds, data KiB, open files, core blocks).
cat >/dev/null
printf '{"cpu": "%s", "cpu_hard": "%s", "data_kib": "%s", "open_files": "%s", "core": "%s"}\n' \
    "$(ulimit -St)" "$(ulimit -Ht)" "$(ulimit -Sd)" "$(ulimit -Sn)" "$(ulimit -Sc)"
