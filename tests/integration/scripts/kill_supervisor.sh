#!/bin/sh
# exec handler fixture: kills the process that supervises it (its parent), as the OOM killer
# or an operator might, then lingers; the run's end is never reported.
kill -9 "$PPID"
sleep 5
