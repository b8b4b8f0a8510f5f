#!/bin/sh
# Prints the greeting that examples/hello.kdl copies into the image.
set -eu
cat "${GREETING_FILE:-/opt/hello/greeting.txt}"
