#!/bin/sh
# Never reads stdin, and completes at once, leaving a background process that holds it, unread,
# for 30 s more (its own stdin, which a background command would have from /dev/null).
exec 3<&0
sleep 30 <&3 3<&- >/dev/null 2>&1 &
echo done
