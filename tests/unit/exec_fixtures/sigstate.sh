#!/bin/sh
# Reports the signal mask and ignored signals it started with (Linux /proc), as JSON.
if [ -r /proc/$$/status ]; then
    blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' /proc/$$/status)
    ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status)
    printf '{"blocked":"%s","ignored":"%s"}\n' "$blk" "$ign"
else
    echo '{}'
fi
