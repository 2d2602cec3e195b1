#!/bin/sh
# Never reads stdin; takes a moment, then completes.
sleep 0.3
echo done
